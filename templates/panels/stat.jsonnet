// A single value with a sparkline, coloured by its thresholds.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, 'thresholds') + lib.sparkline + {
  options: {
    colorMode: if panel.thresholds != null then 'background' else 'none',
    graphMode: 'area',
    justifyMode: 'auto',
    orientation: panel.orientation,
    percentChangeColorMode: 'standard',
    reduceOptions: lib.reduceOptions(panel),
    showPercentChange: false,
    textMode: 'auto',
    wideLayout: true,
  },
}
