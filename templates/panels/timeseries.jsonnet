// Lines over time; stacked areas with `stack`, the thresholds as dashed lines.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, 'palette-classic', {
  axisBorderShow: false,
  axisPlacement: 'auto',
  drawStyle: 'line',
  fillOpacity: if panel.stack then 25 else 10,
  gradientMode: 'none',
  lineInterpolation: 'linear',
  lineWidth: 1,
  showPoints: 'never',
  spanNulls: false,
  stacking: { group: 'A', mode: if panel.stack then 'normal' else 'none' },
  thresholdsStyle: { mode: if panel.thresholds != null then 'dashed' else 'off' },
}) + {
  options: {
    legend: { calcs: [], displayMode: 'list', placement: 'bottom', showLegend: true },
    tooltip: { mode: 'multi', sort: 'desc' },
  },
}
