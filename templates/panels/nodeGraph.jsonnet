// Tempo service map: Tempo turns its service-graph metrics into nodes and edges.
// `panel.targets[i].expr` is the service-graph filter, e.g. {client=~"$service"}.
local lib = import 'lib/panel.libsonnet';
function(panel) lib.head(panel) + {
  // filters: required by Tempo's query model (the search builder's filters); none for a service map
  targets: lib.targets(panel, function(t) { filters: [], queryType: 'serviceMap', serviceMapQuery: t.expr }),
  fieldConfig: lib.unitOnly(panel),
  options: {
    edges: { mainStatUnit: panel.unit },
    nodes: { mainStatUnit: panel.unit },
    zoomMode: 'cooperative',
  },
}
