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
            out[rel] = templates.render_file(folder / template, **data)
        except TemplateError as err:
            problems.append(Problem(src.at(), f"template error: {err}"))
    return out, problems
