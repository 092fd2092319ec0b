"""Table tests for status: phase precedence and condition transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import status as st

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SPEC_DOC: dict[str, Any] = {
    "model": {"name": "m", "target": "y"},
    "data": {"reference": {"uri": "/store/ref.csv"}},
    "store": {"uri": "/store"},
}
SPEC = contract.Spec.model_validate(SPEC_DOC)


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
        (
            {},
            {**CHECKED, "rollout": {"version": 2}, "retrain": {"version": 2, "job": "j"}},
            "RollingOut",
        ),
        ({}, {**CHECKED, "retrain": {"version": 2, "job": "j"}}, "Retraining"),
        ({}, {**CHECKED, "retrain": {"version": 2}}, "Healthy"),  # reserved, no Job yet
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
    typed_spec = contract.Spec.model_validate({**SPEC_DOC, **spec})
    typed_status = contract.MonitorStatus.model_validate(status)
    assert st.compute_phase(typed_spec, typed_status) == phase


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
    metrics.forget_monitor("ns-x", "gone")
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


def _check(metric: dict[str, Any] | None, estimated: dict[str, Any] | None) -> contract.CheckOk:
    return contract.CheckOk.model_validate(
        {
            "kind": "check",
            "ok": True,
            "reportId": "r1",
            "datasetDrift": False,
            "driftShare": 0.0,
            "nDrifted": 0,
            "nFeatures": 3,
            "metric": metric,
            "estimatedMetric": estimated,
        }
    )


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
    st.record_check(s, SPEC, _check(metric, estimated), job="j", generation=1, now=T0)
    (c,) = [c for c in s["conditions"] if c["type"] == "PerformanceDegraded"]
    assert (c["status"], c["reason"]) == (status, reason), c["message"]
    if reason == "NoBaseline":
        assert "spec.performance.baseline" in c["message"]
    if reason.startswith("Estimate"):
        assert "estimate" in c["message"] and "0.68" in c["message"]


def test_estimated_metric_in_status_and_history() -> None:
    s: dict[str, Any] = {}
    st.record_check(s, SPEC, _check(None, ESTIMATE), job="j", generation=1, now=T0)
    assert s["estimatedMetric"] == "roc_auc~0.71[0.68,0.74]"
    assert s["lastCheck"]["estimatedMetric"]["estimated"] is True
    assert s["history"][-1]["estimatedDegraded"] is True and s["history"][-1]["degraded"] is False
    assert s["phase"] == "Degraded"
    overridden = {**ESTIMATE, "overridden": True}
    st.record_check(s, SPEC, _check(None, overridden), job="j2", generation=1, now=T0)
    assert "estimatedDegraded" not in s["history"][-1]
    st.record_check(s, SPEC, _check(None, None), job="j3", generation=1, now=T0)
    assert "estimatedMetric" not in s


def test_estimated_metric_gauge_is_forgotten() -> None:
    from modelwatch_operator import metrics

    metrics.ESTIMATED_METRIC.labels("ns-e", "gone", "accuracy", "lower").set(0.8)
    metrics.forget_monitor("ns-e", "gone")
    assert not [k for k in metrics.ESTIMATED_METRIC._metrics if k[:2] == ("ns-e", "gone")]


def _no_verdict(reason: str, message: str) -> contract.CheckNoVerdict:
    return contract.CheckNoVerdict.model_validate(
        {
            "kind": "check",
            "ok": True,
            "reason": reason,
            "message": message,
            "servingVersion": 2,
            "rows": {"reference": 500, "current": 0, "window": 0, "needed": 100},
        }
    )


def _verdict_given() -> dict[str, Any]:
    s: dict[str, Any] = {"currentVersion": 2}
    drifted = _check(None, None).model_copy(update={"dataset_drift": True, "n_drifted": 2})
    st.record_check(s, SPEC, drifted, job="mm-check-1", generation=1, now=T0)
    assert s["phase"] == "Drifted" and len(s["history"]) == 1
    return s


@pytest.mark.parametrize(
    ("reason", "message", "shown"),
    [
        (
            "NoData",
            "the current data '/store/p' has no rows in the window '1h'",
            "mm-check-2: NoData: the current data '/store/p' has no rows in the window '1h'",
        ),
        ("AwaitingTraffic", "version 2 has served 12 of 100 rows", "mm-check-2: version 2"),
    ],
)
def test_a_check_without_a_verdict_shows_its_reason(reason: str, message: str, shown: str) -> None:
    s = _verdict_given()
    later = T0 + dt.timedelta(hours=1)
    st.record_awaiting_traffic(
        s, SPEC, _no_verdict(reason, message), job="mm-check-2", generation=1, now=later
    )
    assert s["phase"] == reason  # NoData or AwaitingTraffic, never Failed
    ready = st.view(s).condition("Ready")
    assert ready is not None and (ready.status, ready.reason) == ("False", reason)
    assert ready.message.startswith(shown)
    for ctype in ("DataDrift", "PerformanceDegraded"):
        found = st.view(s).condition(ctype)
        assert found is not None and (found.status, found.reason) == ("Unknown", reason)
    assert "drift" not in s and "metric" not in s and "lastFailure" not in s
    assert len(s["history"]) == 1  # nothing joins the M-of-N window
    assert s["lastCheck"]["reason"] == reason and s["lastCheck"]["rows"]["needed"] == 100
    assert s["lastCheckJob"] == "mm-check-2"


@pytest.mark.parametrize(
    ("failure", "ready_reason", "phase"),
    [
        (
            contract.CheckFailed(reason="DataError", message="column 'y' not found"),
            "CheckFailed",
            "Failed",
        ),
        # An older image wrote an empty window as a failed check: still NoData.
        (contract.CheckFailed(reason="NoData", message="no rows"), "NoData", "NoData"),
        (
            contract.RetrainFailed(reason="NotEnoughLabels", message="12 labeled rows"),
            "RetrainFailed",
            "Failed",
        ),
        (st.Failure("check", "JobFailed", "Traceback: boom"), "CheckFailed", "Failed"),
        (st.Failure("retrain", "InvalidResult", "sha256: is required"), "RetrainFailed", "Failed"),
    ],
)
def test_record_failure(
    failure: contract.CheckFailed | contract.RetrainFailed | st.Failure,
    ready_reason: str,
    phase: str,
) -> None:
    s: dict[str, Any] = {"lastCheck": {"time": "2026-11-23T11:00:00Z"}}
    st.record_failure(s, SPEC, failure, job="mm-x", generation=1, now=T0)
    assert s["lastFailure"] == {
        "time": "2026-11-23T12:00:00Z",
        "job": "mm-x",
        "kind": failure.kind,
        "reason": failure.reason,
        "message": failure.message,
    }
    ready = st.view(s).condition("Ready")
    assert ready is not None and (ready.status, ready.reason) == ("False", ready_reason)
    assert ready.message == f"mm-x: {failure.reason}: {failure.message}"
    assert s["phase"] == phase


def test_set_condition_keeps_the_others_as_written() -> None:
    s: dict[str, Any] = {"conditions": [cond("Ready", "True"), cond("DataDrift", "False")]}
    st.set_condition(s, "DataDrift", True, "DriftDetected", "x", generation=3, now=T0)
    assert s["conditions"][0] == cond("Ready", "True")
    assert s["conditions"][1]["status"] == "True"
    assert s["conditions"][1]["lastTransitionTime"] == "2026-11-23T12:00:00Z"
    st.ensure_condition(s, "Ready", None, "AwaitingFirstCheck", "", generation=3, now=T0)
    assert s["conditions"][0] == cond("Ready", "True")


def test_remember_version_refreshes_one_and_keeps_the_rest() -> None:
    s: dict[str, Any] = {
        "latestVersion": 5,
        "versions": [{"version": 1, "sha256": "a" * 64, "createdAt": "2026-11-01T00:00:00Z"}],
    }
    st.remember_version(s, version=3, sha256="c" * 64, now=T0, score=0.9, metric="f1")
    st.remember_version(s, version=1, sha256="b" * 64, now=T0)
    assert [(v["version"], v["sha256"][0]) for v in s["versions"]] == [(1, "b"), (3, "c")]
    assert s["versions"][1] == {
        "version": 3,
        "sha256": "c" * 64,
        "createdAt": "2026-11-23T12:00:00Z",
        "score": 0.9,
        "metric": "f1",
    }
    assert s["latestVersion"] == 5


def test_a_failed_check_is_never_stale() -> None:
    serving = contract.MonitorStatus(current_version=2)
    assert not st.is_stale_check(serving, contract.CheckFailed(reason="DataError"))
    assert st.is_stale_check(serving, _check(None, None).model_copy(update={"serving_version": 1}))
