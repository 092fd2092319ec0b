"""Table tests for status: phase precedence and condition transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelwatch_operator import status as st

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def cond(ctype: str, value: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": value,
        "reason": "R",
        "message": "m",
        "lastTransitionTime": "2026-11-23T11:00:00Z",
    }


CHECKED = {"lastCheck": {"time": "2026-11-23T11:00:00Z"}}


@pytest.mark.parametrize(
    ("spec", "status", "phase"),
    [
        ({}, {}, "Pending"),
        ({}, {"currentVersion": 1}, "Pending"),
        ({}, CHECKED, "Healthy"),
        ({"suspend": True}, {**CHECKED, "rollout": {"version": 2}}, "Suspended"),
        ({}, {**CHECKED, "rollout": {"version": 2}, "retrain": {"job": "j"}}, "RollingOut"),
        ({}, {**CHECKED, "retrain": {"job": "j"}}, "Retraining"),
        (
            {},
            {**CHECKED, "conditions": [cond("Ready", "False"), cond("DataDrift", "True")]},
            "Failed",
        ),
        (
            {},
            {
                **CHECKED,
                "conditions": [cond("DataDrift", "True"), cond("PerformanceDegraded", "True")],
            },
            "Drifted",
        ),
        ({}, {**CHECKED, "conditions": [cond("PerformanceDegraded", "True")]}, "Degraded"),
        ({}, {**CHECKED, "conditions": [cond("DataDrift", "Unknown")]}, "Healthy"),
    ],
)
def test_phase(spec: dict[str, Any], status: dict[str, Any], phase: str) -> None:
    assert st.compute_phase(spec, status) == phase


def test_transition_time_moves_only_on_status_change() -> None:
    s: dict[str, Any] = {}
    st.set_condition(s, "DataDrift", True, "DriftDetected", "a", generation=1, now=T0)
    later = T0 + dt.timedelta(minutes=5)
    st.set_condition(s, "DataDrift", True, "DriftDetected", "b", generation=2, now=later)
    (c,) = s["conditions"]
    assert c["lastTransitionTime"] == "2026-11-23T12:00:00Z"
    assert (c["message"], c["observedGeneration"]) == ("b", 2)
    st.set_condition(s, "DataDrift", False, "NoDrift", "c", generation=2, now=later)
    assert s["conditions"][0]["lastTransitionTime"] == "2026-11-23T12:05:00Z"


def test_conditions_keep_a_fixed_order() -> None:
    s: dict[str, Any] = {}
    for ctype in ("RolloutComplete", "DataDrift", "Ready"):
        st.set_condition(s, ctype, None, "X", "", generation=1, now=T0)
    assert [c["type"] for c in s["conditions"]] == ["Ready", "DataDrift", "RolloutComplete"]


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({}, {"c": [1]}, {"c": [1]}),
    ],
)
def test_diff_is_a_merge_patch(
    old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert st.diff(old, new) == patch


def test_metrics_of_a_deleted_monitor_are_dropped() -> None:
    from modelwatch_operator import metrics

    metrics.CHECKS.labels("ns-x", "gone", "ok").inc()
    metrics.METRIC_VALUE.labels("ns-x", "gone", "accuracy").set(0.9)
    metrics.CHECKS.labels("ns-x", "kept", "ok").inc()
    metrics.forget("ns-x", "gone")
    keys = [k for k in metrics.CHECKS._metrics if k[0] == "ns-x"]
    assert keys == [("ns-x", "kept", "ok")]
    assert not [k for k in metrics.METRIC_VALUE._metrics if k[:2] == ("ns-x", "gone")]


def test_versions_keep_the_training_releases_bounded() -> None:
    s: dict[str, Any] = {}
    libraries = {
        "python": "3.11.7", "flaml": "2.8.0", "scikit-learn": "1.9.1", "numpy": 2,
        "nested": {"not": "a release"}, "flag": True, "x" * 100: "y" * 100,
    }  # fmt: skip
    st.remember_version(s, version=2, sha256="a" * 64, now=T0, libraries=libraries)
    got = s["versions"][0]["libraries"]
    assert got["flaml"] == "2.8.0" and got["scikit-learn"] == "1.9.1" and got["numpy"] == "2"
    assert "nested" not in got and "flag" not in got
    assert all(len(k) <= 40 and len(v) <= 40 for k, v in got.items())
    st.remember_version(s, version=3, sha256="b" * 64, now=T0, libraries=None)
    assert "libraries" not in s["versions"][1]


def _check(metric: dict[str, Any] | None, estimated: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "ok": True,
        "reportId": "r1",
        "datasetDrift": False,
        "driftShare": 0.0,
        "nDrifted": 0,
        "nFeatures": 3,
        "metric": metric,
        "estimatedMetric": estimated,
    }


ESTIMATE = {
    "name": "roc_auc",
    "estimated": True,
    "value": 0.71,
    "lower": 0.68,
    "upper": 0.74,
    "baseline": 0.9,
    "baselineSource": "reference",
    "relativeChange": -0.21,
    "degraded": True,
    "overridden": False,
    "rows": 800,
}


@pytest.mark.parametrize(
    ("metric", "estimated", "status", "reason"),
    [
        # A defined metric without a baseline is not judged: Unknown, NoBaseline.
        (
            {"name": "roc_auc", "value": 0.8, "degraded": None, "undefinedReason": "NoBaseline"},
            None,
            "Unknown",
            "NoBaseline",
        ),
        (
            {"name": "accuracy", "value": 0.7, "baseline": 0.9, "degraded": True},
            None,
            "True",
            "MetricDegraded",
        ),
        # No labels yet: the estimate decides, and says it is an estimate.
        ({"name": "roc_auc", "value": None, "undefinedReason": "no labels"}, ESTIMATE, "True",
         "EstimatedDegraded"),
        (None, {**ESTIMATE, "degraded": False}, "False", "EstimateWithinBounds"),
        (None, {**ESTIMATE, "baseline": None, "degraded": None}, "Unknown", "NoBaseline"),
        # Labels cover the window: the realized metric overrides the estimate.
        (
            {"name": "roc_auc", "value": 0.89, "baseline": 0.9, "degraded": False},
            {**ESTIMATE, "overridden": True},
            "False",
            "MetricWithinBounds",
        ),
        (None, None, "Unknown", "MetricUndefined"),
    ],
)  # fmt: skip
def test_performance_condition(
    metric: dict[str, Any] | None, estimated: dict[str, Any] | None, status: str, reason: str
) -> None:
    s: dict[str, Any] = {}
    st.record_check(s, {}, _check(metric, estimated), job="j", generation=1, now=T0)
    (c,) = [c for c in s["conditions"] if c["type"] == "PerformanceDegraded"]
    assert (c["status"], c["reason"]) == (status, reason), c["message"]
    if reason == "NoBaseline":
        assert "spec.performance.baseline" in c["message"]
    if reason.startswith("Estimate"):
        assert "estimate" in c["message"] and "0.68" in c["message"]


def test_estimated_metric_in_status_and_history() -> None:
    s: dict[str, Any] = {}
    st.record_check(s, {}, _check(None, ESTIMATE), job="j", generation=1, now=T0)
    assert s["estimatedMetric"] == "roc_auc~0.71[0.68,0.74]"
    assert s["lastCheck"]["estimatedMetric"]["estimated"] is True
    assert s["history"][-1]["estimatedDegraded"] is True and s["history"][-1]["degraded"] is False
    assert s["phase"] == "Degraded"
    overridden = {**ESTIMATE, "overridden": True}
    st.record_check(s, {}, _check(None, overridden), job="j2", generation=1, now=T0)
    assert "estimatedDegraded" not in s["history"][-1]
    st.record_check(s, {}, _check(None, None), job="j3", generation=1, now=T0)
    assert "estimatedMetric" not in s


def test_estimated_metric_gauge_is_forgotten() -> None:
    from modelwatch_operator import metrics

    metrics.ESTIMATED_METRIC.labels("ns-e", "gone", "accuracy", "lower").set(0.8)
    metrics.forget("ns-e", "gone")
    assert not [k for k in metrics.ESTIMATED_METRIC._metrics if k[:2] == ("ns-e", "gone")]
