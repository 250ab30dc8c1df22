"""Per dashboard and panel: data, empty, allowed empty, error (tools/verify.py --prometheus-url), from the live
check's per-query outcomes; the --allow-empty file; the Markdown and JSON reports.

A panel shows data when any of its queries does (Grafana draws what it has; the empty ones are named in the
detail), is empty when all of them are, and is an error when any query fails. Variables are rows of their
dashboard (`$name`): a drop-down with no values empties every panel that filters on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .live.check import Outcome
from .problems import Problem, Where
from .safe_read import MAX_VALUES_BYTES, decode
from .suggest import did_you_mean
from .yamlsource import load_yaml

ALLOW_KEYS = ("dashboard", "panel", "reason")
FAILING = ("empty", "error")  # a panel status that fails the run (exit 1)


@dataclass
class PanelResult:
    dashboard: str
    uid: str
    panel: str  # its title, or $name for a variable
    kind: str  # panel | variable
    status: str  # data | empty | allowed empty | error | not run | not checked (LogQL) | not checked (TraceQL)
    detail: str = ""  # an error, the allow-empty reason, the drift that explains an empty panel, the empty queries
    queries: list[dict] = field(default_factory=list)  # {ref, expr, status, message}
    explained_by: list[str] = field(default_factory=list)  # drift lines


def panel_results(outcomes: list[Outcome]) -> list[PanelResult]:
    """One result per panel and variable, in dashboard order, from the outcomes of its queries."""
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        if o.kind != "rule":
            groups.setdefault((o.kind, o.uid, o.panel_id, o.panel), []).append(o)
    results = []
    for (kind, uid, _, panel), group in groups.items():
        status, detail = _status(group)
        queries = [{"ref": o.ref, "expr": o.expr, "status": o.status, "message": o.message} for o in group if o.expr]
        results.append(PanelResult(group[0].dashboard, uid, panel, kind, status, detail, queries))
    return results


def _status(group: list[Outcome]) -> tuple[str, str]:
    statuses = [o.status for o in group]
    if statuses[0].startswith("not checked"):
        return statuses[0], ""
    errors = [o for o in group if o.status == "error"]
    if errors:
        return "error", "; ".join(f"[{o.ref}] {o.message}" if o.ref else o.message for o in errors)
    if "not run" in statuses:
        return "not run", "the query budget was spent"
    if "data" in statuses:
        empty = [o.ref for o in group if o.status == "empty"]
        return "data", f"{', '.join(empty)} empty" if empty else ""
    return "empty", ""


def rule_results(outcomes: list[Outcome]) -> list[dict]:
    return [
        {"rule": o.panel, "expr": o.expr, "status": o.status, "message": o.message}
        for o in outcomes
        if o.kind == "rule"
    ]


# --- --allow-empty FILE ----------------------------------------------------------------------------------
def load_allow_empty(path: Path, dashboards: list[dict]) -> tuple[dict[tuple[str, str], str], list[Problem]]:
    """(dashboard uid, panel title or $variable) -> reason, and the problems of the file (FILE:LINE: ...)."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        return {}, [Problem(Where(name, 0), err.strerror or str(err))]
    text, why = decode(raw) if len(raw) <= MAX_VALUES_BYTES else (None, f"is over {MAX_VALUES_BYTES:,} bytes")
    if text is None:
        return {}, [Problem(Where(name, 0), why)]
    data, src, problems = load_yaml(text, name)
    if problems:
        return {}, problems
    if not isinstance(data, list):
        return {}, [Problem(src.at(), "expected a list of {dashboard, panel, reason}")]
    boards = {d["title"]: d for d in dashboards} | {d["uid"]: d for d in dashboards}
    allowed = {}
    for i, item in enumerate(data):
        entry, found = _allow_entry(item, src.child(i), boards)
        problems += found
        if entry:
            allowed[entry[0]] = entry[1]
    return allowed, problems


def _allow_entry(item, src, boards: dict) -> tuple[tuple | None, list[Problem]]:
    if not isinstance(item, dict):
        return None, [Problem(src.at(), "expected a mapping {dashboard, panel, reason}")]
    problems = [
        Problem(src.at(key), f"unknown key '{key}'{did_you_mean(key, ALLOW_KEYS)}")
        for key in item
        if key not in ALLOW_KEYS
    ]
    for key in ALLOW_KEYS:
        if not isinstance(item.get(key), str) or not item[key].strip():
            what = "a reason is required: why is this panel empty, rightly?" if key == "reason" else "required text"
            problems.append(Problem(src.at(key) if key in item else src.at(), f"{key}: {what}"))
    if problems:
        return None, problems
    board = boards.get(item["dashboard"])
    if board is None:
        titles = sorted({b["title"] for b in boards.values()})
        hint = did_you_mean(item["dashboard"], titles) or f" (dashboards: {', '.join(titles)})"
        return None, [Problem(src.at("dashboard"), f"no dashboard titled or with uid '{item['dashboard']}'{hint}")]
    names = panel_names(board)
    if item["panel"] not in names:
        hint = did_you_mean(item["panel"], names)
        return None, [Problem(src.at("panel"), f"no panel '{item['panel']}' on '{board['title']}'{hint}")]
    return ((board["uid"], item["panel"]), item["reason"].strip()), []


