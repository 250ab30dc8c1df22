// One bar per series (horizontal unless the panel says otherwise).
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, if panel.thresholds != null then 'thresholds' else 'palette-classic') + lib.sparkline + {
  options: {
    displayMode: 'gradient',
    legend: { calcs: [], displayMode: 'list', placement: 'bottom', showLegend: false },
    maxVizHeight: 300,
    minVizHeight: 16,
    minVizWidth: 8,
    namePlacement: 'auto',
    orientation: if panel.orientation == 'auto' then 'horizontal' else panel.orientation,
    reduceOptions: lib.reduceOptions(panel),
    showUnfilled: true,
    sizing: 'auto',
    valueMode: 'color',
  },
}
