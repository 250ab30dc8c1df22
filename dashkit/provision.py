"""Grafana provisioning files besides the alert rules: the datasources (wired for correlation), the dashboard
provider, the contact point and the notification policy. Rendered from templates/provisioning/*.jsonnet with
values/defaults.yaml."""

from __future__ import annotations

from .engines import TemplateError, Templates
from .out_tree import out_tree
from .problems import Problem, Source


def provisioning(templates: Templates, defaults: dict, src: Source) -> tuple[dict[str, dict], list[Problem]]:
    folder = templates.dir / "provisioning"
    tree, grafana = out_tree(defaults), defaults["grafana"]
    out, problems = {}, []
    for rel, template, data in (
        (tree.datasources, "datasources.jsonnet", {"datasources": defaults["datasources"]}),
        (
            tree.provider,
            "dashboards.jsonnet",
            {"name": tree.prefix, "folder": grafana["folder"], "reads": tree.provider_reads},
        ),
        (
            tree.contact_points,
            "contact-points.jsonnet",
            {"prefix": tree.prefix, "name": grafana["contact_point"], "receivers": grafana["receivers"]},
        ),
        (
            tree.notification_policy,
            "notification-policy.jsonnet",
            {
                "contact_point": grafana["contact_point"],
                "group_by": grafana["group_by"],
                "repeat_interval": grafana["repeat_interval"],
            },
        ),
    ):
        try:
            out[rel] = templates.render_file(folder / template, **inert(data))
        except TemplateError as err:
            problems.append(Problem(src.at(), f"template error: {err}"))
    return out, problems


def inert(value):
    """User text with every `$` doubled: Grafana expands $VAR and ${VAR} in provisioning files from its own
    environment at start-up, so a `$` from values (a datasource name, a folder, a contact point) would otherwise
    read Grafana's environment, secrets included, into what every viewer sees. `$$` is Grafana's escape for
    a literal `$`. The environment variables the templates do expand are fixed in the templates or an
    allowlist in the values schema (url_env, tenant_env) and carry no `$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: inert(item) for key, item in value.items()}
    if isinstance(value, list):
        return [inert(item) for item in value]
    return value
