// Grafana contact point: where alerts go. Addresses and URLs are Grafana's environment variables, expanded
// at start-up, so no address or secret is in the file; the names are fixed (see the values schema).
function(prefix, name, receivers)
  local settings = {
    email: { addresses: '$ALERT_EMAIL_ADDRESSES', singleEmail: false },
    slack: { url: '$ALERT_SLACK_URL' },
    webhook: { url: '$ALERT_WEBHOOK_URL', httpMethod: 'POST' },
  };
  {
    apiVersion: 1,
    contactPoints: [{
      orgId: 1,
      name: name,
      receivers: [
        { uid: prefix + '-' + type, type: type, settings: settings[type], disableResolveMessage: false }
        for type in receivers
      ],
    }],
  }
