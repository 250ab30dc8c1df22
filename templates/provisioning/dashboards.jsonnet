// Grafana dashboard provider: reads the dashboard tree (out/ as copied to `path`); folders follow the
// tree, so the service dashboards land in a "services" folder.
function(folder) {
  apiVersion: 1,
  providers: [{
    name: 'pyairtable',
    orgId: 1,
    type: 'file',
    disableDeletion: false,
    allowUiUpdates: false,
    updateIntervalSeconds: 30,
    options: { path: folder, foldersFromFilesStructure: true },
  }],
}
