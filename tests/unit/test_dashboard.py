"""The Grafana dashboard (deploy/grafana/responses-gateway.json) uses exactly the gateway's metric names.

The names that exist are derived from the registrations in `metrics.py`: `Metrics()` is built and its
registry's families are read (a counter `x` is exposed as `x_total`, a histogram as `x_bucket`,
`x_sum` and `x_count`, a gauge as `x`). Every PromQL expression of the dashboard (its panels' targets
and its template variables) is parsed for metric names, and each must be one of those; every family
registered must appear on the dashboard too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from responses_gateway.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "responses-gateway.json"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "inf", "nan"})  # fmt: skip
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, labels and numbers left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def exposed_names(metrics: Metrics) -> dict[str, str]:
    """Every sample name the registry can expose -> its family's name."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: dict[str, str] = {}
    for family in metrics.registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names[family.name + suffix] = family.name
    return names


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target (rows' nested panels too) and every query variable's metric."""
    exprs: list[str] = []

    def panels(items: list[dict[str, Any]]) -> None:
        for panel in items:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            panels(panel.get("panels", []))

    panels(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.search(text)
            assert match is not None, (
                f"variable {variable['name']}: only label_values(metric, label) is checked"
            )
            exprs.append(match.group(1))
    return exprs


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(gateway_request_seconds_bucket{route="/x",'
        'instance=~"$instance"}[$__rate_interval]))) / ignoring(route) sum(up offset 5m) and bool other:name'
    )
    assert metric_names(expr) == {"gateway_request_seconds_bucket", "up", "other:name"}
    assert metric_names('sum(rate(gateway_requests_total{status=~"5.."}[5m])) * 100') == {
        "gateway_requests_total"
    }


def test_every_dashboard_metric_exists_and_every_metric_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_expressions(dashboard)
    assert len(exprs) >= 20
    exposed = exposed_names(Metrics())
    used = {name: expr for expr in exprs for name in metric_names(expr)}
    unknown = {name: expr for name, expr in used.items() if name not in exposed}
    assert not unknown, f"dashboard metrics not registered in metrics.py: {unknown}"
    missing = set(exposed.values()) - {exposed[name] for name in used}
    assert not missing, f"metrics with no panel on the dashboard: {sorted(missing)}"


def test_an_unknown_name_is_caught() -> None:
    exposed = exposed_names(Metrics())
    assert "gateway_requests_total" in exposed and "gateway_request_seconds_bucket" in exposed
    assert "gateway_requests" not in exposed  # a counter only as `_total`
    names = metric_names("rate(gateway_request_total[5m])")
    assert names == {"gateway_request_total"} and not names <= exposed.keys()


@pytest.mark.parametrize("field", ["title", "uid"])
def test_dashboard_identity(field: str) -> None:
    assert json.loads(DASHBOARD.read_text())[field] == "responses-gateway"
