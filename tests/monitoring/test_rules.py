"""The alerting rules: valid for promtool, unit-tested, on known metrics, with a runbook."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.monitoring.promql import (
    MONITORING,
    RULES,
    RULES_TEST,
    known_metrics,
    metric_names,
    promtool,
)

needs_promtool = pytest.mark.skipif(
    promtool() is None,
    reason="promtool not found: install Debian's prometheus package (make test does)",
)


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    proc = subprocess.run(
        [str(promtool()), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in proc.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    proc = subprocess.run(
        [str(promtool()), "test", "rules", RULES_TEST.name],
        capture_output=True,
        text=True,
        cwd=MONITORING,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in tests:
        for case in test["alert_rule_test"]:
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_rules_follow_the_conventions() -> None:
    for rule in _alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Modelwatch[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"README.md#{name.lower()}", name
        if not rule["expr"].startswith("absent("):  # absent() has no labels to name
            assert "{{" in annotations["description"], f"{name}: description names no figure"


def test_every_alert_has_a_runbook_entry() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Runbook\n", 1)[1].split("\n## ", 1)[0]
    headings = set(re.findall(r"^### (\S+)$", section, flags=re.M))
    assert headings == {rule["alert"] for rule in _alerts()}


def test_rules_use_only_known_metrics() -> None:
    known = known_metrics()
    for rule in _alerts():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']}: {sorted(unknown)}"


def test_metric_names_of_promql() -> None:
    expr = (
        'sum by (namespace, monitor) (increase(modelwatch_checks_total{outcome="failed"}[30m]))'
        ' >= 3 unless on (namespace, monitor) max(modelwatch_monitor_phase{phase="x"} offset 5m)'
        " == 1 and time() - 3 * up"
    )
    assert metric_names(expr) == {"modelwatch_checks_total", "modelwatch_monitor_phase", "up"}


def test_prometheus_rule_matches_the_plain_rules() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "hack" / "gen-monitoring.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
