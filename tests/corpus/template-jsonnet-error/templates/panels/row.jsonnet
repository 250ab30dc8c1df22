// A row: a full-width header. Assembly gives it an id and gridPos; panels of an open row follow it in
// the dashboard's flat panel list, a collapsed row carries them inside (as Grafana saves them).
function(row) {
  type: 'row',
  title: row.title,
  collapsed: row.collapsd,
  panels: [],
}
