"""The operator's per-monitor series, read back as Prometheus text from the real registry."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs.references import Resource
from kopf._core.engines import peering
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelwatch_operator import constants as c
from modelwatch_operator import metrics, objects
from modelwatch_operator.monitors import read_monitor
from tests.operator.test_operator_builders import monitor

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(namespace: str) -> Series:
    """Every sample of ``namespace``'s monitors (and the unlabelled ones) in the text format."""
    out: Series = {}
    text = generate_latest(REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("namespace", namespace) != namespace:
                continue
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "namespace"))
            out[(sample.name, labels)] = sample.value
    return out


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


def named(series: Series, name: str, monitor: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: v
        for (n, labels), v in series.items()
        if n == name and ("monitor", monitor) in labels
    }


LOST = {"reason": "BelowMinImprovement", "generation": 1}
STATUS: dict[str, Any] = {
    "phase": "Drifted",
    "currentVersion": 4,
    "lastCheck": {
        "time": "2026-11-23T12:00:00Z",
        "reportId": "r9",
        "datasetDrift": True,
        "driftShare": 0.75,
        "nDrifted": 3,
        "nFeatures": 4,
        "metric": {"name": "accuracy", "value": 0.81},
        "estimatedMetric": {"name": "accuracy", "value": 0.8, "lower": 0.7, "upper": None},
    },
    "history": [
        {"time": "2026-11-23T09:00:00Z", "degraded": True},
        {"time": "2026-11-23T10:00:00Z", "drift": True},
        {"time": "2026-11-23T11:00:00Z", "drift": True, "estimatedDegraded": True},
        {"time": "2026-11-23T12:00:00Z", "drift": True},
    ],
    "retrains": [
        {"version": v, "finishedAt": f"2026-11-23T0{v}:30:00Z", **LOST} for v in (5, 6, 7)
    ],
    "conditions": [
        {"type": c.COND_RETRAINING, "status": "False", "reason": "RetrainBudgetExhausted"}
    ],
}


def body(namespace: str, name: str, status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    doc = monitor(**spec)
    doc["metadata"].update({"namespace": namespace, "name": name})
    doc["status"] = status
    return doc


def test_show_monitor_sets_every_gauge_from_status() -> None:
    ns = "ns-show"
    mm = read_monitor(body(ns, "mm", STATUS, deployment={"name": "srv"}, schedule="*/10 * * * *"))
    metrics.show_monitor(mm)
    got = scrape(ns)

    phases = named(got, "modelwatch_monitor_phase", "mm")
    assert {dict(k)["phase"]: v for k, v in phases.items() if v == 1} == {"Drifted": 1.0}
    assert {dict(k)["phase"] for k in phases} == set(metrics.PHASES)
    violations = {
        dict(k)["kind"]: v for k, v in named(got, "modelwatch_consecutive_violations", "mm").items()
    }
    assert violations == {"drift": 3.0, "degraded": 0.0, "estimated_degraded": 0.0}
    noon = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC).timestamp()
    one = {"monitor": "mm"}
    assert value(got, "modelwatch_last_successful_check_timestamp_seconds", **one) == noon
    assert value(got, "modelwatch_check_interval_seconds", **one) == 600.0
    assert value(got, "modelwatch_retrain_circuit_open", **one) == 1.0  # 3 losses in a row
    assert value(got, "modelwatch_retrain_budget_exhausted", **one) == 1.0
    assert value(got, "modelwatch_monitor_info", **one, model="iris", deployment="srv") == 1.0
    assert value(got, "modelwatch_current_version", **one) == 4.0
    assert value(got, "modelwatch_drift_share", **one) == 0.75
    assert value(got, "modelwatch_drifted_features", **one) == 3.0
    assert value(got, "modelwatch_metric_value", **one, metric="accuracy") == 0.81
    est = {**one, "metric": "accuracy"}
    assert value(got, "modelwatch_estimated_metric_value", **est, bound="estimate") == 0.8
    assert value(got, "modelwatch_estimated_metric_value", **est, bound="lower") == 0.7
    assert value(got, "modelwatch_estimated_metric_value", **est, bound="upper") is None
    # Counters exist at 0 before anything happened, one series per outcome and event.
    for outcome in ("ok", "failed", "awaiting_traffic", "stale"):
        assert value(got, "modelwatch_checks_total", **one, outcome=outcome) == 0.0
    for event in ("started", "succeeded", "failed"):
        assert value(got, "modelwatch_retrains_total", **one, event=event) == 0.0
    assert value(got, "modelwatch_promotions_total", **one) == 0.0
    assert value(got, "modelwatch_rollbacks_total", **one) == 0.0


