"""The periodic resync against the in-memory API: lost events, crashes between record and
act, a recreated Deployment, timed-out rollouts, and two operator processes at once."""

# ruff: noqa: F811  (the ``api`` fixture is imported from the loop tests)

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from modelwatch_operator import constants as c
from modelwatch_operator import (
    events,
    kube,
    reconcile_jobs,
    reconcile_monitor,
    reconcile_rollout,
    resync,
)
from modelwatch_operator.monitors import read_monitor
from tests.operator.docs import condition_doc
from tests.operator.test_operator_reconciling import (
    CHECK_DRIFT,
    NS,
    RETRAIN_WIN,
    SHA2,
    T0,
    Clock,
    FakeApi,
    api,  # noqa: F401
    cond,
    run_to_rollout,
    status,
)


def env(api: FakeApi) -> dict[str, str]:
    cont = api.deployments["srv"]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in cont["env"]}


def scheduled_check(api: FakeApi, name: str) -> None:
    api.jobs[name] = {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: "check"},
        },
        "spec": api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"],
    }


def test_a_lost_check_event_is_read_once(api: FakeApi) -> None:
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    scheduled_check(api, "mm-check-1")
    api.finish_job("mm-check-1", CHECK_DRIFT)  # the Job event handler never ran
    assert resync.resync_monitor(NS, "mm", now=clock) == []
    s = status(api)
    assert s["lastCheckJob"] == "mm-check-1" and len(s["history"]) == 1
    assert api.created_jobs == ["mm-retrain-2"]
    before = copy.deepcopy(s)
    assert resync.resync_monitor(NS, "mm", now=clock) == []
    assert status(api) == before and api.created_jobs == ["mm-retrain-2"]


