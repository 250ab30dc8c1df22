// Grafana notification policy: every alert to the contact point, critical ones repeated sooner. Provisioning
// a policy replaces the organisation's whole policy tree (README, "Deploy").
function(contact_point, group_by, repeat_interval)
  local route(severity) = {
    receiver: contact_point,
    object_matchers: [['severity', '=', severity]],
    repeat_interval: repeat_interval[severity],
  };
  {
    apiVersion: 1,
    policies: [{
      orgId: 1,
      receiver: contact_point,
      group_by: group_by,
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: repeat_interval.warning,
      routes: [route('critical'), route('warning')],
    }],
  }
