// What panel templates share, each piece written once: a panel type's template is its own options plus a
// few of these. `p` is the panel's data (dashkit/render.py panel_context), a top-level argument, never source.
local link = import 'link.libsonnet';
{
  // The fields every panel with a query starts with.
  head(p):: { type: p.type, title: p.title, description: p.description, datasource: p.datasource },

  // One query per target: `query(t)` is the fields of the datasource's own query model.
  targets(p, query):: [{ datasource: p.datasource, refId: t.refId } + query(t) for t in p.targets],

  // Prometheus's query model, also Loki's metric queries: exemplar and format are Prometheus fields only.
  promQuery(p)::
    local prometheus = p.datasource.type == 'prometheus';
    function(t) {
      editorMode: 'code',
      expr: t.expr,
      instant: t.instant,
      legendFormat: t.legendFormat,
      range: t.range,
      [if prometheus then 'exemplar']: t.exemplar,
      [if prometheus then 'format']: t.format,
    },

  // maxDataPoints 100: a single value with a sparkline needs ~100 points; Grafana then steps 6 h by 5 min,
  // not 20 s, which made these panels the costliest on large fleets.
  sparkline:: { maxDataPoints: 100 },

  // Warning/critical levels -> Grafana threshold steps in the project's one colour scheme.
  thresholds(levels, colors)::
    local warning = std.get(levels, 'warning'), critical = std.get(levels, 'critical');
    local above = std.get(levels, 'direction', 'above') == 'above';
    local step(color, value) = [{ color: color, value: value }];
    {
      mode: 'absolute',
      steps:
        if levels == null then step(colors.ok, null)
        else if above then
          step(colors.ok, null)
          + (if warning != null then step(colors.warning, warning) else [])
          + (if critical != null then step(colors.critical, critical) else [])
        else
          step(if critical != null then colors.critical else colors.warning, null)
          + (if critical != null && warning != null then step(colors.warning, critical) else [])
          + step(colors.ok, if warning != null then warning else critical),
    },

  // Value -> text and colour, keyed by the value as text (as Grafana compares them).
  mappings(p)::
    if p.mappings == [] then []
    else [{ type: 'value', options: { [m.value]: { index: m.index, text: m.text, [if m.color != null then 'color']: m.color } for m in p.mappings } }],

  // One series' own levels (a service overriding a preset, on the overview), by its display name.
  overrides(p):: [
    {
      matcher: { id: 'byNames', options: { mode: 'include', names: [s.name] } },  // object options: Grafana's published schema
      properties: [{ id: 'thresholds', value: $.thresholds(s.levels, p.colors) }],
    }
    for s in p.series_thresholds
  ],

  // Field defaults of a panel of numbers; `mode` is the colour mode unless the panel fixes a colour.
  fieldConfig(p, mode, custom={}):: {
    defaults: {
      [if p.decimals != null then 'decimals']: p.decimals,
      [if p.min != null then 'min']: p.min,
      [if p.max != null then 'max']: p.max,
      [if p.no_value != null then 'noValue']: p.no_value,
      color: if p.color != null then { fixedColor: p.color, mode: 'fixed' } else { mode: mode },
      custom: custom,
      links: [link.url(l.title, l.url) for l in p.links],
      mappings: $.mappings(p),
      thresholds: $.thresholds(p.thresholds, p.colors),
      unit: p.unit,
    },
    overrides: $.overrides(p),
  },

  // Field defaults of a panel that only shows a unit (logs, text, node graph).
  unitOnly(p):: { defaults: { unit: p.unit }, overrides: [] },

  reduceOptions(p):: { calcs: [p.reduce], fields: '', values: false },

  // A panel of Prometheus queries: head, targets and field config.
  promPanel(p, mode, custom={}):: $.head(p) + { targets: $.targets(p, $.promQuery(p)), fieldConfig: $.fieldConfig(p, mode, custom) },

  // A table's options (Prometheus tables and trace search).
  tableOptions:: { cellHeight: 'sm', footer: { countRows: false, reducer: ['sum'], show: false }, frameIndex: 0, showHeader: true },
  tableCustom:: { align: 'auto', inspect: false },
}
