"""Faults on the real cluster: the operator killed right after it reserved a version, the
serving Deployment recreated during a rollout, two operator replicas at once, and the active
one of two replicas killed mid-retrain and mid-rollout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    active_operator_pod,
    await_new_operator_pod,
    condition,
    deploy_operator,
    events,
    force_delete_pod,
    jobs,
    monitor,
    operator_pod,
    operator_pods,
    run_check,
    served_version,
    server_deployment,
    setup_model,
    wait_status,
)
from tests.cluster.test_operator_loop import ready_pods_at

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def status(kube: Any, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = kube.get("modelmonitor", "iris", namespace).get("status") or {}
    return result


def _retrain_in_20s(namespace: str) -> dict[str, Any]:
    """The test monitor's retrain with a 20 s AutoML budget: long enough to act mid-retrain."""
    retrain: dict[str, Any] = monitor(namespace)["spec"]["retrain"]
    return {**retrain, "automl": {"timeBudgetSeconds": 20, "estimators": ["lgbm", "rf"]}}


def test_operator_killed_right_after_reserving_a_version(operator: Any, namespace: str) -> None:
    """The version is recorded in status, then the operator dies, and its Job is gone too
    (as if it died before creating it): the next operator creates that Job, once."""
    kube = operator
    setup_model(kube, namespace, drifted=True)
    kube.apply(monitor(namespace, retrain=_retrain_in_20s(namespace)))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=60,
        what="the monitor at version 1",
    )
    old = operator_pod(kube)
    assert old is not None
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1")
    st = wait_status(
        kube,
        namespace,
        lambda s: (s.get("retrain") or {}).get("version"),
        timeout=60,
        what="version 2 to be reserved",
    )
    assert (st["retrain"]["version"], st["retrain"]["job"]) == (2, "iris-retrain-2")
    force_delete_pod(kube, old)
    # Its Job too, pods first (foreground), before the pod can publish version 2.
    kube.kubectl(
        "delete",
        "job",
        "iris-retrain-2",
        "-n",
        namespace,
        "--cascade=foreground",
        "--wait=true",
        check=False,
    )
    await_new_operator_pod(kube, old)
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2,
        timeout=480,
        what="the reserved version to be trained and rolled out after the restart",
    )
    names = [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")]
    assert names == ["iris-retrain-2"]
    assert st["latestVersion"] == 2 and not st.get("retrain")
    assert [r["version"] for r in st["retrains"]] == [2]


def test_deployment_recreated_during_a_rollout(operator: Any, namespace: str) -> None:
    """The Deployment is deleted and re-applied (version 1, a new uid) while the rollout to
    version 2 is in flight: the operator applies version 2 again and the rollout completes."""
    kube = operator
    _, sha1 = setup_model(kube, namespace, drifted=True)
    deployment = {"name": "server", "container": "server", "progressDeadlineSeconds": 120}
    kube.apply(monitor(namespace, pinnedVersion=1, deployment=deployment))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=60,
        what="the monitor at version 1",
    )
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1")
    wait_status(
        kube,
        namespace,
        lambda s: any(v["version"] == 2 for v in s.get("versions") or []) and not s.get("retrain"),
        timeout=420,
        what="version 2 to be trained (pinned at 1: not promoted)",
    )
    # A paused Deployment takes the patch but does not roll: the rollout stays in flight.
    kube.kubectl("rollout", "pause", "deployment/server", "-n", namespace)
    old_uid = kube.get("deployment", "server", namespace)["metadata"]["uid"]
    kube.kubectl(
        "patch",
        "modelmonitor",
        "iris",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"pinnedVersion": 2}}),
    )
    st = wait_status(
        kube,
        namespace,
        lambda s: (s.get("rollout") or {}).get("version") == 2,
        timeout=60,
        what="the rollout to version 2 to start",
    )
    assert st["rollout"]["previousVersion"] == 1 and st["rollout"]["deploymentUid"] == old_uid
    kube.wait_for(
        lambda: served_version(kube, namespace) == "2", timeout=30, what="the patch to land"
    )

    kube.kubectl("delete", "deployment", "server", "-n", namespace, "--wait=true")
    kube.apply(server_deployment(namespace, version=1, sha256=sha1))
    new_uid = kube.get("deployment", "server", namespace)["metadata"]["uid"]
    assert new_uid != old_uid

    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2 and not s.get("rollout"),
        timeout=180,
        what="the recreated Deployment to be rolled to version 2",
    )
    assert condition(st, "RolloutComplete")["status"] == "True"
    assert served_version(kube, namespace) == "2"
    dep = kube.get("deployment", "server", namespace)
    assert dep["metadata"]["uid"] == new_uid
    assert dep["metadata"]["labels"].get("modelwatch.io/monitor") == "iris"
    kube.wait_for(
        lambda: ready_pods_at(kube, namespace, 2), timeout=90, what="ready server pods at version 2"
    )


def _two_replicas_at_version_one(kube: Any, namespace: str, **overrides: Any) -> None:
    """Two operator replicas in the peering object, and the monitor at version 1."""
    deploy_operator(kube, replicas=2)
    kube.wait_for(
        lambda: len(kube.get("clusterkopfpeering", "modelwatch").get("status") or {}) == 2,
        timeout=90,
        what="both replicas in the peering object",
    )
    setup_model(kube, namespace, drifted=True)
    kube.apply(monitor(namespace, **overrides))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=90,
        what="the monitor at version 1",
    )


