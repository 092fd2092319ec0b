"""A check judges the version that serves: servingSince, the check arguments, AwaitingTraffic
and stale checks, folded into status."""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import pytest
import yaml

from modelwatch_monitor import contract
from modelwatch_operator import builders, events, policies, reconcile_jobs, reconcile_rollout
from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.monitors import read_monitor
from modelwatch_operator.policies import format_time
from tests.operator import test_operator_reconciling as loop
from tests.operator.test_operator_builders import monitor

api = loop.api  # the in-memory API fixture
FakeApi = loop.FakeApi
REPO = pathlib.Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

AWAITING = {
    "kind": "check",
    "ok": True,
    "reason": contract.REASON_AWAITING_TRAFFIC,
    "message": "version 2 has served 12 of the 200 rows a verdict needs "
    "(spec.data.current.minRows); 4,800 rows in the window were served by other versions (1) "
    "and do not count",
    "servingVersion": 2,
    "rows": {"reference": 4000, "current": 12, "window": 4812, "needed": 200},
}
HEALTHY_V2 = {
    "kind": "check",
    "ok": True,
    "reportId": "r3",
    "reportUri": "file:///store/iris/reports/r3",
    "datasetDrift": False,
    "driftShare": 0.0,
    "nDrifted": 0,
    "nFeatures": 4,
    "topFeatures": [],
    "metric": None,
    "servingVersion": 2,
    "rows": {"reference": 500, "current": 600, "window": 5400, "labeled": 0},
}
SPEC = contract.Spec.model_validate(
    {
        "model": {"name": "iris", "target": "y"},
        "data": {"reference": {"uri": "/store/ref.csv"}},
        "store": {"uri": "/store"},
        "retrain": {"enabled": True, "cooldown": "1h", "triggers": {"violations": 1, "window": 1}},
    }
)


def _after_rollout() -> dict[str, Any]:
    """Status just after version 2 rolled out: the last verdict was v1's drift."""
    s: dict[str, Any] = {
        "currentVersion": 2,
        "servingSince": "2026-11-23T11:00:00Z",
        "drift": "3/7",
        "metric": "accuracy=0.462",
        "lastCheck": {"time": "2026-11-23T10:00:00Z", "reportId": "r1"},
        "retrains": [{"version": 2, "startedAt": "2026-11-23T09:00:00Z", "outcome": "Promoted"}],
    }
    st.set_condition(s, c.COND_READY, True, "CheckSucceeded", "ok", generation=1, now=T0)
    st.await_check_of_new_version(s, "version 2 was rolled out", generation=1, now=T0)
    return s


def test_awaiting_traffic_folds_into_phase_and_ready_without_a_violation() -> None:
    s = st.record_awaiting_traffic(
        _after_rollout(),
        SPEC,
        contract.CheckNoVerdict.model_validate(AWAITING),
        job="mm-check-7",
        generation=1,
        now=T0,
    )
    assert s["phase"] == c.PHASE_AWAITING_TRAFFIC == "AwaitingTraffic"
    ready = st.view(s).condition(c.COND_READY)
    assert ready is not None and (ready.status, ready.reason) == ("False", "AwaitingTraffic")
    assert "version 2 has served 12 of the 200 rows a verdict needs" in ready.message
    assert "4,800 rows in the window were served by other versions (1)" in ready.message
    for ctype in (c.COND_DATA_DRIFT, c.COND_DEGRADED):
        found = st.view(s).condition(ctype)
        assert found is not None and (found.status, found.reason) == ("Unknown", "AwaitingTraffic")
    # The columns no longer show v1's verdict; nothing joins the M-of-N history.
    assert "drift" not in s and "metric" not in s
    assert s["history"] == []
    assert s["lastCheck"]["reason"] == "AwaitingTraffic" and s["lastCheck"]["servingVersion"] == 2
    assert s["lastCheck"]["rows"] == AWAITING["rows"]
    assert s["lastCheckJob"] == "mm-check-7"
    decision = policies.should_retrain(
        retrain=SPEC.retrain,
        estimate=SPEC.performance.estimate,
        status=st.view(s),
        now=T0 + dt.timedelta(hours=5),
    )
    assert not decision.fire and decision.reason == "BelowThreshold"

    # The next check with enough of v2's traffic gives a verdict again.
    healthy = contract.CheckOk.model_validate(HEALTHY_V2)
    s = st.record_check(s, SPEC, healthy, job="mm-check-8", generation=1, now=T0)
    assert s["phase"] == "Healthy" and s["drift"] == "0/4"
    ready = st.view(s).condition(c.COND_READY)
    assert ready is not None and ready.reason == "CheckSucceeded"


@pytest.mark.parametrize(
    ("ready_reason", "phase"),
    [("AwaitingTraffic", "AwaitingTraffic"), ("NoData", "NoData"), ("CheckFailed", "Failed")],
)
def test_phase_of_a_ready_false_reason(ready_reason: str, phase: str) -> None:
    s: dict[str, Any] = {"lastCheck": {"time": "t"}}
    st.set_condition(s, c.COND_READY, False, ready_reason, "m", generation=1, now=T0)
    assert st.compute_phase(SPEC, st.view(s)) == phase


