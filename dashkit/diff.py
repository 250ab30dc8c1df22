"""What changed between two dashboard trees, in words: dashboards, panels (matched by identity, not by
position or id), queries, units, thresholds, legends, descriptions, datasources, variables, alert rules.

Renumbered ids and gridPos shifted by a panel added above are not changes; a panel whose order among the
panels both sides share changed is "moved".
"""

from __future__ import annotations

import difflib
import json

import yaml

from .panels import placed_panels

FIELDS = (  # what a reviewer cares about on a panel, and how to read it
    ("type", lambda p: p.get("type")),
    ("description", lambda p: p.get("description")),
    ("datasource", lambda p: (p.get("datasource") or {}).get("uid")),
    ("unit", lambda p: p.get("fieldConfig", {}).get("defaults", {}).get("unit")),
    ("thresholds", lambda p: _steps(p)),
    ("min", lambda p: p.get("fieldConfig", {}).get("defaults", {}).get("min")),
    ("max", lambda p: p.get("fieldConfig", {}).get("defaults", {}).get("max")),
    ("decimals", lambda p: p.get("fieldConfig", {}).get("defaults", {}).get("decimals")),
    ("size", lambda p: f"{p['gridPos']['w']}x{p['gridPos']['h']}" if "gridPos" in p else None),
)


def _steps(panel: dict):
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    return ", ".join(f"{s['color']}" + ("" if s["value"] is None else f" from {s['value']:g}") for s in steps) or None


def _query(target: dict) -> str:
    return target.get("expr") or target.get("query") or target.get("serviceMapQuery") or ""


def panels_by_identity(dashboard: dict) -> dict[tuple[str, str], dict]:
    """(row title, panel title) -> panel with its row and its order in the dashboard."""
    out, order = {}, 0
    for panel, row_header, _ in placed_panels(dashboard):
        if panel.get("type") == "row":
            continue
        row = row_header.get("title", "") if row_header else ""
        out[(row, panel.get("title", ""))] = dict(panel, _row=row, _order=(order := order + 1))
    return out


def diff_dashboards(old: dict, new: dict) -> list[str]:
    """Bullet lines of what changed between two versions of one dashboard."""
    lines: list[str] = []
    if old.get("title") != new.get("title"):
        lines.append(f"- title: {old.get('title')!r} → {new.get('title')!r}")
    before, after = panels_by_identity(old), panels_by_identity(new)
    removed = {k: v for k, v in before.items() if k not in after}
    added = {k: v for k, v in after.items() if k not in before}
    for old_key in sorted(removed):  # same title in another row: the panel moved between rows
        same = [k for k in sorted(added) if k[1] == old_key[1]]
        if same:
            lines += _panel_changes(old_key[1], removed.pop(old_key), added.pop(same[0]), moved=False)
    renamed = _renames(removed, added)
    for old_key, new_key in renamed:
        lines.append(
            f"- panel **{old_key[1]}** renamed to **{new_key[1]}**" + (f" (row *{new_key[0]}*)" if new_key[0] else "")
        )
        lines += _panel_changes(new_key[1], removed.pop(old_key), added.pop(new_key), moved=False)
    for key, panel in sorted(added.items(), key=lambda kv: kv[1]["_order"]):
        lines.append(
            f"- panel **{key[1]}** added to row *{key[0] or '(top)'}* ({panel.get('type')}, {panel.get('fieldConfig', {}).get('defaults', {}).get('unit', 'no unit')})"
        )
    for key, _panel in sorted(removed.items(), key=lambda kv: kv[1]["_order"]):
        lines.append(f"- panel **{key[1]}** removed from row *{key[0] or '(top)'}*")
    common_before = [k for k in sorted(before, key=lambda k: before[k]["_order"]) if k in after]
    common_after = [k for k in sorted(after, key=lambda k: after[k]["_order"]) if k in before]
    stayed = set()
    for block in difflib.SequenceMatcher(a=common_before, b=common_after, autojunk=False).get_matching_blocks():
        stayed.update(common_before[block.a : block.a + block.size])
    for key in common_after:
        lines += _panel_changes(key[1], before[key], after[key], moved=key not in stayed)
    lines += _variable_changes(old, new)
    return lines


def _renames(removed: dict, added: dict) -> list[tuple]:
    """A removed and an added panel with the same type and the same queries are one panel renamed."""
    pairs = []
    for old_key, old in sorted(removed.items()):
        signature = (old.get("type"), tuple(_query(t) for t in old.get("targets", [])))
        for new_key, new in sorted(added.items()):
            if (new.get("type"), tuple(_query(t) for t in new.get("targets", []))) == signature and new_key not in [
                p[1] for p in pairs
            ]:
                pairs.append((old_key, new_key))
                break
    return pairs


