// Tempo service map: Tempo turns its service-graph metrics into nodes and edges.
// `panel.targets[i].expr` is the service-graph filter, e.g. {client=~"$service"}.
function(panel) {
  type: 'nodeGraph',
  title: panel.title,
  description: panel.description,
  datasource: panel.datasource,
  targets: [
    {
      datasource: panel.datasource,
      filters: [],  // required by Tempo's query model (the search builder's filters); none for a service map
      queryType: 'serviceMap',
      refId: t.refId,
      serviceMapQuery: t.expr,
    }
    for t in panel.targets
  ],
  fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
  options: {
    edges: { mainStatUnit: panel.unit },
    nodes: { mainStatUnit: panel.unit },
    zoomMode: 'cooperative',
  },
}
