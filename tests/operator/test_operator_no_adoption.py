"""Never adopt, one monitor per Deployment, the image allowlist and strict results, against
the in-memory API of the loop tests (whose ``api`` fixture is imported: hence F811)."""

# ruff: noqa: F401, F811

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import children, guards, kube, reconcile_jobs, reconcile_monitor
from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.monitors import read_monitor
from tests.operator.docs import condition_doc
from tests.operator.test_operator_reconciling import (
    CHECK_DRIFT,
    NS,
    RETRAIN_WIN,
    Clock,
    FakeApi,
    api,
    cond,
    run_to_rollout,
    status,
)


def _users_config_map(name: str = "mm-config") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": "users",
            "resourceVersion": "5",
            "labels": {"app": "mine"},
        },
        "data": {"config.json": '{"mine": true}', "other": "keep me"},
    }


def _users_cronjob(name: str = "mm-check") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS, "uid": "users", "resourceVersion": "5"},
        "spec": {"schedule": "1 2 3 4 5", "jobTemplate": {"spec": {"template": {}}}},
    }


def _reconcile(api: FakeApi) -> str | None:
    return reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())


def _ready(api: FakeApi) -> dict[str, Any]:
    return condition_doc(status(api), c.COND_READY)


# ---------------------------------------------------------------------------
# ConfigMap and CronJob
# ---------------------------------------------------------------------------


def test_absent_children_are_created_then_owned_ones_updated(api: FakeApi) -> None:
    assert _reconcile(api) is None
    assert api.cronjobs["mm-check"]["metadata"]["ownerReferences"][0]["uid"] == "u1"
    written = int(api.cronjobs["mm-check"]["metadata"]["resourceVersion"])
    api.cronjobs["mm-check"]["metadata"]["annotations"] = {"team": "ml"}  # added by a user
    api.monitors["mm"]["spec"]["schedule"] = "*/9 * * * *"
    del api.monitors["mm"]["spec"]["store"]["volume"]
    assert _reconcile(api) is None
    cronjob = api.cronjobs["mm-check"]
    assert cronjob["spec"]["schedule"] == "*/9 * * * *"
    # Replaced, not merged: the dropped store volume is gone, the user's annotation stays.
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["config", "tmp"]
    assert cronjob["metadata"]["annotations"] == {"team": "ml"}
    assert cronjob["metadata"]["resourceVersion"] == str(written + 1)  # one replace


