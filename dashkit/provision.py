"""Grafana provisioning files besides alerting: the datasources (wired for correlation) and the dashboard
provider. Rendered from templates/provisioning/*.jsonnet with values/defaults.yaml."""

from __future__ import annotations

from .engines import TemplateError, Templates
from .problems import Problem, Source


def provisioning(templates: Templates, defaults: dict, src: Source) -> tuple[dict[str, dict], list[Problem]]:
    folder = templates.dir / "provisioning"
    out, problems = {}, []
    for rel, template, data in (
        ("provisioning/datasources/pyairtable-lgtm.yaml", "datasources.jsonnet", {"datasources": defaults["datasources"]}),
        ("provisioning/dashboards/pyairtable.yaml", "dashboards.jsonnet", {"folder": defaults["dashboards_path"]}),
    ):
        try:
            out[rel] = templates.render_file(folder / template, **inert(data))
        except TemplateError as err:
            problems.append(Problem(src.at(), f"template error: {err}"))
    return out, problems


def inert(value):
    """User text with every `$` doubled: Grafana expands $VAR and ${VAR} in provisioning files from its own
    environment at start-up, so a `$` from values (a datasource name, the dashboards path) would otherwise
    read Grafana's environment, secrets included, into what every viewer sees. `$$` is Grafana's escape for
    a literal `$`. The environment variables the templates do expand are an allowlist in the values schema
    (url_env, tenant_env) and carry no `$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: inert(item) for key, item in value.items()}
    if isinstance(value, list):
        return [inert(item) for item in value]
    return value
