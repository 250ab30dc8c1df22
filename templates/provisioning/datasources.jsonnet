// Grafana datasource provisioning: Mimir, Loki and Tempo wired to each other.
// Grafana expands $VAR in provisioning files, so URLs and tenants come from its environment; a `$` that
// Grafana itself must see (${__value.raw}, ${job}, $__tags) is written `$$` to survive that expansion.
function(datasources)
  local m = datasources.metrics, l = datasources.logs, t = datasources.traces;
  local tenant(ds) = {
    jsonData+: { httpHeaderName1: 'X-Scope-OrgID' },
    secureJsonData: { httpHeaderValue1: '$' + ds.tenant_env },
  };
  local base(ds) = {
    name: ds.name,
    uid: ds.uid,
    type: ds.type,
    access: 'proxy',
    orgId: 1,
    url: '$' + ds.url_env,
    editable: false,
  } + tenant(ds);
  {
    apiVersion: 1,
    datasources: [
      base(m) + {
        isDefault: true,
        jsonData+: {
          prometheusType: 'Mimir',
          httpMethod: 'POST',
          timeInterval: '15s',
          // exemplars on latency panels open the trace in Tempo
          exemplarTraceIdDestinations: [{ name: 'trace_id', datasourceUid: t.uid, urlDisplayLabel: 'Open trace' }],
        },
      },
      base(l) + {
        jsonData+: {
          maxLines: 1000,
          // a trace id in a log line (JSON or logfmt) becomes a link to the trace in Tempo
          derivedFields: [{
            name: 'TraceID',
            matcherType: 'regex',
            matcherRegex: '(?:trace_id|traceID|traceId)"?[=:]\\s*"?(\\w+)',
            url: '$${__value.raw}',
            datasourceUid: t.uid,
            urlDisplayLabel: 'Open trace',
          }],
        },
        // logs -> metrics: from a log line's job to that service's traffic in Mimir
        correlations: [
          {
            targetUID: m.uid,
            label: 'Service request rate',
            description: 'Requests per second of the service that wrote this line, by status code',
            config: {
              type: 'query',
              target: { expr: 'sum by (status) (rate(http_requests_total{job="$${job}"}[5m]))' },
              field: 'job',
            },
          },
          {
            targetUID: m.uid,
            label: 'Service error ratio',
            description: 'Share of 5xx answers of the service that wrote this line',
            config: {
              type: 'query',
              target: { expr: 'job:http_request_errors_per_requests:ratio_rate5m{job="$${job}"}' },
              field: 'job',
            },
          },
        ],
      },
      base(t) + {
        jsonData+: {
          // traces -> logs: the span's service and trace id select the log lines in Loki
          tracesToLogsV2: {
            datasourceUid: l.uid,
            spanStartTimeShift: '-5m',
            spanEndTimeShift: '5m',
            tags: [{ key: 'service.name', value: 'job' }],
            filterByTraceID: true,
            filterBySpanID: false,
          },
          // traces -> metrics: the span's service's request rate and latency in Mimir
          tracesToMetrics: {
            datasourceUid: m.uid,
            spanStartTimeShift: '-5m',
            spanEndTimeShift: '5m',
            tags: [{ key: 'service.name', value: 'job' }],
            queries: [
              { name: 'Request rate', query: 'sum(rate(http_requests_total{$$__tags}[5m]))' },
              { name: 'P95 latency', query: 'job:http_request_duration_seconds:p95_rate5m{$$__tags}' },
            ],
          },
          serviceMap: { datasourceUid: m.uid },
          nodeGraph: { enabled: true },
          lokiSearch: { datasourceUid: l.uid },
          search: { hide: false },
        },
      },
    ],
  }