def test_two_replicas_fold_each_result_once(operator: Any, namespace: str) -> None:
    """Two operator replicas run at once: kopf peering keeps one active, and each result is
    read once: one history entry, one retrain Job, one Event of each kind."""
    kube = operator
    try:
        _two_replicas_at_version_one(kube, namespace)
        assert len(operator_pods(kube)) == 2
        peering = kube.get("clusterkopfpeering", "modelwatch")
        run_check(kube, namespace, "iris-check-manual-1")
        st = wait_status(
            kube,
            namespace,
            lambda s: s.get("currentVersion") == 2,
            timeout=600,
            what="the check, the retrain and the rollout with two replicas",
        )
        names = [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")]
        assert names == ["iris-retrain-2"]
        assert [r["version"] for r in st["retrains"]] == [2]
        assert st["lastCheck"]["job"] == "iris-check-manual-1"
        for reason in ("DriftDetected", "RetrainStarted", "RolloutComplete"):
            said = events(kube, namespace, reason=reason)
            assert len(said) == 1, (reason, said)
        assert peering["metadata"]["name"] == "modelwatch"
    finally:
        deploy_operator(kube, replicas=1)


def _kill_the_active_replica(kube: Any) -> str:
    """Force-delete the replica that peering lets act; return its name. The standby is
    left to take over once the dead peer's record expires."""
    active = active_operator_pod(kube)
    assert active is not None, "no active replica in the peering object"
    standby = [p for p in operator_pods(kube) if p["metadata"]["uid"] != active["metadata"]["uid"]]
    assert len(standby) == 1
    force_delete_pod(kube, active)
    return str(active["metadata"]["name"])


def _loop_completed_once(kube: Any, namespace: str) -> dict[str, Any]:
    """Version 2 serves, from one retrain Job, one result each, no version lost."""
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2 and not s.get("rollout") and not s.get("retrain"),
        timeout=600,
        what="the standby replica to finish the loop at version 2",
    )
    names = [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")]
    assert names == ["iris-retrain-2"]
    assert [r["version"] for r in st["retrains"]] == [2]
    assert st["retrains"][0]["outcome"] == "Promoted"
    assert sorted(v["version"] for v in st.get("versions") or []) == [1, 2]
    assert st["latestVersion"] == 2
    assert condition(st, "RolloutComplete")["status"] == "True"
    assert served_version(kube, namespace) == "2"
    for reason in ("RetrainStarted", "RolloutComplete"):
        said = events(kube, namespace, reason=reason)
        assert len(said) == 1, (reason, said)
    assert not events(kube, namespace, reason="RolledBack")
    return st


def test_active_replica_killed_mid_retrain(operator: Any, namespace: str) -> None:
    """Of two replicas, the active one dies while the retrain Job runs: the standby reads
    that Job's result once, promotes and rolls out; no second retrain Job."""
    kube = operator
    try:
        _two_replicas_at_version_one(kube, namespace, retrain=_retrain_in_20s(namespace))
        kube.kubectl(
            "annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1"
        )
        wait_status(
            kube,
            namespace,
            lambda s: (
                (s.get("retrain") or {}).get("job") == "iris-retrain-2"
                and any(
                    j["metadata"]["name"] == "iris-retrain-2"
                    for j in jobs(kube, namespace, "retrain")
                )
            ),
            timeout=90,
            what="the retrain Job of version 2 to exist",
        )
        killed = _kill_the_active_replica(kube)
        st = _loop_completed_once(kube, namespace)
        survivors = [p["metadata"]["name"] for p in operator_pods(kube)]
        assert killed not in survivors
        assert st["retrains"][0]["version"] == 2
    finally:
        deploy_operator(kube, replicas=1)


def test_active_replica_killed_mid_rollout(operator: Any, namespace: str) -> None:
    """Of two replicas, the active one dies once the rollout to version 2 is recorded and
    patched, while the new pods are not yet ready: the standby judges that rollout (never
    patching twice, never rolling back) and records it complete."""
    kube = operator
    deployment = {"name": "server", "container": "server", "progressDeadlineSeconds": 300}
    try:
        _two_replicas_at_version_one(
            kube, namespace, retrain=_retrain_in_20s(namespace), deployment=deployment
        )
        kube.kubectl(
            "annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1"
        )
        st = wait_status(
            kube,
            namespace,
            lambda s: (s.get("rollout") or {}).get("version") == 2,
            timeout=480,
            what="the rollout to version 2 to be recorded",
        )
        assert st["rollout"]["previousVersion"] == 1
        kube.wait_for(
            lambda: served_version(kube, namespace) == "2", timeout=60, what="the patch to land"
        )
        generation = kube.get("deployment", "server", namespace)["metadata"]["generation"]
        _kill_the_active_replica(kube)
        _loop_completed_once(kube, namespace)
        # One patch: the standby did not roll the Deployment again, nor back.
        assert kube.get("deployment", "server", namespace)["metadata"]["generation"] == generation
        kube.wait_for(
            lambda: ready_pods_at(kube, namespace, 2),
            timeout=90,
            what="ready server pods at version 2",
        )
    finally:
        deploy_operator(kube, replicas=1)