def test_a_new_status_moves_the_gauges_and_drops_what_it_no_longer_says() -> None:
    ns = "ns-move"
    metrics.show_monitor(read_monitor(body(ns, "mm", STATUS, deployment={"name": "srv"})))
    metrics.count(ns, "mm", "checks", "ok")
    healthy = {
        "phase": "NoData",
        "lastCheck": {"time": "2026-11-23T13:00:00Z", "reason": "NoData"},
        "history": [*STATUS["history"], {"time": "2026-11-23T12:30:00Z"}],
        "conditions": [{"type": c.COND_RETRAINING, "status": "False", "reason": "Idle"}],
        "retrains": STATUS["retrains"],
    }
    spec = {"model": {"name": "wine", "target": "y"}, "schedule": "@daily"}
    metrics.show_monitor(read_monitor(body(ns, "mm", healthy, **spec)))
    got = scrape(ns)
    one = {"monitor": "mm"}
    assert value(got, "modelwatch_monitor_phase", **one, phase="NoData") == 1.0
    assert value(got, "modelwatch_monitor_phase", **one, phase="Drifted") == 0.0
    assert value(got, "modelwatch_consecutive_violations", **one, kind="drift") == 0.0
    # A check without a verdict is no success: the last one with a verdict stays.
    half_past = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC).timestamp()
    assert value(got, "modelwatch_last_successful_check_timestamp_seconds", **one) == half_past
    assert value(got, "modelwatch_check_interval_seconds", **one) == 86400.0
    assert value(got, "modelwatch_retrain_circuit_open", **one) == 0.0  # a healthy check since
    assert value(got, "modelwatch_retrain_budget_exhausted", **one) == 0.0
    info = named(got, "modelwatch_monitor_info", "mm")
    assert info == {(("deployment", ""), ("model", "wine"), ("monitor", "mm")): 1.0}
    assert value(got, "modelwatch_checks_total", **one, outcome="ok") == 1.0  # not reset


def test_forget_monitor_drops_every_series_of_that_monitor_only() -> None:
    ns = "ns-forget"
    for name in ("gone", "kept"):
        metrics.show_monitor(read_monitor(body(ns, name, STATUS)))
    metrics.forget_monitor(ns, "gone")
    got = scrape(ns)
    assert not [k for k in got if ("monitor", "gone") in k[1]]
    assert value(got, "modelwatch_monitor_phase", monitor="kept", phase="Drifted") == 1.0


def job(
    name: str, started: str, completed: str | None, kind: str = c.JOB_KIND_CHECK
) -> objects.Job:
    status = {"startTime": started, **({"completionTime": completed} if completed else {})}
    labels = {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: kind}
    meta = {"name": name, "namespace": "ns-job", "labels": labels}
    return objects.job({"metadata": meta, "status": status})


def test_check_duration_follows_the_newest_completed_check_job() -> None:
    metrics.show_job(job("mm-check-2", "2026-11-23T12:00:00Z", "2026-11-23T12:00:42Z"))
    # An older Job listed after it (a restarted operator), a retrain, a running check:
    metrics.show_job(job("mm-check-1", "2026-11-23T11:00:00Z", "2026-11-23T11:05:00Z"))
    metrics.show_job(job("mm-retrain-3", "2026-11-23T13:00:00Z", "2026-11-23T13:09:00Z", "retrain"))
    metrics.show_job(job("mm-check-3", "2026-11-23T13:00:00Z", None))
    assert value(scrape("ns-job"), "modelwatch_check_duration_seconds", monitor="mm") == 42.0


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("*/5 * * * *", 300.0),
        ("*/7 * * * *", 420.0),  # :56 to :00 is 4 minutes, :49 to :56 is 7
        ("30 2 * * *", 86400.0),
        ("@weekly", 7 * 86400.0),
        ("0 9 * * mon-fri", 3 * 86400.0),
        ("0 0 1 * *", 31 * 86400.0),
        ("0 0 1,15 * 1", 7 * 86400.0),  # the 1st, the 15th or a Monday
        ("0 0 29 2 *", 1461 * 86400.0),
        ("0 0 30 2 *", None),
        ("61 * * * *", None),
        ("not a schedule", None),
    ],
)
def test_schedule_interval_is_the_longest_gap(schedule: str, seconds: float | None) -> None:
    assert metrics.schedule_interval(schedule) == seconds


def test_leader_gauge_follows_kopf_peering() -> None:
    """kopf's own peering step pauses this operator for an older one, then resumes it."""
    logging.getLogger(metrics.PEERING_LOGGER).setLevel(logging.WARNING)  # as kopf run --quiet
    metrics.watch_leadership(paused=True)
    assert value(scrape(""), "modelwatch_operator_leader") == 0.0
    settings = kopf.OperatorSettings()
    settings.peering.name, settings.peering.priority = "modelwatch", 10
    resource = Resource("kopf.dev", "v1", "clusterkopfpeerings", namespaced=False)
    now = dt.datetime.now(dt.UTC).isoformat()

    async def step(peers: dict[str, Any], toggle: aiotoggles.Toggle) -> None:
        event: Any = {"type": "MODIFIED", "object": {"metadata": {"name": "modelwatch"}}}
        event["object"]["status"] = peers
        awake = asyncio.Event()
        awake.set()  # do not sleep until the peer's deadline
        await peering.process_peering_event(
            raw_event=event,
            namespace=None,
            resource=resource,
            identity=peering.Identity("me"),
            settings=settings,
            autoclean=False,
            stream_pressure=awake,
            conflicts_found=toggle,
        )

    async def run() -> tuple[float | None, float | None]:
        toggle = aiotoggles.Toggle(True)  # mandatory peering starts paused
        me = {"me": {"priority": 10, "lastseen": now, "lifetime": 60}}
        await step(me, toggle)
        alone = value(scrape(""), "modelwatch_operator_leader")
        await step({**me, "old": {"priority": 20, "lastseen": now, "lifetime": 60}}, toggle)
        return alone, value(scrape(""), "modelwatch_operator_leader")

    assert asyncio.run(run()) == (1.0, 0.0)