def test_cronjob_carries_the_serving_version_and_since() -> None:
    body = monitor(schedule="* * * * *")
    body["status"] = {"currentVersion": 3, "servingSince": "2026-11-23T12:00:00Z"}
    mm = read_monitor(body)
    cron = builders.build_cronjob(mm)
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "check",
        "--config",
        contract.CONFIG_PATH,
        "--serving-version",
        "3",
        "--serving-since",
        "2026-11-23T12:00:00Z",
    ]
    check_now = builders.build_check_job(mm, name="iris-check-now-x")
    assert check_now["spec"]["template"]["spec"]["containers"][0]["args"] == container["args"]


def test_crd_declares_min_rows_serving_since_and_the_phase() -> None:
    crd = yaml.safe_load((REPO / "crds" / "modelmonitors.modelwatch.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    current = schema["spec"]["properties"]["data"]["properties"]["current"]["properties"]
    assert current["minRows"]["default"] == contract.DEFAULT_MIN_ROWS
    status = schema["status"]["properties"]
    assert c.PHASE_AWAITING_TRAFFIC in status["phase"]["enum"]
    assert status["servingSince"]["format"] == "date-time"
    assert {"servingVersion", "reason"} <= set(status["lastCheck"]["properties"])
    assert {"window", "needed"} <= set(status["lastCheck"]["properties"]["rows"]["properties"])


def _run_check(api: FakeApi, clock: loop.Clock, name: str, result: dict[str, Any]) -> list[str]:
    """Create check Job ``name`` from the CronJob as it is now, finish it; return its args."""
    template = api.cronjobs["mm-check"]["spec"]["jobTemplate"]
    api.jobs[name] = {
        "metadata": {"name": name, "namespace": loop.NS, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }
    args: list[str] = template["spec"]["template"]["spec"]["containers"][0]["args"]
    reconcile_jobs.handle_job(api.finish_job(name, result, at=clock.now), now=clock)
    return args


def test_after_a_rollout_only_the_new_versions_traffic_is_judged(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        events,
        "post",
        lambda body, *, type, reason, message: posted.append((reason, message)),
    )
    clock = loop.Clock()
    loop.run_to_rollout(api, clock)  # v1 drifted: retrain 2 runs
    args = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert args["containers"][0]["args"][3:] == ["--serving-version", "1"]  # no servingSince
    clock.tick(60)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", loop.RETRAIN_WIN), now=clock)
    clock.tick(60)
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = loop.status(api)
    assert s["currentVersion"] == 2 and s["servingSince"] == format_time(clock.now)
    rolled_out_at = format_time(clock.now)

    # The CronJob was re-applied: every later check judges version 2 only.
    clock.tick(3 * 3600)  # long past the retrain cooldown: a violation would retrain now
    args_seen = _run_check(api, clock, "mm-check-2", AWAITING)
    assert args_seen[3:] == ["--serving-version", "2", "--serving-since", rolled_out_at]
    s = loop.status(api)
    assert s["phase"] == "AwaitingTraffic"
    assert loop.cond(api, c.COND_READY) == ("False", "AwaitingTraffic")
    assert api.created_jobs == ["mm-retrain-2"]  # no retrain from older traffic
    assert posted[-1][0] == "AwaitingTraffic" and "12 of the 200 rows" in posted[-1][1]

    # A check created before the rollout completed judged v1 and found drift: not a
    # verdict on v2, not a reason to retrain.
    stale = {**loop.CHECK_DRIFT, "servingVersion": 1, "reportId": "r-stale"}
    clock.tick(60)
    _run_check(api, clock, "mm-check-3", stale)
    s = loop.status(api)
    assert s["history"] == [] and s["phase"] == "AwaitingTraffic"
    assert s["lastCheckJob"] == "mm-check-3" and s["lastCheck"]["job"] == "mm-check-2"
    assert api.created_jobs == ["mm-retrain-2"]
    assert posted[-1][0] == "StaleCheck" and "version 2 serves now" in posted[-1][1]

    # Enough of v2's traffic, in distribution: Healthy, 0 drifted, still one retrain.
    clock.tick(60)
    _run_check(api, clock, "mm-check-4", HEALTHY_V2)
    s = loop.status(api)
    assert s["phase"] == "Healthy" and s["drift"] == "0/4"
    assert s["lastCheck"]["servingVersion"] == 2
    assert loop.cond(api, c.COND_READY) == ("True", "CheckSucceeded")
    assert len(s["retrains"]) == 1 and api.created_jobs == ["mm-retrain-2"]


def test_a_rollback_keeps_the_serving_since_of_the_version_that_kept_serving(
    api: FakeApi,
) -> None:
    clock = loop.Clock()
    loop.run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", loop.RETRAIN_WIN), now=clock)
    clock.tick(40)
    reconcile_rollout.handle_deployment(
        api.set_rollout("srv", deadline_at=format_time(clock.now)), now=clock
    )
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = loop.status(api)
    assert s["currentVersion"] == 1 and "servingSince" not in s  # v1 served all along
    args = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert args["containers"][0]["args"][3:] == ["--serving-version", "1"]


def test_a_version_changed_outside_starts_serving_since_and_moves_the_check(
    api: FakeApi,
) -> None:
    clock = loop.Clock()
    loop.run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", loop.RETRAIN_WIN), now=clock)
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    clock.tick(600)
    loop._set_env_version(api, "1", "sha1")  # the original manifest, re-applied
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = loop.status(api)
    assert s["currentVersion"] == 1 and s["servingSince"] == format_time(clock.now)
    spec = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["containers"][0]["args"][3:] == [
        "--serving-version",
        "1",
        "--serving-since",
        format_time(clock.now),
    ]
