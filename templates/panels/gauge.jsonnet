// A single value on a dial with its threshold markers.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, 'thresholds') + lib.sparkline + {
  options: {
    minVizHeight: 75,
    minVizWidth: 75,
    orientation: panel.orientation,
    reduceOptions: lib.reduceOptions(panel),
    showThresholdLabels: false,
    showThresholdMarkers: true,
    sizing: 'auto',
  },
}