def _panel_changes(title: str, old: dict, new: dict, moved: bool) -> list[str]:
    lines = []
    if old["_row"] != new["_row"]:
        lines.append(f"- panel **{title}** moved from row *{old['_row'] or '(top)'}* to row *{new['_row'] or '(top)'}*")
    elif moved:
        lines.append(f"- panel **{title}** moved within row *{new['_row'] or '(top)'}*")
    for name, read in FIELDS:
        a, b = read(old), read(new)
        if a != b:
            lines.append(f"- panel **{title}**: {name} `{a}` → `{b}`")
    old_targets = {t.get("refId"): t for t in old.get("targets", [])}
    new_targets = {t.get("refId"): t for t in new.get("targets", [])}
    for ref in sorted(set(old_targets) | set(new_targets)):
        a, b = old_targets.get(ref), new_targets.get(ref)
        if a is None:
            lines.append(f"- panel **{title}**: query {ref} added: `{_query(b)}`")
        elif b is None:
            lines.append(f"- panel **{title}**: query {ref} removed: `{_query(a)}`")
        else:
            if _query(a) != _query(b):
                lines += [
                    f"- panel **{title}**: query {ref} changed",
                    "  ```diff",
                    f"  - {_query(a)}",
                    f"  + {_query(b)}",
                    "  ```",
                ]
            if a.get("legendFormat") != b.get("legendFormat"):
                lines.append(f"- panel **{title}**: legend {ref} `{a.get('legendFormat')}` → `{b.get('legendFormat')}`")
    return lines


def _variable_changes(old: dict, new: dict) -> list[str]:
    before = {v["name"]: v for v in old.get("templating", {}).get("list", [])}
    after = {v["name"]: v for v in new.get("templating", {}).get("list", [])}
    lines = [
        f"- variable **${n}** added ({after[n]['type']}: `{after[n].get('query', '')}`)"
        for n in after
        if n not in before
    ]
    lines += [f"- variable **${n}** removed" for n in before if n not in after]
    for name in after:
        if name in before:
            for key in ("type", "query", "label", "multi", "includeAll"):
                if before[name].get(key) != after[name].get(key):
                    lines.append(f"- variable **${name}**: {key} `{before[name].get(key)}` → `{after[name].get(key)}`")
    return lines


def diff_rules(old_text: str | None, new_text: str | None) -> list[str]:
    """Alert and recording rule changes between two Prometheus rule files."""

    def index(text):
        out = {}
        for group in (yaml.safe_load(text) or {}).get("groups", []) if text else []:
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record")
                out[(group["name"], name)] = rule
        return out

    before, after = index(old_text), index(new_text)
    lines = [f"- rule **{n}** added to {g}" for (g, n) in after if (g, n) not in before]
    lines += [f"- rule **{n}** removed from {g}" for (g, n) in before if (g, n) not in after]
    for key in after:
        if key in before and before[key] != after[key]:
            for field in sorted(set(before[key]) | set(after[key])):
                if before[key].get(field) != after[key].get(field):
                    lines.append(
                        f"- rule **{key[1]}** ({key[0]}): {field} `{_short(before[key].get(field))}` → `{_short(after[key].get(field))}`"
                    )
    return lines


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def layout_changed(old: dict, new: dict) -> bool:
    def boxes(d):
        return sorted(
            (k, p.get("gridPos", {}).get("w"), p.get("gridPos", {}).get("h")) for k, p in panels_by_identity(d).items()
        )

    def order(d):
        return [k for k, _ in sorted(panels_by_identity(d).items(), key=lambda kv: kv[1]["_order"])]

    return boxes(old) != boxes(new) or order(old) != order(new)


def diff_trees(
    old: dict[str, str], new: dict[str, str], preview_links: dict[str, tuple[str, str]] | None = None
) -> tuple[str, int]:
    """Markdown report for two trees (path -> text). Returns (report, number of changes)."""
    sections, count = [], 0
    paths = sorted(p for p in set(old) | set(new) if p.endswith(".json"))
    for path in paths:
        if path not in old:
            title = json.loads(new[path]).get("title")
            sections.append(f"## {title} (`{path}`)\n\n- dashboard added")
            count += 1
            continue
        if path not in new:
            sections.append(f"## {json.loads(old[path]).get('title')} (`{path}`)\n\n- dashboard removed")
            count += 1
            continue
        a, b = json.loads(old[path]), json.loads(new[path])
        lines = diff_dashboards(a, b)
        if lines:
            count += sum(1 for line in lines if line.startswith("- "))
            head = f"## {b.get('title')} (`{path}`)\n"
            if preview_links and path in preview_links and layout_changed(a, b):
                before, after = preview_links[path]
                head += f"\nLayout: [before]({before}) → [after]({after})\n"
            sections.append(head + "\n" + "\n".join(lines))
    for rule_file in sorted(p for p in set(old) | set(new) if p.startswith("rules/")):
        lines = diff_rules(old.get(rule_file), new.get(rule_file))
        if lines:
            count += len(lines)
            sections.append(f"## Rules (`{rule_file}`)\n\n" + "\n".join(lines))
    body = "\n\n".join(sections) if sections else "No dashboard or rule changes."
    return f"# Dashboard changes\n\n{body}\n", count
