"""deploy/grafana/reverie.json: every query parses as PromQL and names only Reverie's metrics.

The parser is promql-parser (the Rust promql-parser crate's Python bindings).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.helpers import DEPLOY

promql = pytest.importorskip("promql_parser", reason="pip install promql-parser")

# The metrics of issue 12's contract: name -> labels. Histograms add _bucket/_sum/_count.
WEB = {
    "reverie_queue_waiting": {"pool"},
    "reverie_sessions_live": {"pool"},
    "reverie_session_ends_total": {"pool", "reason"},
    "reverie_offers_total": {"pool"},
    "reverie_confirms_total": {"pool"},
    "reverie_offer_expiries_total": {"pool"},
    "reverie_workers": {"pool", "state"},
}
WORKER = {
    "reverie_frames_total": {"pool", "worker"},
    "reverie_slots": {"pool", "worker", "state"},
    "reverie_worker_draining": {"pool", "worker"},
}
HISTOGRAMS = {
    "reverie_queue_wait_seconds": {"pool"},
    "reverie_frame_seconds": {"pool", "stage"},
    "reverie_key_to_photon_seconds": {"pool"},
}
SERIES = {**WEB, **WORKER}
for name, labels in HISTOGRAMS.items():
    SERIES[f"{name}_bucket"] = labels | {"le"}
    SERIES[f"{name}_sum"] = SERIES[f"{name}_count"] = labels

# Grafana's variables, as Prometheus would receive them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m"}


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "reverie.json").read_text())


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def queries() -> list[str]:
    """Every PromQL expression: the panels' targets and the pool variable's label_values()."""
    found = [t["expr"] for p in panels(dashboard()["panels"]) for t in p.get("targets", [])]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            found.append(f"count by ({match[2]}) ({match[1]})")
    return found


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """(metric name, labels it matches or groups by) for each selector in the expression."""
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    tree = promql.parse(expression)  # raises ValueError on a syntax error
    grouping: set[str] = set()
    found: list[tuple[str, set[str]]] = []

    def visit(node):
        if isinstance(node, promql.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        if isinstance(node, promql.VectorSelector):
            matched = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            found.append((node.name, matched))

    promql.walk(tree, visit)
    return [(name, labels | grouping) for name, labels in found]


def test_every_query_parses_and_names_only_reverie_metrics():
    for expression in queries():
        names = selectors(expression)
        assert names, expression
        for name, labels in names:
            assert name in SERIES, f"{name} in {expression}"
            assert labels <= SERIES[name], f"{labels - SERIES[name]} in {expression}"


def test_a_misspelt_metric_or_broken_query_fails_the_check():
    with pytest.raises(ValueError):
        selectors("sum(rate(reverie_frames_total[$__rate_interval])")
    ((name, _),) = selectors("rate(reverie_frame_total[$__rate_interval])")
    assert name not in SERIES


def test_the_dashboard_shows_what_the_issue_asks_for():
    expressions = "\n".join(queries())
    for metric in (*WEB, *WORKER, *(f"{name}_bucket" for name in HISTOGRAMS)):
        assert metric in expressions, metric
    for quantile in ("histogram_quantile(0.5, ", "histogram_quantile(0.95, "):
        for histogram in ("reverie_queue_wait_seconds", "reverie_key_to_photon_seconds"):
            shown = [e for e in queries() if e.startswith(quantile) and histogram in e]
            assert shown, (quantile, histogram)


def test_every_panel_queries_the_chosen_data_source_and_pools():
    for panel in panels(dashboard()["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                assert 'pool=~"$pool"' in target["expr"], target["expr"]
    names = [variable["name"] for variable in dashboard()["templating"]["list"]]
    assert names == ["datasource", "pool"]
    ids = [panel["id"] for panel in panels(dashboard()["panels"])]
    assert len(ids) == len(set(ids))