def test_users_config_map_is_left_alone(api: FakeApi) -> None:
    users = _users_config_map()
    api.config_maps["mm-config"] = copy.deepcopy(users)
    retry = _reconcile(api)
    ready = _ready(api)
    assert (ready["status"], ready["reason"]) == ("False", guards.NAME_CONFLICT)
    assert 'ConfigMap "mm-config" already exists' in ready["message"]
    assert retry == ready["message"]  # kopf tries again later
    assert api.config_maps["mm-config"] == users
    assert api.cronjobs == {}  # it would mount the user's ConfigMap
    assert api.deployments["srv"]["metadata"]["labels"] == {}  # nothing else is touched
    assert status(api)["phase"] == "Failed"

    # The user renames their ConfigMap away: the monitor recovers on its own.
    del api.config_maps["mm-config"]
    assert _reconcile(api) is None
    assert api.config_maps["mm-config"]["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert set(api.cronjobs) == {"mm-check"}
    assert cond(api, c.COND_READY) == ("Unknown", "ChildrenReady")


def test_users_cronjob_is_left_alone(api: FakeApi) -> None:
    users = _users_cronjob()
    api.cronjobs["mm-check"] = copy.deepcopy(users)
    _reconcile(api)
    ready = _ready(api)
    assert ready["reason"] == guards.NAME_CONFLICT
    assert 'CronJob "mm-check" already exists' in ready["message"]
    assert api.cronjobs["mm-check"] == users
    assert set(api.config_maps) == {"mm-config"}  # its own ConfigMap is fine


def test_a_child_of_another_owner_is_a_conflict(api: FakeApi) -> None:
    other = _users_config_map()
    other["metadata"]["ownerReferences"] = [{"kind": "ModelMonitor", "name": "mm", "uid": "u0"}]
    api.config_maps["mm-config"] = copy.deepcopy(other)
    _reconcile(api)
    assert cond(api, c.COND_READY) == ("False", guards.NAME_CONFLICT)
    assert api.config_maps["mm-config"] == other


def test_name_taken_between_read_and_create_is_read_again(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _users_config_map()

    def create_racing(manifest: Mapping[str, Any]) -> bool:
        api.config_maps["mm-config"] = copy.deepcopy(users)  # the user was faster
        return False  # 409 AlreadyExists

    monkeypatch.setattr(kube, "create_config_map", create_racing)
    _reconcile(api)
    assert cond(api, c.COND_READY) == ("False", guards.NAME_CONFLICT)
    assert api.config_maps["mm-config"] == users


def test_child_recreated_between_read_and_replace_is_read_again(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reconcile(api)
    users = _users_cronjob()
    real_get = api.get_cronjob

    def get_then_replace(namespace: str, name: str) -> dict[str, Any] | None:
        found = real_get(namespace, name)
        api.cronjobs[name] = copy.deepcopy(users)  # deleted and recreated by the user
        return found

    monkeypatch.setattr(kube, "get_cronjob", get_then_replace)
    _reconcile(api)
    assert cond(api, c.COND_READY) == ("False", guards.NAME_CONFLICT)
    assert api.cronjobs["mm-check"] == users


def test_a_child_that_keeps_changing_fails_the_handler(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "create_config_map", lambda manifest: False)
    with pytest.raises(children.ChildRaceError, match="ConfigMap ml/mm-config changed 3 times"):
        _reconcile(api)


def test_users_job_named_like_the_retrain_is_left_alone(api: FakeApi) -> None:
    _reconcile(api)
    users = {"metadata": {"name": "mm-retrain-2", "namespace": NS, "uid": "users"}, "spec": {}}
    api.jobs["mm-retrain-2"] = copy.deepcopy(users)
    reconcile_jobs.start_retrain(NS, "mm", manual=True, now=Clock())
    assert api.jobs["mm-retrain-2"] == users
    s = status(api)
    assert not s.get("retrain")
    assert s["lastFailure"]["reason"] == guards.NAME_CONFLICT
    assert 'Job "mm-retrain-2" already exists' in s["lastFailure"]["message"]
    assert cond(api, c.COND_RETRAINING) == ("False", guards.NAME_CONFLICT)


def test_own_job_found_on_retry_is_fine(api: FakeApi) -> None:
    _reconcile(api)
    reconcile_jobs.start_retrain(NS, "mm", manual=True, now=Clock())
    assert api.created_jobs == ["mm-retrain-2"]
    mm = kube.get_typed_monitor(NS, "mm")
    assert mm is not None and mm.status.retrain is not None
    reconcile_jobs.create_retrain_job(mm, mm.status.retrain)  # a retried handler
    assert status(api)["retrain"]["job"] == "mm-retrain-2"  # still in flight
    assert api.created_jobs == ["mm-retrain-2"]


# ---------------------------------------------------------------------------
# The serving Deployment
# ---------------------------------------------------------------------------


def _second_monitor(api: FakeApi) -> dict[str, Any]:
    second = copy.deepcopy(api.monitors["mm"])
    second["metadata"].update({"name": "mm2", "uid": "u2"})
    second.pop("status", None)
    api.monitors["mm2"] = second
    return second


def test_second_monitor_does_not_touch_a_claimed_deployment(api: FakeApi) -> None:
    _reconcile(api)
    before = copy.deepcopy(api.deployments["srv"])
    second = _second_monitor(api)
    retry = reconcile_monitor.reconcile(read_monitor(second), now=Clock())
    s2 = api.monitors["mm2"]["status"]
    ready = condition_doc(s2, c.COND_READY)
    assert (ready["status"], ready["reason"]) == ("False", guards.DEPLOYMENT_CLAIMED)
    assert 'claimed by ModelMonitor "mm"' in ready["message"]
    assert retry == ready["message"]
    assert "currentVersion" not in s2
    assert api.deployments["srv"] == before
    assert set(api.config_maps) == {"mm-config", "mm2-config"}  # its own children are fine


def test_takeover_is_conditional_on_the_deployment_as_read(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.deployments["srv"]["metadata"]["resourceVersion"] = "41"
    patches: list[dict[str, Any]] = []
    real_patch = api.patch_deployment

    def record(namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patches.append(copy.deepcopy(patch))
        return real_patch(namespace, name, patch)

    monkeypatch.setattr(kube, "patch_deployment", record)
    _reconcile(api)
    assert patches == [{"metadata": {"labels": {c.LABEL_MONITOR: "mm"}, "resourceVersion": "41"}}]
    _reconcile(api)
    assert len(patches) == 1  # claimed already: not patched again


def test_second_monitor_takes_over_once_the_first_is_gone(api: FakeApi) -> None:
    _reconcile(api)
    second = _second_monitor(api)
    reconcile_monitor.reconcile(read_monitor(second), now=Clock())
    del api.monitors["mm"]  # its label stays on the Deployment
    assert reconcile_monitor.reconcile(read_monitor(api.monitors["mm2"]), now=Clock()) is None
    assert api.deployments["srv"]["metadata"]["labels"] == {c.LABEL_MONITOR: "mm2"}
    s2 = api.monitors["mm2"]["status"]
    assert condition_doc(s2, c.COND_READY)["reason"] == "DeploymentFound"
    assert s2["currentVersion"] == 1


def test_rollout_refused_on_a_deployment_another_monitor_claimed(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)  # mm claimed srv and is retraining version 2
    _second_monitor(api)  # names srv too, and took it over meanwhile
    api.deployments["srv"]["metadata"]["labels"][c.LABEL_MONITOR] = "mm2"
    before = copy.deepcopy(api.deployments["srv"])
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    assert api.deployments["srv"] == before
    assert cond(api, c.COND_ROLLOUT) == ("False", guards.DEPLOYMENT_CLAIMED)
    assert not status(api).get("rollout")


# ---------------------------------------------------------------------------
# The monitor image allowlist
# ---------------------------------------------------------------------------


def test_image_not_on_the_allowlist_runs_nothing(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["images"] = {"monitor": "evil.example/miner:1"}
    retry = _reconcile(api)
    ready = _ready(api)
    assert (ready["status"], ready["reason"]) == ("False", guards.IMAGE_NOT_ALLOWED)
    assert 'spec.images.monitor: image "evil.example/miner:1" is not allowed' in ready["message"]
    assert "MODELWATCH_ALLOWED_MONITOR_IMAGES" in ready["message"]
    assert retry == ready["message"]
    assert api.config_maps == {} and api.cronjobs == {} and api.jobs == {}


def test_allowlist_from_the_operator_env(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWATCH_ALLOWED_MONITOR_IMAGES", "modelwatch/monitor:dev,reg.io/mw/*")
    api.monitors["mm"]["spec"]["images"] = {"monitor": "reg.io/mw/monitor:1.4"}
    assert _reconcile(api) is None
    container = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == "reg.io/mw/monitor:1.4"


def test_retrain_with_a_disallowed_image_is_not_started(api: FakeApi) -> None:
    _reconcile(api)  # the CronJob exists from before the image changed
    api.monitors["mm"]["spec"]["images"] = {"monitor": "evil.example/miner:1"}
    reconcile_jobs.start_retrain(NS, "mm", manual=True, now=Clock())
    assert api.jobs == {}
    assert status(api)["lastFailure"]["reason"] == guards.IMAGE_NOT_ALLOWED


# ---------------------------------------------------------------------------
# Strict results
# ---------------------------------------------------------------------------


def _check_job(api: FakeApi, name: str = "mm-check-1") -> None:
    template = api.cronjobs["mm-check"]["spec"]["jobTemplate"]
    api.jobs[name] = {
        "metadata": {"name": name, "namespace": NS, "labels": dict(template["metadata"]["labels"])},
        "spec": template["spec"],
    }


def test_check_result_with_nan_is_a_failed_check(api: FakeApi) -> None:
    _reconcile(api)
    _check_job(api)
    bad = {**CHECK_DRIFT, "driftShare": math.nan}
    reconcile_jobs.handle_job(api.finish_job("mm-check-1", bad), now=Clock())
    s = status(api)
    assert "lastCheck" not in s and "drift" not in s
    assert s["lastFailure"]["reason"] == contract.REASON_INVALID_RESULT
    assert s["lastFailure"]["message"] == "driftShare: is required"
    json.dumps(s, allow_nan=False)  # the status patch stays valid JSON
    ready = _ready(api)
    assert (ready["status"], ready["reason"]) == ("False", "CheckFailed")
    assert ready["message"] == "mm-check-1: InvalidResult: driftShare: is required"


def test_retrain_result_with_a_bad_sha256_is_not_promoted(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    before = copy.deepcopy(api.deployments["srv"])
    bad = {**RETRAIN_WIN, "sha256": "../../etc/passwd"}
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", bad), now=clock)
    s = status(api)
    assert not s.get("retrain") and not s.get("rollout")
    assert cond(api, c.COND_RETRAINING) == ("False", contract.REASON_INVALID_RESULT)
    assert "sha256: must match" in condition_doc(s, c.COND_RETRAINING)["message"]
    assert api.deployments["srv"] == before
    assert all(v.get("sha256") != bad["sha256"] for v in s.get("versions") or [])