def test_unread_checks_are_read_in_the_order_they_finished(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["retrain"]["enabled"] = False
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    clean = {**CHECK_DRIFT, "datasetDrift": False, "nDrifted": 0}
    for name, minute in (("mm-check-b", 2), ("mm-check-a", 1)):
        scheduled_check(api, name)
        api.finish_job(name, clean, at=T0.replace(minute=minute))
    resync.resync_monitor(NS, "mm", now=clock)
    s = status(api)
    assert s["lastCheckJob"] == "mm-check-b" and len(s["history"]) == 2


def test_a_lost_retrain_result_is_read_and_promoted(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    api.finish_job("mm-retrain-2", RETRAIN_WIN)  # its event was lost
    resync.resync_monitor(NS, "mm", now=clock)
    s = status(api)
    assert "retrain" not in s and s["rollout"]["version"] == 2
    assert env(api)["MODEL_VERSION"] == "2"


def test_a_reserved_version_without_its_job_gets_it(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    del api.jobs["mm-retrain-2"]  # the operator died between the status write and the create
    resync.resync_monitor(NS, "mm", now=clock)
    assert "mm-retrain-2" in api.jobs and status(api)["retrain"]["version"] == 2
    resync.resync_monitor(NS, "mm", now=clock)
    assert api.created_jobs == ["mm-retrain-2", "mm-retrain-2"]  # once more, not twice more


def test_a_reserved_version_whose_job_is_rejected_ends_failed(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    del api.jobs["mm-retrain-2"]

    def reject(manifest: dict[str, Any]) -> bool:
        raise kube.ApiException(status=422, reason="Unprocessable Entity")

    monkeypatch.setattr(kube, "create_job", reject)
    assert resync.resync_monitor(NS, "mm", now=clock) == []
    assert "retrain" not in status(api)
    assert cond(api, c.COND_RETRAINING) == ("False", "JobRejected")


def test_crash_between_record_and_patch_is_repaired_with_the_right_previous_version(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    patch = api.patch_deployment

    def crash(namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        raise kube.ApiException(status=503, reason="Service Unavailable")

    monkeypatch.setattr(kube, "patch_deployment", crash)
    with pytest.raises(kube.ApiException):
        reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    s = status(api)
    assert s["rollout"]["version"] == 2 and s["rollout"]["previousVersion"] == 1
    assert s["rollout"]["previousSha256"] == "sha1"
    assert env(api)["MODEL_VERSION"] == "1"  # recorded, not acted

    monkeypatch.setattr(kube, "patch_deployment", patch)
    clock.tick(5)
    assert resync.resync_monitor(NS, "mm", now=clock) == []
    assert env(api) == {"MODEL_VERSION": "2", "MODEL_SHA256": SHA2}
    s = status(api)
    assert s["rollout"]["previousVersion"] == 1  # from status, not from the live Deployment
    assert s["rollout"]["generation"] == api.deployments["srv"]["metadata"]["generation"]


def test_a_recreated_deployment_gets_the_target_again(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    assert status(api)["rollout"]["deploymentUid"] == "d1"
    # kubectl delete + apply of the original manifest (edited a few times since): a new
    # uid, version 1 again, and a generation past the one the rollout recorded.
    dep = api.deployments["srv"]
    dep["metadata"].update({"uid": "d2", "generation": 5})
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_VERSION", "value": "1"},
        {"name": "MODEL_SHA256", "value": "sha1"},
    ]
    dep["status"] = {}
    # Its first event: the rollout must not complete at version 1.
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["rollout"]["version"] == 2
    resync.resync_monitor(NS, "mm", now=clock)
    assert env(api)["MODEL_VERSION"] == "2"
    assert status(api)["rollout"]["deploymentUid"] == "d2"
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["currentVersion"] == 2 and "rollout" not in status(api)


def test_a_rollout_that_never_finishes_is_rolled_back(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    api.set_rollout("srv", done=False)  # pods never become available, no verdict either
    clock.tick(30 + 59)  # progressDeadlineSeconds 30 + margin 60, less one second
    resync.resync_monitor(NS, "mm", now=clock)
    assert status(api)["rollout"]["kind"] == "Promote"
    clock.tick(1)
    resync.resync_monitor(NS, "mm", now=clock)
    s = status(api)
    assert s["rollout"]["kind"] == "Rollback" and s["rollout"]["version"] == 1
    assert s["rollout"]["previousVersion"] == 2
    rolled = condition_doc(s, c.COND_ROLLOUT)
    assert rolled["reason"] == "RolledBack" and "RolloutTimedOut" in rolled["message"]
    assert env(api) == {"MODEL_VERSION": "1", "MODEL_SHA256": "sha1"}
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["currentVersion"] == 1 and "rollout" not in status(api)


def test_a_deleted_deployment_fails_the_rollout_once_timed_out(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    del api.deployments["srv"]
    resync.resync_monitor(NS, "mm", now=clock)
    assert status(api)["rollout"]["version"] == 2  # waits for it to come back
    clock.tick(91)
    resync.resync_monitor(NS, "mm", now=clock)
    s = status(api)
    assert "rollout" not in s
    assert cond(api, c.COND_ROLLOUT) == ("False", "DeploymentNotFound")
    assert cond(api, c.COND_READY) == ("False", "RolloutFailed")


def test_two_processes_fold_a_result_once(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another operator folds the same Job between this one's read and its write: the
    conditional write fails with 409, the fold runs again on fresh status, and finds it read."""
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    scheduled_check(api, "mm-check-1")
    job = api.finish_job("mm-check-1", CHECK_DRIFT)
    write = api.patch_monitor_status
    raced: list[bool] = []

    def racing_write(
        namespace: str, name: str, patch: dict[str, Any], *, resource_version: str | None = None
    ) -> None:
        if not raced and "lastCheckJob" in patch:
            raced.append(True)
            reconcile_jobs.handle_job(job, now=clock)  # the other replica, first
        write(namespace, name, patch, resource_version=resource_version)

    posted: list[str] = []
    monkeypatch.setattr(
        events, "post", lambda body, *, type, reason, message: posted.append(reason)
    )
    monkeypatch.setattr(kube, "patch_monitor_status", racing_write)
    reconcile_jobs.handle_job(job, now=clock)
    s = status(api)
    assert raced and len(s["history"]) == 1
    assert api.created_jobs == ["mm-retrain-2"]
    assert [r["version"] for r in s["retrains"]] == [2]
    # Said once: the loser of the race did not fold (nor announce) the result again.
    assert posted.count("DriftDetected") == 1 and posted.count("RetrainStarted") == 1


def test_resync_reports_a_failing_step_and_still_does_the_others(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    del api.jobs["mm-retrain-2"]
    scheduled_check(api, "mm-check-2")
    api.finish_job("mm-check-2", {**CHECK_DRIFT, "reportId": "r2"}, at=T0.replace(minute=9))

    def broken(namespace: str, job: str) -> list[dict[str, Any]]:
        raise kube.ApiException(status=500, reason="Internal Server Error")

    monkeypatch.setattr(kube, "list_job_pods", broken)
    errors = resync.resync_monitor(NS, "mm", now=clock)
    assert len(errors) == 1 and errors[0].startswith("ReadJob")
    assert "mm-retrain-2" in api.jobs  # the other step ran


def test_plan_relabels_a_deployment_that_carries_the_target_without_the_label(
    api: FakeApi,
) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    api.deployments["srv"]["metadata"]["labels"] = {}  # re-created from a manifest at v2
    gathered = resync.gather(NS, "mm")
    assert gathered is not None
    (step,) = resync.plan(gathered, now=clock())
    assert isinstance(step, resync.ReapplyRollout) and step.reason == "DeploymentNotLabelled"
    resync.resync_monitor(NS, "mm", now=clock)
    assert api.deployments["srv"]["metadata"]["labels"] == {c.LABEL_MONITOR: "mm"}


def _job(name: str, kind: str, *, done: str | None) -> dict[str, Any]:
    job: dict[str, Any] = {
        "metadata": {
            "name": name,
            "labels": {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: kind},
        },
        "status": {},
    }
    if done:
        job["status"] = {
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": done,
        }
    return job


def _dep(*, version: str = "2", labelled: bool = True) -> dict[str, Any]:
    env = [{"name": "MODEL_VERSION", "value": version}, {"name": "MODEL_SHA256", "value": "s2"}]
    return {
        "metadata": {
            "name": "srv",
            "uid": "d1",
            "labels": {c.LABEL_MONITOR: "mm"} if labelled else {},
        },
        "spec": {"template": {"spec": {"containers": [{"name": "server", "env": env}]}}},
    }


ROLLOUT = {
    "kind": "Promote",
    "version": 2,
    "sha256": "s2",
    "startedAt": "2026-11-23T12:00:00Z",
    "deploymentUid": "d1",
    "generation": 2,
}
RETRAIN = {"version": 3, "job": "mm-retrain-3"}


@pytest.mark.parametrize(
    ("status_", "jobs", "dep", "seconds", "expected"),
    [
        ({}, [], None, 0, []),
        ({}, [_job("mm-check-1", "check", done="2026-11-23T12:00:00Z")], None, 0, ["ReadJob"]),
        ({}, [_job("mm-check-1", "check", done=None)], None, 0, []),
        (
            {"lastCheckJob": "mm-check-1"},
            [_job("mm-check-1", "check", done="2026-11-23T12:00:00Z")],
            None,
            0,
            [],
        ),
        (
            {"lastCheckJob": "mm-check-2", "lastCheckFinishedAt": "2026-11-23T12:05:00Z"},
            [_job("mm-check-1", "check", done="2026-11-23T12:00:00Z")],
            None,
            0,
            [],
        ),
        ({"retrain": RETRAIN}, [], None, 0, ["CreateRetrainJob"]),
        ({"retrain": RETRAIN}, [_job("mm-retrain-3", "retrain", done=None)], None, 0, []),
        (
            {"retrain": RETRAIN},
            [_job("mm-retrain-3", "retrain", done="2026-11-23T12:00:00Z")],
            None,
            0,
            ["ReadJob"],
        ),
        ({}, [_job("mm-retrain-9", "retrain", done="2026-11-23T12:00:00Z")], None, 0, []),
        ({"rollout": ROLLOUT}, [], _dep(), 10, ["FollowRollout"]),
        ({"rollout": ROLLOUT}, [], _dep(version="1"), 10, ["ReapplyRollout"]),
        ({"rollout": ROLLOUT}, [], _dep(labelled=False), 10, ["ReapplyRollout"]),
        ({"rollout": ROLLOUT}, [], None, 10, []),
        ({"rollout": ROLLOUT}, [], None, 69, []),  # 10 s + the 60 s margin
        ({"rollout": ROLLOUT}, [], None, 70, ["FailRollout"]),
        ({"rollout": ROLLOUT}, [], _dep(), 70, ["FailRollout"]),
        (
            {"rollout": ROLLOUT, "retrain": RETRAIN},
            [_job("mm-check-1", "check", done="2026-11-23T12:00:00Z")],
            _dep(),
            10,
            ["ReadJob", "CreateRetrainJob", "FollowRollout"],
        ),
    ],
)
def test_plan(
    status_: dict[str, Any],
    jobs: list[dict[str, Any]],
    dep: dict[str, Any] | None,
    seconds: float,
    expected: list[str],
) -> None:
    deployment = {"name": "srv", "container": "server", "progressDeadlineSeconds": 10}
    body = {
        "metadata": {"name": "mm", "namespace": NS, "generation": 1},
        "spec": {
            "model": {"name": "iris", "target": "y"},
            "store": {"uri": "/store"},
            "data": {"reference": {"uri": "/store/ref.csv"}},
            "deployment": deployment,
        },
        "status": status_,
    }
    mm = read_monitor(body)
    steps = resync.plan(resync.Gathered(mm, jobs, dep), now=T0 + dt.timedelta(seconds=seconds))
    assert [type(step).__name__ for step in steps] == expected
