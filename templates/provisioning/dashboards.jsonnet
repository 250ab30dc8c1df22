// Grafana dashboard provider: reads every dashboard file under `path` (out/dashboards/<prefix>/ as copied
// into Grafana's provisioning folder; subfolders included) into one Grafana folder, the alert rules' folder.
function(name, folder, reads) {
  apiVersion: 1,
  providers: [{
    name: name,
    orgId: 1,
    type: 'file',
    folder: folder,
    disableDeletion: false,
    allowUiUpdates: false,
    updateIntervalSeconds: 30,
    options: { path: reads, foldersFromFilesStructure: false },
  }],
}
