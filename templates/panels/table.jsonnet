// Instant query results as a table, without the time column.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.promPanel(panel, 'thresholds', lib.tableCustom) + {
  options: lib.tableOptions,
  transformations: [
    { id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Value' } } },
  ],
}
