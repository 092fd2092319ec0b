"""The loop against an in-memory API: check -> retrain -> promote -> rollout -> rollback."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import kopf
import pytest

from modelwatch_operator import constants as c
from modelwatch_operator import (
    events,
    kube,
    main,
    reconcile_jobs,
    reconcile_monitor,
    reconcile_rollout,
)
from modelwatch_operator.monitors import read_monitor
from modelwatch_operator.policies import format_time
from tests.operator.docs import condition_doc

NS = "ml"
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class FakeApi:
    """Just enough of the API for the functions in :mod:`modelwatch_operator.kube`."""

    def __init__(self) -> None:
        self.monitors: dict[str, dict[str, Any]] = {}
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.cronjobs: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, list[dict[str, Any]]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.created_jobs: list[str] = []
        self.claims: set[str] = {"store"}

    def get_monitor(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.monitors.get(name)
        if not body:
            return None
        body["metadata"].setdefault("resourceVersion", "1")
        return copy.deepcopy(body)

    def _bump(self, name: str) -> None:
        meta = self.monitors[name]["metadata"]
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 1) + 1)

    def patch_monitor_status(
        self,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        current = self.monitors[name]["metadata"].get("resourceVersion") or "1"
        if resource_version is not None and resource_version != current:
            raise kube.ApiException(status=409, reason="Conflict")
        self._bump(name)
        status = self.monitors[name].setdefault("status", {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)
        json.dumps(status)  # must serialise

    def patch_monitor_annotations(self, namespace: str, name: str, ann: dict[str, Any]) -> None:
        self._bump(name)
        current = self.monitors[name]["metadata"].setdefault("annotations", {})
        for key, value in ann.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value

    @staticmethod
    def _create(store: dict[str, dict[str, Any]], manifest: Mapping[str, Any]) -> bool:
        name = manifest["metadata"]["name"]
        if name in store:
            return False  # 409 AlreadyExists
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"].update(uid=f"uid-{name}", resourceVersion="1")
        store[name] = obj
        return True

    @staticmethod
    def _replace(store: dict[str, dict[str, Any]], manifest: Mapping[str, Any]) -> None:
        """Replace with the resourceVersion as a precondition, as the API server does."""
        name = manifest["metadata"]["name"]
        if name not in store:
            raise kube.ApiException(status=404, reason="Not Found")
        old = store[name]["metadata"]
        if old["resourceVersion"] != manifest["metadata"]["resourceVersion"]:
            raise kube.ApiException(status=409, reason="Conflict")
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"].update(uid=old["uid"], resourceVersion=str(int(old["resourceVersion"]) + 1))
        store[name] = obj

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.config_maps.get(name))

    def create_config_map(self, manifest: Mapping[str, Any]) -> bool:
        return self._create(self.config_maps, manifest)

    def replace_config_map(self, manifest: Mapping[str, Any]) -> None:
        self._replace(self.config_maps, manifest)

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.cronjobs.get(name))

    def create_cronjob(self, manifest: Mapping[str, Any]) -> bool:
        return self._create(self.cronjobs, manifest)

    def replace_cronjob(self, manifest: Mapping[str, Any]) -> None:
        self._replace(self.cronjobs, manifest)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(name))

    def create_job(self, manifest: dict[str, Any]) -> bool:
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            return False
        self.jobs[name] = copy.deepcopy(manifest)
        self.created_jobs.append(name)
        return True

    def job_exists(self, namespace: str, name: str) -> bool:
        return name in self.jobs

    def list_job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return self.pods.get(job, [])

    def list_monitor_jobs(self, namespace: str, monitor: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(j)
            for j in self.jobs.values()
            if (j["metadata"].get("labels") or {}).get(c.LABEL_MONITOR) == monitor
        ]

    def pvc_exists(self, namespace: str, name: str) -> bool:
        return name in self.claims

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        dep = self.deployments.get(name)
        return copy.deepcopy(dep) if dep else None

    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        dep = self.deployments[name]
        dep["metadata"].setdefault("labels", {}).update(patch["metadata"]["labels"])
        spec = patch.get("spec")
        if spec:
            dep["spec"]["progressDeadlineSeconds"] = spec["progressDeadlineSeconds"]
            template = dep["spec"]["template"]
            template["metadata"].setdefault("annotations", {}).update(
                spec["template"]["metadata"]["annotations"]
            )
            for pc in spec["template"]["spec"]["containers"]:
                cont = next(x for x in template["spec"]["containers"] if x["name"] == pc["name"])
                env = {e["name"]: e for e in cont.get("env", [])}
                env.update({e["name"]: e for e in pc["env"]})
                cont["env"] = list(env.values())
            dep["metadata"]["generation"] += 1
        return copy.deepcopy(dep)

    # Test helpers.
    def finish_job(
        self, name: str, result: dict[str, Any] | None, *, ok: bool = True, at: dt.datetime = T0
    ) -> dict[str, Any]:
        job = self.jobs[name]
        container = job["spec"]["template"]["spec"]["containers"][0]["name"]
        message = json.dumps({"schema": 1, **result}) if result is not None else "Traceback: boom"
        self.pods[name] = [
            {
                "metadata": {"name": f"{name}-x", "creationTimestamp": format_time(T0)},
                "status": {
                    "containerStatuses": [
                        {
                            "name": container,
                            "state": {
                                "terminated": {"exitCode": 0 if ok else 1, "message": message}
                            },
                        }
                    ]
                },
            }
        ]
        job["status"] = {
            "conditions": [
                {
                    "type": "Complete" if ok else "Failed",
                    "status": "True",
                    "reason": "" if ok else "BackoffLimitExceeded",
                    "message": "" if ok else "Job has reached the specified backoff limit",
                }
            ],
            "completionTime": format_time(at),
        }
        return copy.deepcopy(job)

    def set_rollout(
        self, name: str, *, done: bool = False, deadline_at: str | None = None
    ) -> dict[str, Any]:
        dep = self.deployments[name]
        gen = dep["metadata"]["generation"]
        conds = []
        if deadline_at:
            conds = [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "timed out",
                    "lastUpdateTime": deadline_at,
                }
            ]
        dep["status"] = {
            "observedGeneration": gen,
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1 if done else 0,
            "conditions": conds,
        }
        return copy.deepcopy(dep)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    fake = FakeApi()
    for name in (
        "get_monitor",
        "patch_monitor_status",
        "patch_monitor_annotations",
        "get_config_map",
        "create_config_map",
        "replace_config_map",
        "get_cronjob",
        "create_cronjob",
        "replace_cronjob",
        "get_job",
        "create_job",
        "job_exists",
        "list_job_pods",
        "list_monitor_jobs",
        "get_deployment",
        "patch_deployment",
        "pvc_exists",
    ):
        monkeypatch.setattr(kube, name, getattr(fake, name))
    fake.monitors["mm"] = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": "mm", "namespace": NS, "uid": "u1", "generation": 1},
        "spec": {
            "model": {"name": "iris", "target": "y"},
            "data": {"reference": {"uri": "/store/ref.csv"}},
            "store": {"uri": "file:///store", "volume": {"claimName": "store"}},
            "schedule": "*/5 * * * *",
            "retrain": {
                "enabled": True,
                "cooldown": "1h",
                "maxPerDay": 3,
                "triggers": {"violations": 1, "window": 1},
                "minImprovement": 0.01,
            },
            "deployment": {
                "name": "srv",
                "container": "server",
                "rollbackOnFailure": True,
                "progressDeadlineSeconds": 30,
            },
        },
    }
    fake.deployments["srv"] = {
        "metadata": {"name": "srv", "namespace": NS, "generation": 1, "uid": "d1", "labels": {}},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "env": [
                                {"name": "MODEL_VERSION", "value": "1"},
                                {"name": "MODEL_SHA256", "value": "sha1"},
                            ],
                        }
                    ]
                },
            },
        },
        "status": {},
    }
    yield fake


def status(api: FakeApi) -> dict[str, Any]:
    result: dict[str, Any] = api.monitors["mm"].get("status", {})
    return result


def cond(api: FakeApi, ctype: str) -> tuple[str, str]:
    found = condition_doc(status(api), ctype)
    return found.get("status", ""), found.get("reason", "")


CHECK_DRIFT = {
    "kind": "check",
    "ok": True,
    "reportId": "r1",
    "reportUri": "file:///store/iris/reports/r1",
    "datasetDrift": True,
    "driftShare": 0.75,
    "nDrifted": 3,
    "nFeatures": 4,
    "topFeatures": [{"name": "x1", "test": "ks", "statistic": 0.5, "pValue": 0.0001}],
    "metric": {
        "name": "accuracy",
        "value": 0.6,
        "baseline": 0.9,
        "relativeChange": -0.33,
        "degraded": True,
    },
    "rows": {"reference": 500, "current": 300, "labeled": 300},
}
SHA2 = "2" * 64
RETRAIN_WIN = {
    "kind": "retrain",
    "ok": True,
    "version": 2,
    "sha256": SHA2,
    "metric": "accuracy",
    "challenger": {"score": 0.9},
    "champion": {"version": 1, "score": 0.6},
    "promote": True,
    "reason": "ChallengerBetter",
    "reportId": "t1",
}


def test_create_takes_over_and_initialises(api: FakeApi) -> None:
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    assert set(api.config_maps) == {"mm-config"}
    assert set(api.cronjobs) == {"mm-check"}
    assert api.deployments["srv"]["metadata"]["labels"] == {c.LABEL_MONITOR: "mm"}
    s = status(api)
    assert s["phase"] == "Pending"
    assert s["currentVersion"] == 1 and s["currentSha256"] == "sha1"
    assert s["observedGeneration"] == 1
    assert {x["type"] for x in s["conditions"]} == set(c.CONDITION_TYPES)
    assert cond(api, c.COND_EVALUATING) == ("False", "NoChallenger")


def test_a_strategy_not_acted_on_yet_says_so(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["rollout"] = {"strategy": "shadow"}
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    evaluating = condition_doc(status(api), c.COND_EVALUATING)
    assert (evaluating["status"], evaluating["reason"]) == ("False", "NoChallenger")
    assert "shadow is not acted on by this operator version yet" in str(evaluating["message"])


def test_missing_deployment_is_a_readable_condition(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["deployment"]["name"] = "nope"
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    ready = condition_doc(status(api), c.COND_READY)
    assert ready["reason"] == "DeploymentNotFound"
    assert 'deployment "nope" not found in namespace "ml"' in ready["message"]
    assert status(api)["phase"] == "Failed"


def test_missing_store_claim_is_a_readable_condition(api: FakeApi) -> None:
    api.claims.clear()
    retry = reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    ready = condition_doc(status(api), c.COND_READY)
    assert ready["reason"] == "StoreClaimNotFound"
    assert 'persistentvolumeclaim "store" not found in namespace "ml"' in ready["message"]
    assert retry == ready["message"]  # kopf tries again later
    assert status(api)["phase"] == "Failed"
    assert status(api)["currentVersion"] == 1  # the Deployment was still taken over

    api.claims.add("store")  # the user creates the claim
    assert reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock()) is None
    assert cond(api, c.COND_READY) == ("Unknown", "StoreFound")
    assert status(api)["phase"] == "Pending"


def test_missing_deployment_outranks_a_missing_claim(api: FakeApi) -> None:
    api.claims.clear()
    api.monitors["mm"]["spec"]["deployment"]["name"] = "nope"
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    assert cond(api, c.COND_READY) == ("False", "DeploymentNotFound")


def run_to_rollout(api: FakeApi, clock: Clock) -> None:
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    cronjob_job = {"metadata": {"name": "mm-check-1", "namespace": NS, "labels": {}}}
    cronjob_job["spec"] = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"]
    cronjob_job["metadata"]["labels"] = api.cronjobs["mm-check"]["spec"]["jobTemplate"]["metadata"][
        "labels"
    ]
    api.jobs["mm-check-1"] = cronjob_job
    reconcile_jobs.handle_job(api.finish_job("mm-check-1", CHECK_DRIFT), now=clock)


def test_the_whole_loop(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    s = status(api)
    assert s["drift"] == "3/4" and s["metric"] == "accuracy=0.6"
    assert s["lastCheck"]["topFeatures"][0]["name"] == "x1"
    assert cond(api, c.COND_DATA_DRIFT) == ("True", "DriftDetected")
    assert cond(api, c.COND_DEGRADED) == ("True", "MetricDegraded")
    assert api.created_jobs == ["mm-retrain-2"]
    assert s["retrain"]["version"] == 2 and s["retrain"]["championVersion"] == 1
    assert s["phase"] == "Retraining"
    args = api.jobs["mm-retrain-2"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[3:] == [
        "--version", "2", "--trigger-report", "r1",
        "--champion-version", "1", "--champion-sha256", "sha1",  # from status, checked there
    ]  # fmt: skip

    # The same Job event again (a restart re-lists it): nothing changes.
    before = copy.deepcopy(status(api))
    reconcile_jobs.handle_job(api.jobs["mm-check-1"], now=clock)
    assert status(api) == before and api.created_jobs == ["mm-retrain-2"]

    clock.tick(60)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    s = status(api)
    assert "retrain" not in s
    assert s["rollout"]["version"] == 2 and s["rollout"]["previousVersion"] == 1
    assert s["phase"] == "RollingOut"
    env = api.deployments["srv"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env} == {"MODEL_VERSION": "2", "MODEL_SHA256": SHA2}
    assert api.deployments["srv"]["spec"]["progressDeadlineSeconds"] == 30

    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=False), now=clock)
    assert status(api)["phase"] == "RollingOut"
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = status(api)
    assert s["currentVersion"] == 2 and s["currentSha256"] == SHA2
    assert cond(api, c.COND_ROLLOUT) == ("True", "RolloutComplete")
    assert s["phase"] == "Healthy"
    assert s["history"] == []
    assert [v["version"] for v in s["versions"]] == [1, 2]


def test_failed_rollout_rolls_back(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    clock.tick(40)
    reconcile_rollout.handle_deployment(
        api.set_rollout("srv", deadline_at=format_time(clock.now)), now=clock
    )
    s = status(api)
    assert cond(api, c.COND_ROLLOUT) == ("False", "RolledBack")
    assert s["rollout"]["kind"] == "Rollback" and s["rollout"]["version"] == 1
    env = api.deployments["srv"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env} == {"MODEL_VERSION": "1", "MODEL_SHA256": "sha1"}
    # The controller still shows the old verdict for a moment: not a second failure.
    reconcile_rollout.handle_deployment(
        api.set_rollout("srv", deadline_at=format_time(clock.now)), now=clock
    )
    assert status(api)["rollout"]["kind"] == "Rollback"
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = status(api)
    assert "rollout" not in s
    assert s["currentVersion"] == 1
    assert cond(api, c.COND_ROLLOUT) == ("False", "RolledBack")


def _set_env_version(api: FakeApi, version: str, sha: str) -> None:
    """What re-applying the original manifest does: the env changes, generation bumps."""
    dep = api.deployments["srv"]
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_VERSION", "value": version},
        {"name": "MODEL_SHA256", "value": sha},
    ]
    dep["metadata"]["generation"] += 1


def test_version_changed_outside_is_followed_with_a_warning(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        events,
        "post",
        lambda body, *, type, reason, message: posted.append((type, reason, message)),
    )
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["currentVersion"] == 2

    _set_env_version(api, "1", "sha1")  # kubectl apply -f server.yaml, again
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=False), now=clock)
    assert status(api)["currentVersion"] == 2  # v1 pods not ready yet: nothing to say
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    s = status(api)
    assert s["currentVersion"] == 1 and s["currentSha256"] == "sha1"
    assert cond(api, c.COND_ROLLOUT) == ("True", "ChangedOutside")
    assert cond(api, c.COND_DATA_DRIFT) == ("Unknown", "AwaitingCheck")
    assert s["phase"] == "Healthy"
    assert posted[-1][:2] == ("Warning", "VersionChangedOutside")
    assert "spec.pinnedVersion" in posted[-1][2] and "not version 2" in posted[-1][2]
    assert api.created_jobs == ["mm-retrain-2"]  # no new Job, no patch back to v2
    env = api.deployments["srv"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "MODEL_VERSION", "value": "1"}

    # The same Deployment event again: nothing new.
    before, said = copy.deepcopy(status(api)), len(posted)
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api) == before and len(posted) == said


def _fail_check(api: FakeApi, reason: str, message: str) -> dict[str, Any]:
    """A scheduled check Job fails with ``reason``; return the monitor's status after."""
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    api.jobs["mm-check-9"] = {
        "metadata": {
            "name": "mm-check-9",
            "namespace": NS,
            "labels": {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: "check"},
        },
        "spec": api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"],
    }
    failure = {"kind": "check", "ok": False, "reason": reason, "message": message}
    reconcile_jobs.handle_job(api.finish_job("mm-check-9", failure, ok=False), now=clock)
    return status(api)