def panel_names(board: dict) -> list[str]:
    from .panels import panels_of

    names = [p["title"] for p in panels_of(board) if p.get("type") != "row" and p.get("title")]
    return sorted(set(names) | {f"${v['name']}" for v in board["templating"]["list"] if v["type"] == "query"})


def apply_allowed(results: list[PanelResult], allowed: dict[tuple[str, str], str]) -> list[str]:
    """Empty panels the file allows become `allowed empty` with the reason. Returns notes on entries that
    allow a panel which shows data now (not an error: production data comes and goes)."""
    notes = []
    for r in results:
        reason = allowed.get((r.uid, r.panel))
        if reason is None:
            continue
        if r.status == "empty":
            r.status, r.detail = "allowed empty", reason
        elif r.status == "data":
            notes.append(f"{r.dashboard} › {r.panel}: allowed empty, but shows data now")
    return notes


# --- reports -------------------------------------------------------------------------------------------
def summary(results: list[PanelResult], rules: list[dict], drift: int, errors: int, remote) -> dict:
    order = ("data", "empty", "allowed empty", "error", "not run", "not checked")

    def count(kind: str) -> dict[str, int]:
        statuses = [
            "not checked" if r.status.startswith("not checked") else r.status for r in results if r.kind == kind
        ]
        return {k: statuses.count(k) for k in order if kind == "panel" or k != "not checked"}

    return {
        "panels": count("panel"),
        "variables": count("variable"),
        "rules": {s: sum(r["status"] == s for r in rules) for s in ("data", "empty", "error", "not run")},
        "drift": drift,
        "panels_reading_drift": sum(1 for r in results if r.explained_by),
        "series_errors": errors,
        "queries_run": remote.used,
        "queries_not_run": remote.refused,
        "budget": remote.max_queries,
    }


def failing(results: list[PanelResult], rules: list[dict]) -> bool:
    return any(r.status in FAILING for r in results) or any(r["status"] == "error" for r in rules)


def as_json(head: dict, results: list[PanelResult], rules: list[dict], drift: list, totals: dict) -> dict:
    return dict(head, summary=totals, panels=[asdict(r) for r in results], rules=rules, catalog_drift=drift)


def markdown(head: dict, results: list[PanelResult], rules: list[dict], drift: list, totals: dict) -> str:
    p = totals["panels"]
    out = [
        f"# Verify against {head['prometheus_url']}",
        "",
        f"Range {head['start']} .. {head['end']} ({head['range']}); tenant {head['tenant'] or '(none)'}.",
        "",
        "| panels with data | empty | allowed empty | error | not run | not checked | drift | queries run / budget |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {p['data']} | {p['empty']} | {p['allowed empty']} | {p['error']} | {p['not run']} | {p['not checked']} "
        f"| {totals['drift']} | {totals['queries_run']} / {totals['budget']} |",
        "",
        "Variables: " + ", ".join(f"{n} {k}" for k, n in totals["variables"].items() if n or k == "data") + ".",
        f"Panels and variables that read what drifts: {totals['panels_reading_drift']}.",
    ]
    for board in dict.fromkeys((r.dashboard, r.uid) for r in results):
        out += ["", f"## {board[0]} (`{board[1]}`)", "", "| panel | status | detail |", "| --- | --- | --- |"]
        for r in results:
            if (r.dashboard, r.uid) == board:
                detail = "; ".join([r.detail] * bool(r.detail) + r.explained_by)
                out.append(f"| {_cell(r.panel)} | {r.status} | {_cell(detail)} |")
    out += ["", "## Rules", "", "| rule | status | detail |", "| --- | --- | --- |"]
    out += [f"| {_cell(r['rule'])} | {r['status']} | {_cell(r['message'])} |" for r in rules]
    out += ["", "## Catalog drift", ""]
    for d in drift:
        out += [f"### {d['source']}", ""] + ([f"- {line}" for line in d["lines"]] or ["No drift."]) + [""]
        out += [f"- note: {n}" for n in d.get("notes", [])] + [""] * bool(d.get("notes"))
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
