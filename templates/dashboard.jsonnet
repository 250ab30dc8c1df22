// The dashboard frame: the one place where what every dashboard gets is applied (time, refresh,
// schema version, variables, links, annotations). Panels are laid out by the build and added after.
local link = import 'lib/link.libsonnet';
local variables = import 'lib/variables.libsonnet';

function(dashboard, defaults)
  local isService = dashboard.kind == 'service';
  {
    uid: dashboard.uid,
    title: dashboard.title,
    description: dashboard.description,
    tags: defaults.tags + dashboard.tags,
    timezone: defaults.timezone,
    editable: true,
    graphTooltip: 1,  // shared crosshair: line up a spike across panels
    time: defaults.time,
    timepicker: {},
    refresh: defaults.refresh,
    schemaVersion: 42,
    version: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    templating: {
      list:
        [variables.interval(defaults.interval)]
        + (if isService then [variables.constant('job', dashboard.job)] else [variables.services(dashboard.services)])
        + [
          if v.values != null then variables.choices(v)
          else variables.labelValues(v, { type: defaults.datasources.metrics.type, uid: defaults.datasources.metrics.uid })
          for v in dashboard.variables
        ],
    },
    links:
      if isService then [
        link.url('Platform overview', '/d/' + dashboard.overview_uid, 'All services at a glance', icon='dashboard'),
        link.dashboards('Services', dashboard.service_tag, 'Every service dashboard'),
      ] else [
        link.url(s.title, '/d/' + s.uid, s.title + ' service dashboard', icon='dashboard')
        for s in dashboard.services
      ],
  }