def _scheduled_check(api: FakeApi, name: str) -> None:
    api.jobs[name] = {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: "check"},
        },
        "spec": api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"],
    }


def test_restart_does_not_read_old_checks_again(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["retrain"]["triggers"] = {"violations": 2, "window": 3}
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    clean = {**CHECK_DRIFT, "datasetDrift": False, "nDrifted": 0, "driftShare": 0.0}
    clean["metric"] = {**CHECK_DRIFT["metric"], "value": 0.9, "degraded": False}
    for i, (result, minute) in enumerate(((CHECK_DRIFT, 1), (clean, 2)), start=1):
        _scheduled_check(api, f"mm-check-{i}")
        done = T0 + dt.timedelta(minutes=minute)
        reconcile_jobs.handle_job(api.finish_job(f"mm-check-{i}", result, at=done), now=clock)
    before = copy.deepcopy(status(api))
    assert len(before["history"]) == 2 and before["lastCheckJob"] == "mm-check-2"

    # The operator restarts; kopf lists the Jobs the CronJob kept, the older one last.
    reconcile_jobs.handle_job(api.jobs["mm-check-2"], now=clock)
    reconcile_jobs.handle_job(api.jobs["mm-check-1"], now=clock)
    assert status(api) == before
    assert api.created_jobs == []  # 1 violation in 3 checks, not 2

    # Two checks that finished while it was down are read newest-first: the older is
    # skipped, lastCheck is the newest.
    for i, minute in ((4, 4), (3, 3)):
        _scheduled_check(api, f"mm-check-{i}")
        done = T0 + dt.timedelta(minutes=minute)
        reconcile_jobs.handle_job(api.finish_job(f"mm-check-{i}", clean, at=done), now=clock)
    s = status(api)
    assert s["lastCheckJob"] == "mm-check-4" and len(s["history"]) == 3
    assert s["lastCheckFinishedAt"] == format_time(T0 + dt.timedelta(minutes=4))


def test_failed_check_keeps_serving(api: FakeApi) -> None:
    s = _fail_check(api, "DataError", "column 'y' not found in /store/ref.csv")
    assert cond(api, c.COND_READY) == ("False", "CheckFailed")
    assert "column 'y' not found" in condition_doc(s, c.COND_READY)["message"]
    assert s["lastFailure"]["reason"] == "DataError"
    assert s["phase"] == "Failed"
    assert api.created_jobs == []
    assert s["currentVersion"] == 1


def test_empty_window_shows_no_data(api: FakeApi) -> None:
    message = "the current data '/store/churn/predictions' has no rows in the window '1h'"
    s = _fail_check(api, "NoData", message)
    assert cond(api, c.COND_READY) == ("False", "NoData")
    assert s["phase"] == "NoData"
    assert "no rows in the window" in condition_doc(s, c.COND_READY)["message"]
    assert api.created_jobs == []
    assert s["currentVersion"] == 1


def test_crash_without_result_uses_the_log_tail(api: FakeApi) -> None:
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    api.jobs["mm-check-8"] = {
        "metadata": {
            "name": "mm-check-8",
            "namespace": NS,
            "labels": {c.LABEL_MONITOR: "mm", c.LABEL_JOB_KIND: "check"},
        },
        "spec": api.cronjobs["mm-check"]["spec"]["jobTemplate"]["spec"],
    }
    reconcile_jobs.handle_job(api.finish_job("mm-check-8", None, ok=False), now=Clock())
    assert status(api)["lastFailure"]["reason"] == "JobFailed"
    assert "Traceback: boom" in status(api)["lastFailure"]["message"]


def test_restart_recreates_a_missing_retrain_job_once(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    del api.jobs["mm-retrain-2"]  # as if the operator died between status write and create
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    assert api.created_jobs == ["mm-retrain-2", "mm-retrain-2"]
    assert set(api.jobs) >= {"mm-retrain-2"}
    assert status(api)["retrain"]["version"] == 2


def test_retrain_now_annotation_is_cleared(api: FakeApi) -> None:
    api.monitors["mm"]["metadata"]["annotations"] = {c.ANNOTATION_RETRAIN_NOW: "1"}
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    assert api.created_jobs == ["mm-retrain-2"]
    assert status(api)["retrain"]["trigger"] == "ManualRequest"
    assert c.ANNOTATION_RETRAIN_NOW not in api.monitors["mm"]["metadata"]["annotations"]


def test_pin_rolls_to_a_known_version(api: FakeApi) -> None:
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    api.monitors["mm"]["spec"]["pinnedVersion"] = 1
    api.monitors["mm"]["metadata"]["generation"] = 2
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    s = status(api)
    assert s["rollout"]["kind"] == "Pin" and s["rollout"]["version"] == 1
    reconcile_rollout.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["currentVersion"] == 1
    assert status(api)["pin"]["outcome"] == "Complete"


def test_pin_to_unknown_version(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["pinnedVersion"] = 9
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    assert cond(api, c.COND_ROLLOUT) == ("False", "UnknownVersion")
    assert "rollout" not in status(api)


def test_rejected_retrain_job_ends_the_retrain(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reject(manifest: dict[str, Any]) -> bool:
        raise kube.ApiException(status=422, reason="Unprocessable Entity")

    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    monkeypatch.setattr(kube, "create_job", reject)
    reconcile_jobs.start_retrain(NS, "mm", manual=True, now=Clock())
    s = status(api)
    assert "retrain" not in s
    assert cond(api, c.COND_RETRAINING) == ("False", "JobRejected")
    assert cond(api, c.COND_READY) == ("False", "RetrainFailed")
    assert s["retrains"][-1]["outcome"] == "Failed"


ESTIMATED_DROP = {
    "name": "accuracy",
    "estimated": True,
    "value": 0.6,
    "lower": 0.55,
    "upper": 0.65,
    "baseline": 0.9,
    "baselineSource": "reference",
    "relativeChange": -0.33,
    "degraded": True,
    "overridden": False,
    "rows": 300,
}


@pytest.mark.parametrize(("trigger", "retrains"), [(False, 0), (True, 1)])
def test_an_estimated_drop_retrains_only_when_triggered(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, trigger: bool, retrains: int
) -> None:
    from modelwatch_operator import metrics

    posted: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        events,
        "post",
        lambda body, *, type, reason, message: posted.append((type, reason, message)),
    )
    api.monitors["mm"]["spec"]["performance"] = {"estimate": {"trigger": trigger}}
    clock = Clock()
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    result = {
        **CHECK_DRIFT,
        "datasetDrift": False,
        "nDrifted": 0,
        "driftShare": 0.0,
        "metric": None,  # no labels yet
        "estimatedMetric": ESTIMATED_DROP,
    }
    _scheduled_check(api, "mm-check-1")
    reconcile_jobs.handle_job(api.finish_job("mm-check-1", result, at=T0), now=clock)
    s = status(api)
    assert cond(api, c.COND_DEGRADED) == ("True", "EstimatedDegraded")
    assert s["estimatedMetric"] == "accuracy~0.6[0.55,0.65]"
    assert s["history"][-1]["estimatedDegraded"] is True
    assert ("Warning", "EstimatedPerformanceDegraded") in [p[:2] for p in posted]
    assert len(api.created_jobs) == retrains
    gauge = metrics.ESTIMATED_METRIC.labels(NS, "mm", "accuracy", "lower")
    assert gauge._value.get() == 0.55
    # The next check has no estimate: the gauge does not keep the stale value.
    undefined = {**result, "estimatedMetric": {"name": "accuracy", "value": None}}
    _scheduled_check(api, "mm-check-2")
    later = T0 + dt.timedelta(minutes=1)
    reconcile_jobs.handle_job(api.finish_job("mm-check-2", undefined, at=later), now=clock)
    assert status(api)["estimatedMetric"] == "accuracy~n/a"
    assert (NS, "mm", "accuracy", "lower") not in metrics.ESTIMATED_METRIC._metrics


def test_a_spec_the_models_refuse_is_a_readable_condition_and_nothing_runs(api: FakeApi) -> None:
    """A spec an older CRD let through (the models are the newer contract) is refused at
    the door: Ready=False InvalidSpec naming the field, phase Failed, no child written."""
    api.monitors["mm"]["spec"]["retrain"]["maxPerDay"] = 99
    body = api.monitors["mm"]
    with pytest.raises(kopf.PermanentError, match="maxPerDay"):
        main.reconcile(body=body, name="mm", namespace=NS)  # type: ignore[call-arg]
    ready = condition_doc(status(api), c.COND_READY)
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.retrain.maxPerDay" in str(ready["message"])
    assert status(api)["phase"] == "Failed"
    assert api.config_maps == {} and api.cronjobs == {}
