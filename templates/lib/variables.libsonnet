// Grafana template variables, built from plain specs.
local option(value, selected) = { selected: selected, text: value, value: value };
local all = { selected: true, text: ['All'], value: ['$__all'] };
{
  // $interval: the rate window of stat and gauge panels.
  interval(spec):: {
    type: 'interval',
    name: 'interval',
    label: 'Interval',
    query: std.join(',', spec.options),
    auto: false,
    current: { selected: true, text: spec.default, value: spec.default },
    options: [option(o, o == spec.default) for o in spec.options],
    refresh: 2,
    hide: 0,
  },

  // $job on a service dashboard: fixed, hidden, so shared rows can say job="$job".
  constant(name, value):: {
    type: 'constant',
    name: name,
    query: value,
    current: { selected: true, text: value, value: value },
    options: [option(value, true)],
    hide: 2,
  },

  // $service on the overview: every service the build knows, so a new values file appears here.
  services(services):: {
    type: 'custom',
    name: 'service',
    label: 'Service',
    query: std.join(',', [s.job for s in services]),
    multi: true,
    includeAll: true,
    current: all,
    options: [option(s.job, false) for s in services],
    hide: 0,
  },

  // A drop-down of fixed choices, e.g. log levels.
  choices(spec):: {
    type: 'custom',
    name: spec.name,
    label: spec.label,
    query: std.join(',', spec.values),
    multi: spec.multi,
    includeAll: spec.include_all,
    allValue: '.*',
    current: all,
    options: [option(v, false) for v in spec.values],
    hide: 0,
  },

  // A drop-down filled from the label values of a metric in Mimir.
  labelValues(spec, datasource):: {
    local selector = spec.metric + (if spec.job != null then '{job="' + spec.job + '"}' else ''),
    local query = 'label_values(' + selector + ', ' + spec.label_name + ')',
    type: 'query',
    name: spec.name,
    label: spec.label,
    datasource: datasource,
    query: query,
    definition: query,
    refresh: 2,
    sort: 1,
    multi: spec.multi,
    includeAll: spec.include_all,
    allValue: '.*',
    current: all,
    options: [],
    hide: 0,
  },
}
