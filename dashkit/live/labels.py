"""Label drift seen in the data: what an empty result cannot tell apart from a quiet service.

A matcher on a label that no series of its metric carries can never match: a service exporting `handler`
where the catalog says `endpoint`, or `status_code` for `status`. A zero-guarded query (`... or 0 * traffic`)
then shows a calm 0 instead of No data, and `sum by (endpoint)` over series without `endpoint` draws one
unnamed series: the panels look fine and mean nothing. Both are checked on the data the queries run on.
"""

from __future__ import annotations

import re

from .. import promql

SCRAPE_LABELS = {"__name__", "job", "instance"}  # set by the scrape on every series of a target


def _requires_label(matcher) -> bool:
    """Whether the matcher only matches series that carry its label."""
    op = str(matcher.op)
    if op == "MatchOp.Equal":
        return matcher.value != ""
    if op == "MatchOp.Re":
        try:
            return re.fullmatch(matcher.value, "") is None
        except re.error:
            return False  # an RE2-only pattern: leave it to the query's own error
    return False


class LabelProbe:
    """Asks the server, once per metric and label, whether any current series carries the label."""

    def __init__(self, prom, at: int, catalog):
        self.prom, self.at, self.catalog = prom, at, catalog
        self._present: dict[str, bool | None] = {}

    def _count(self, selector: str) -> bool | None:
        answer = self.prom.query(f"count({selector})", self.at)
        if answer.get("status") != "success":
            return None
        return bool(answer["data"]["result"])

    def carries(self, metric: str, label: str, scope: str = "") -> bool | None:
        """True/False when the metric has series now (within scope, e.g. `job="api-gateway"`); None when it
        has none (nothing to tell)."""
        whole = f"{metric}{{{scope}}}"
        if whole not in self._present:
            self._present[whole] = self._count(whole)
        if not self._present[whole]:
            return None
        labelled = f'{metric}{{{scope}{", " if scope else ""}{label}!=""}}'
        if labelled not in self._present:
            self._present[labelled] = self._count(labelled)
        return self._present[labelled]

    def gaps(self, expr: str) -> list[str]:
        """One message per matcher on a label its metric's series do not carry."""
        try:
            node = promql.parse(expr)
        except ValueError:
            return []
        out = []
        for selector in promql.selectors(node):
            name = promql.selector_name(selector)
            matchers = list(selector.matchers.matchers) if name else []
            # within the selector's own target (one service's series may drift while another's do not)
            scope = ", ".join(
                f'{m.name}="{m.value}"'
                for m in matchers
                if m.name in SCRAPE_LABELS - {"__name__"} and str(m.op) == "MatchOp.Equal"
            )
            _, metric, part = promql.resolve_series(name, self.catalog) if name else (None, None, "")
            # a label the catalog does not know is reported where the expression is checked; here: the
            # catalog's labels that the data lacks
            known = promql.series_labels(metric, part) if metric else set()
            for matcher in matchers:
                if matcher.name in SCRAPE_LABELS or matcher.name not in known or not _requires_label(matcher):
                    continue
                if self.carries(name, matcher.name, scope) is False:
                    out.append(
                        f"`{name}` has series, but none carries the label `{matcher.name}`: the matcher on it can "
                        "never match (does the service export it under another name? nox -s verify says which)"
                    )
        return sorted(set(out))


def grouping_gap(expr: str, answer: dict) -> str | None:
    """The labels an outermost `by (...)` groups on that no series of the answer has."""
    try:
        node = promql.parse(expr)
    except ValueError:
        return None
    while True:  # through parentheses and a filter against a number (`... >= 0`), which keep the labels
        if type(node).__name__ == "ParenExpr":
            node = node.expr
        elif type(node).__name__ == "BinaryExpr" and type(node.rhs).__name__ == "NumberLiteral":
            node = node.lhs
        elif type(node).__name__ == "Call" and node.func.name == "histogram_quantile":
            node = node.args[1]  # its series keep every label of the aggregation but `le`
        else:
            break
    modifier = getattr(node, "modifier", None)
    if type(node).__name__ != "AggregateExpr" or modifier is None or not str(modifier.type).endswith("By"):
        return None
    result = (answer.get("data") or {}).get("result") or []
    missing = [
        label for label in modifier.labels if label != "le" and result and all(label not in s["metric"] for s in result)
    ]
    if not missing:
        return None
    return f"grouped by {', '.join(missing)}, but no series has it: the panel draws one series with an empty legend"
