// Trace search (Tempo, TraceQL): the matching traces as a table, slowest first; a trace id opens the trace.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.head(panel) + {
  type: 'table',
  // filters: the search builder's filters, a required field of Tempo's query model; empty since the TraceQL is written
  targets: lib.targets(panel, function(t) { filters: [], limit: 20, query: t.expr, queryType: 'traceql', tableType: 'traces' }),
  fieldConfig: lib.fieldConfig(panel, 'thresholds', lib.tableCustom),
  options: lib.tableOptions + { sortBy: [{ desc: true, displayName: 'Duration' }] },
}
