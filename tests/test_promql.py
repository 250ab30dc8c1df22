"""Grafana's macros as the live check computes them, and the substitution that applies them."""

from __future__ import annotations

from conftest import ROOT

from dashkit import promql
from dashkit.live.check import grafana_intervals
from dashkit.pipeline import build


def test_grafana_intervals_for_a_1000_px_panel_and_a_100_point_stat():
    panel = grafana_intervals(6 * 3600, 15)
    assert (panel["__interval"], panel["__rate_interval"], panel["step"]) == ("20s", "60s", 20)  # 21.6 s rounds to 20 s
    stat = grafana_intervals(6 * 3600, 15, max_points=100)
    assert (stat["__interval"], stat["__rate_interval"]) == ("300s", "315s")  # 216 s rounds to 5 m


def test_computed_intervals_win_over_the_static_defaults():
    expr = "rate(x[$__rate_interval]) + rate(y[${__interval}]) + rate(z[$__range])"
    assert promql.substitute(expr, {})[0] == "rate(x[1m]) + rate(y[30s]) + rate(z[6h])"
    values = {k: v for k, v in grafana_intervals(6 * 3600, 15, max_points=100).items() if k != "step"}
    assert promql.substitute(expr, values)[0] == "rate(x[315s]) + rate(y[300s]) + rate(z[21600s])"


def test_variable_formats_expand_as_grafana_writes_them():
    values = {"s": ["api-gateway", "mcp.server"], "job": "api-gateway"}
    expr = 'x{a=~"$s", b=~"${s:regex}", c=~"${s:pipe}", d="${s:csv}", e="${s:glob}", f="${job}", g=~"[[s]]"}'
    assert promql.substitute(expr, values) == (
        'x{a=~"(api-gateway|mcp\\.server)", b=~"(api-gateway|mcp\\.server)", c=~"api-gateway|mcp.server", d="api-gateway,mcp.server", '
        'e="{api-gateway,mcp.server}", f="api-gateway", g=~"(api-gateway|mcp\\.server)"}',
        [],
    )
    assert promql.substitute('x{a=~"${s:regex}"}', {"s": ".*"})[0] == 'x{a=~".*"}', (
        "a custom All value is never escaped"
    )
    assert promql.variable_references('{client=~"$service"} ${level:regex}') == [
        ("service", None, "$service"),
        ("level", "regex", "${level:regex}"),
    ]


def test_a_raw_counter_is_refused_where_its_value_is_read_and_allowed_where_only_presence_is(tree):

    catalog = build(ROOT).catalog
    raw = "counter failover_events_total used without rate() or increase(): its raw value only ever climbs"
    assert promql.check_expr("sum by (component) (failover_events_total)", catalog)[0] == [raw]
    assert promql.check_expr("failover_events_total offset 15m", catalog)[0] == [raw]
    # count() and the right side of unless/and read which series exist: how a first increment is found
    assert (
        promql.check_expr(
            "count by (component) (failover_events_total unless failover_events_total offset 15m)", catalog
        )[0]
        == []
    )
    assert promql.check_expr("up unless failover_events_total", catalog)[0] == []
