"""Sharded checks on the operator's side: the Indexed Job, and the one pod that carries
the result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import builders, job_results, objects, reconcile_jobs, reconcile_monitor
from modelwatch_operator import constants as c
from modelwatch_operator.monitors import read_monitor
from tests.operator.test_operator_builders import monitor, monitor_of, pod_spec_of
from tests.operator.test_operator_reconciling import (  # noqa: F401 - the api fixture
    CHECK_DRIFT,
    NS,
    Clock,
    FakeApi,
    api,
    status,
)

CHECK_BUILDERS = [
    pytest.param(lambda mm: builders.build_cronjob(mm)["spec"]["jobTemplate"], id="cronjob"),
    pytest.param(lambda mm: builders.build_check_job(mm, name="iris-mm-check-now-1"), id="job"),
]


@pytest.mark.parametrize("build", CHECK_BUILDERS)
def test_one_pod_checks_stay_plain_jobs(build: Any) -> None:
    for mm in (monitor_of(), monitor_of(check={"parallelism": 1})):
        job = build(mm)
        spec = job["spec"]
        assert spec["backoffLimit"] == c.JOB_BACKOFF_LIMIT
        assert "completionMode" not in spec and "podFailurePolicy" not in spec
        container = spec["template"]["spec"]["containers"][0]
        assert contract.ARG_SHARDS not in container["args"]
        assert contract.ENV_SHARD_RUN not in {e["name"] for e in container["env"]}


@pytest.mark.parametrize("build", CHECK_BUILDERS)
@pytest.mark.parametrize("shards", [2, 4])
def test_parallel_checks_are_indexed_jobs_that_retry_one_shard(build: Any, shards: int) -> None:
    body = monitor(check={"parallelism": shards})
    body["status"] = {"currentVersion": 3}
    spec = build(read_monitor(body))["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == shards
    # A failed pod retries only its own index; the global backoffLimit would count them all.
    assert spec["backoffLimitPerIndex"] == c.SHARD_BACKOFF_LIMIT_PER_INDEX
    assert "backoffLimit" not in spec
    assert spec["maxFailedIndexes"] == 0  # one shard out of retries fails the check
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": c.CHECK_CONTAINER, "operator": "In", "values": [1]},
    }
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "check", "--config", contract.CONFIG_PATH, contract.ARG_SERVING_VERSION, "3",
        contract.ARG_SHARDS, str(shards),
    ]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    assert env[contract.ENV_SHARD_RUN]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}
    }
    assert spec["activeDeadlineSeconds"] == c.CHECK_ACTIVE_DEADLINE_SECONDS


def test_the_retrain_job_is_not_sharded() -> None:
    job = builders.build_retrain_job(monitor_of(check={"parallelism": 4}), version=2)
    assert "completionMode" not in job["spec"] and job["spec"]["backoffLimit"] == 0
    assert contract.ARG_SHARDS not in pod_spec_of(job)["containers"][0]["args"]


def _pod(index: str | None, message: str, *, created: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"p{index}-{created}", "creationTimestamp": created}
    if index is not None:
        meta["annotations"] = {c.ANNOTATION_COMPLETION_INDEX: index}
        meta["labels"] = {c.ANNOTATION_COMPLETION_INDEX: index}
    return {
        "metadata": meta,
        "status": {
            "containerStatuses": [
                {"name": "check", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ]
        },
    }


RESULT = json.dumps({"schema": 1, **CHECK_DRIFT})


def _doc(result: job_results.JobResult) -> dict[str, Any]:
    """The result as the fold reads it: the typed result's document, or why there is none."""
    if isinstance(result, job_results.Unread):
        return {"ok": False, "reason": result.reason, "message": result.message}
    return result.to_doc()


def test_the_result_of_an_indexed_job_is_index_0s() -> None:
    pods = [
        _pod("0", RESULT, created="2026-11-29T12:00:00Z"),
        _pod("1", "shard 1 log tail", created="2026-11-29T12:00:05Z"),  # newer, not a result
    ]
    result = _doc(
        job_results.read_result(
            [objects.pod(p) for p in pods],
            kind="check",
            container="check",
            succeeded=True,
            job_message="",
        )
    )
    assert result["ok"] and result["nDrifted"] == 3


def test_a_retried_index_0_gives_its_newest_result() -> None:
    failed = json.dumps({"schema": 1, "kind": "check", "ok": False, "reason": "CheckFailed",
                         "message": "OOMKilled"})  # fmt: skip
    pods = [
        _pod("1", "", created="2026-11-29T12:00:09Z"),
        _pod("0", RESULT, created="2026-11-29T12:00:08Z"),
        _pod("0", failed, created="2026-11-29T12:00:00Z"),
    ]
    result = _doc(
        job_results.read_result(
            [objects.pod(p) for p in pods],
            kind="check",
            container="check",
            succeeded=True,
            job_message="",
        )
    )
    assert result["ok"] and result["reportId"] == "r1"


def test_a_failed_sharded_check_reports_the_shards_reason() -> None:
    """A shard failed (its reason in index 0's message); the Job has failed indexes."""
    failed = json.dumps({"schema": 1, "kind": "check", "ok": False, "reason": "DataError",
                         "message": "shard 1 of 2: cannot read 'x.parquet'"})  # fmt: skip
    pods = [_pod("0", failed, created="a"), _pod("1", "Traceback: bad file", created="b")]
    result = _doc(
        job_results.read_result(
            [objects.pod(p) for p in pods],
            kind="check",
            container="check",
            succeeded=False,
            job_message="FailedIndexes: Job has failed indexes",
        )
    )
    assert (result["ok"], result["reason"]) == (False, "DataError")
    assert "shard 1 of 2" in result["message"]
    # Index 0 killed before it wrote anything: the Job's own reason.
    result = _doc(
        job_results.read_result(
            [objects.pod(_pod("0", "", created="a")), objects.pod(_pod("1", "Tb", created="b"))],
            kind="check",
            container="check",
            succeeded=False,
            job_message="FailedIndexes: Job has failed indexes",
        )
    )
    assert (result["ok"], result["reason"]) == (False, "JobFailed")
    assert "FailedIndexes" in result["message"]


def test_a_plain_job_still_reads_its_newest_pod() -> None:
    pods = [_pod(None, "old", created="a"), _pod(None, RESULT, created="b")]
    result = _doc(
        job_results.read_result(
            [objects.pod(p) for p in pods],
            kind="check",
            container="check",
            succeeded=True,
            job_message="",
        )
    )
    assert result["ok"] and result["nDrifted"] == 3


def test_handle_job_folds_index_0s_result(api: FakeApi) -> None:  # noqa: F811
    api.monitors["mm"]["spec"]["check"] = {"parallelism": 2}
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=Clock())
    template = api.cronjobs["mm-check"]["spec"]["jobTemplate"]
    assert template["spec"]["completionMode"] == "Indexed"
    api.jobs["mm-check-1"] = {
        "metadata": {
            "name": "mm-check-1",
            "namespace": NS,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
        "status": {
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": "2026-11-23T12:01:00Z",
        },
    }
    api.pods["mm-check-1"] = [
        _pod("1", "", created="2026-11-23T12:00:30Z"),
        _pod("0", RESULT, created="2026-11-23T12:00:00Z"),
    ]
    reconcile_jobs.handle_job(api.jobs["mm-check-1"], now=Clock())
    s = status(api)
    assert s["lastCheckJob"] == "mm-check-1"
    assert s["lastCheck"]["reportId"] == "r1"
