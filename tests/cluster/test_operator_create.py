"""Create, validate and delete ModelMonitors on the real cluster (issue tests 1, 5 and 7)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from modelwatch_monitor import contract
from tests.cluster.mw_operator_env import (
    condition,
    events,
    monitor,
    start_monitor,
    wait_status,
)

pytestmark = pytest.mark.cluster


def test_create_makes_the_cronjob_and_config(operator: Any, namespace: str) -> None:
    kube = operator
    st = start_monitor(kube, namespace, monitor(namespace, schedule="*/7 * * * *"), data=False)
    assert st["phase"] == "Pending"
    assert st["currentVersion"] == 1 and st["currentSha256"] == "ab" * 32
    assert {c["type"] for c in st["conditions"]} == {
        "Ready",
        "DataDrift",
        "PerformanceDegraded",
        "Retraining",
        "Evaluating",
        "RolloutComplete",
    }
    assert all(c["observedGeneration"] == 1 for c in st["conditions"])

    # The version found serving goes to every check (applied right after the status).
    serving = ["check", "--config", contract.CONFIG_PATH, "--serving-version", "1"]

    def cronjob_with_serving_version() -> dict[str, Any] | None:
        found = kube.get("cronjob", "iris-check", namespace)
        pod = found["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return found if pod["containers"][0]["args"] == serving else None

    cj = kube.wait_for(
        cronjob_with_serving_version, timeout=30, what="the CronJob to carry --serving-version 1"
    )
    mm = kube.get("modelmonitor", "iris", namespace)
    (owner,) = cj["metadata"]["ownerReferences"]
    assert owner["kind"] == "ModelMonitor" and owner["uid"] == mm["metadata"]["uid"]
    assert cj["metadata"]["labels"]["modelwatch.io/monitor"] == "iris"
    assert cj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelwatch-operator"
    spec = cj["spec"]
    assert spec["schedule"] == "*/7 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["ttlSecondsAfterFinished"] >= 86400
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    (container,) = pod["containers"]
    assert container["image"] == "modelwatch/monitor:dev"
    assert container["args"] == serving
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"config": contract.CONFIG_MOUNT_DIR, "tmp": "/tmp", "store": "/store"}

    cm = kube.get("configmap", "iris-config", namespace)
    contract.parse_job_config(cm["data"][contract.CONFIG_KEY])  # the monitor image reads it
    doc = json.loads(cm["data"][contract.CONFIG_KEY])
    assert doc["spec"]["drift"]["numericTest"] == "ks"  # the CRD's defaults went in
    assert doc["spec"]["drift"]["minEffectSize"] == contract.DriftSpec().min_effect_size
    assert doc["spec"]["retrain"]["automl"]["timeBudgetSeconds"] == 3

    dep = kube.get("deployment", "server", namespace)
    assert dep["metadata"]["labels"]["modelwatch.io/monitor"] == "iris"

    # Suspend: the CronJob follows, the phase says so.
    kube.kubectl(
        "patch",
        "modelmonitor",
        "iris",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": True}}),
    )
    kube.wait_for(
        lambda: kube.get("cronjob", "iris-check", namespace)["spec"]["suspend"],
        timeout=30,
        what="the CronJob to be suspended",
    )
    st = wait_status(
        kube, namespace, lambda s: s.get("phase") == "Suspended", timeout=30, what="phase Suspended"
    )
    assert st["observedGeneration"] == 2


def test_wrong_deployment_name_is_reported(operator: Any, namespace: str) -> None:
    kube = operator
    spec = monitor(namespace)["spec"]
    kube.apply(monitor(namespace, deployment={**spec["deployment"], "name": "nope"}))
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "DeploymentNotFound",
        timeout=60,
        what="Ready=False DeploymentNotFound",
    )
    assert st["phase"] == "Failed"
    assert 'deployment "nope" not found' in condition(st, "Ready")["message"]


def test_failed_check_shows_its_message(operator: Any, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["data"]["reference"]["uri"] = "file:///store/data/missing.csv"
    doc["spec"]["data"].pop("labels", None)  # the missing reference is the only fault
    start_monitor(kube, namespace, doc, data=False)
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/check-now=1")
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "CheckFailed",
        timeout=180,
        what="Ready=False CheckFailed",
    )
    assert "missing.csv" in condition(st, "Ready")["message"]
    assert st["lastFailure"]["kind"] == "check"
    assert st["phase"] == "Failed"
    assert not st.get("retrain")
    warnings = [e for e in events(kube, namespace) if e.get("reason") == "CheckFailed"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert "the current model keeps serving" in warnings[0]["message"]
    dep = kube.get("deployment", "server", namespace)
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_VERSION"] == "1"


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return doc


_DELETE = object()

INVALID = [
    ("spec.schedule", "every five minutes", "spec.schedule must be a cron expression"),
    ("spec.schedule", "*/5 * * *", "spec.schedule must be a cron expression"),
    (
        "spec.retrain.triggers",
        {"violations": 3, "window": 2},
        "violations must not exceed spec.retrain.triggers.window",
    ),
    ("spec.drift", {"pValueThreshold": 1.5}, "spec.drift.pValueThreshold must be in (0, 1)"),
    ("spec.performance", {"metric": "accuracy"}, "spec.performance.metric must suit"),
    ("spec.data.current", {"window": "7 days"}, "spec.data.current.window"),
    ("spec.drift", {"numericTest": "magic"}, 'Unsupported value: "magic"'),
    ("spec.model.target", _DELETE, "spec.model.target: Required value"),
    ("spec.retrain.automl", {"timeBudgetSeconds": 0}, "timeBudgetSeconds"),
    ("spec.retrain.cooldown", "soon", "spec.retrain.cooldown"),
    ("spec.store.uri", "bucket", "spec.store.uri"),
    ("spec.rollout", {"strategy": "blue-green"}, 'Unsupported value: "blue-green"'),
    ("spec.rollout", {"strategy": "canary", "weight": 80}, "spec.rollout.weight"),
    ("spec.rollout", {"alpha": 0.7}, "spec.rollout.alpha must be in (0, 0.5]"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), INVALID, ids=[f"{p}={v!r}"[:40] for p, v, _ in INVALID]
)
def test_invalid_specs_are_rejected(
    kube: Any, namespace: str, path: str, value: Any, message: str
) -> None:
    doc = monitor(namespace, name="bad")
    if path == "spec.performance":
        doc["spec"]["model"]["task"] = "regression"
    doc = _with(doc, path, value)
    proc = kube.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0, f"{path}={value!r} was accepted"
    assert message in proc.stderr, proc.stderr


def test_a_shadow_without_a_deployment_is_rejected(kube: Any, namespace: str) -> None:
    doc = monitor(namespace, name="bad", retrain={"enabled": False}, rollout={"strategy": "shadow"})
    del doc["spec"]["deployment"]
    proc = kube.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0, "a shadow rollout without spec.deployment was accepted"
    assert " ".join(contract.ROLLOUT_NEEDS_DEPLOYMENT.split()) in " ".join(proc.stderr.split())


def test_model_name_is_immutable(operator: Any, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace, retrain={"enabled": False})
    del doc["spec"]["deployment"]
    kube.apply(doc)
    doc["spec"]["model"]["name"] = "other"
    proc = kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(doc), check=False
    )
    assert proc.returncode != 0
    assert "spec.model.name is immutable" in proc.stderr


def test_delete_removes_children_and_keeps_the_deployment(operator: Any, namespace: str) -> None:
    kube = operator
    start_monitor(kube, namespace, monitor(namespace), data=False)
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/check-now=1")
    kube.wait_for(
        lambda: json.loads(
            kube.kubectl(
                "get", "jobs", "-n", namespace, "-l", "modelwatch.io/monitor=iris", "-o", "json"
            ).stdout
        )["items"],
        timeout=60,
        what="a check Job",
    )

    kube.kubectl("delete", "modelmonitor", "iris", "-n", namespace, "--wait=true", "--timeout=60s")

    def gone() -> bool:
        left = kube.kubectl(
            "get",
            "cronjobs,jobs,configmaps",
            "-n",
            namespace,
            "-l",
            "modelwatch.io/monitor=iris",
            "-o",
            "name",
        ).stdout.strip()
        return not left

    kube.wait_for(gone, timeout=90, what="the CronJob, ConfigMap and Jobs to be collected")
    dep = kube.get("deployment", "server", namespace)
    assert dep["metadata"].get("deletionTimestamp") is None
