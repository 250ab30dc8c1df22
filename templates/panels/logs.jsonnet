// Log lines from Loki, newest first.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.head(panel) + {
  targets: lib.targets(panel, function(t) { editorMode: 'code', expr: t.expr, queryType: 'range' }),
  fieldConfig: lib.unitOnly(panel),
  options: {
    dedupStrategy: 'none',
    enableInfiniteScrolling: true,
    enableLogDetails: true,
    prettifyLogMessage: false,
    showCommonLabels: false,
    showLabels: false,
    showLogContextToggle: true,
    showTime: true,
    sortOrder: 'Descending',
    wrapLogMessage: true,
  },
}
