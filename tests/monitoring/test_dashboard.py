"""The Grafana dashboard: both rows, and every query parses and names known series."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.promql import DASHBOARD, known_metrics, metric_names, promtool

# What Grafana puts in for its variables, so that promtool sees plain PromQL.
SUBSTITUTIONS = {
    "$__rate_interval": "2m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": "modelwatch-demo",
    "$monitor": "churn",
    "$model": "churn",
}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _substitute(text: str) -> str:
    for name, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        text = text.replace("${" + name[1:] + "}", value).replace(name, value)
    assert "$" not in text, f"a variable without a value: {text}"
    return text


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every variable's series selector."""
    found = [
        (f"panel {p['title']!r} {t['refId']}", _substitute(t["expr"]))
        for p in _panels()
        for t in p["targets"]
    ]
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        found.append((f"variable {variable['name']}", _substitute(match.group(1))))
    return found


def test_dashboard_has_the_fleet_and_the_monitor_rows() -> None:
    rows = [p["title"] for p in _dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Fleet", "Monitor $namespace/$monitor"]
    titles = {p["title"] for p in _panels()}
    assert {
        "Monitors by phase",
        "Drifted",
        "Degraded",
        "Failing checks (1h)",
        "Retrains",
        "Promotions and rollbacks",
        "Drift share",
        "Performance: realized and estimated",
        "Serving version",
        "Check duration",
        "Server latency",
        "Server requests and error rate",
    } <= titles
    variables = {v["name"] for v in _dashboard()["templating"]["list"]}
    assert {"datasource", "namespace", "monitor", "model"} <= variables


def test_panels_are_well_formed() -> None:
    ids = [p["id"] for p in _dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_monitor_row_queries_filter_on_the_chosen_monitor() -> None:
    (row_index,) = [
        i for i, p in enumerate(_dashboard()["panels"]) if p["title"].startswith("Monitor ")
    ]
    for panel in _dashboard()["panels"][row_index + 1 :]:
        for target in panel["targets"]:
            expr = target["expr"]
            if "all monitors" in target["legendFormat"]:
                continue
            assert '$monitor"' in expr or '$model"' in expr, (panel["title"], expr)


def test_every_query_names_known_series() -> None:
    known = known_metrics()
    for where, expr in queries():
        names = metric_names(expr)
        assert names, f"{where}: no series in {expr}"
        assert names <= known, f"{where}: unknown {sorted(names - known)}"


@pytest.mark.skipif(promtool() is None, reason="promtool not found (make promtool)")
def test_every_query_parses(tmp_path: Path) -> None:
    """Each query becomes a recording rule; promtool parses them all."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries())
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [str(promtool()), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
