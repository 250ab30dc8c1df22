// Shares of a whole, as a donut with a table legend.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, 'palette-classic', { hideFrom: { legend: false, tooltip: false, viz: false } }) + {
  options: {
    displayLabels: ['percent'],
    legend: { calcs: [], displayMode: 'table', placement: 'right', showLegend: true, values: ['value', 'percent'] },
    orientation: panel.orientation,
    pieType: 'donut',
    reduceOptions: lib.reduceOptions(panel),
    tooltip: { mode: 'single', sort: 'none' },
  },
}
