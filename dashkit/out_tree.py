"""Where each file goes in out/. Pure: the names come from values/defaults.yaml alone.

out/ is laid out as a Grafana provisioning folder, so that copying it into Grafana's one is the whole deploy:
Grafana reads dashboards/*.yaml (the provider, which points at dashboards/<prefix>/), datasources/ and
alerting/. rules/ holds the ruler's files (mimirtool); Grafana never looks into a folder of that name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutTree:
    prefix: str  # values/defaults.yaml uid_prefix
    provisioning_path: str  # Grafana's provisioning folder on the server, where out/ is copied

    @property
    def dashboards_dir(self) -> str:
        return f"dashboards/{self.prefix}"

    def dashboard(self, kind: str, slug: str) -> str:
        """A dashboard file relative to dashboards_dir: what snapshots, diffs and previews are named by."""
        return f"{self.prefix}-overview.json" if kind == "overview" else f"services/{slug}.json"

    def in_out(self, dashboard_path: str) -> str:
        return f"{self.dashboards_dir}/{dashboard_path}"

    @property
    def provider(self) -> str:
        return f"dashboards/{self.prefix}.yaml"

    @property
    def provider_reads(self) -> str:
        """The folder the dashboard provider reads, on the Grafana server."""
        return f"{self.provisioning_path.rstrip('/')}/{self.dashboards_dir}"

    @property
    def datasources(self) -> str:
        return f"datasources/{self.prefix}-lgtm.yaml"

    @property
    def alert_rules(self) -> str:
        return f"alerting/{self.prefix}-alert-rules.yaml"

    @property
    def contact_points(self) -> str:
        return f"alerting/{self.prefix}-contact-points.yaml"

    @property
    def notification_policy(self) -> str:
        return f"alerting/{self.prefix}-notification-policy.yaml"

    # Plain Prometheus rule files (promtool, Prometheus rule_files). `mimirtool rules load` puts each file's
    # groups in the namespace named after the file without its extension: <prefix>-recording, <prefix>-alerts.
    @property
    def recording_rules(self) -> str:
        return f"rules/{self.prefix}-recording.yaml"

    @property
    def ruler_alerts(self) -> str:
        return f"rules/{self.prefix}-alerts.yaml"


def out_tree(defaults: dict) -> OutTree:
    return OutTree(defaults["uid_prefix"], defaults["grafana"]["provisioning_path"])
