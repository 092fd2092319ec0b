"""The loop on the real cluster: drift, retrain, rollout, rollback and an operator restart."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    OPERATOR_NS,
    S3_SECRET,
    S3Store,
    condition,
    events,
    jobs,
    kill_operator_pod,
    monitor,
    operator_logs,
    operator_pod,
    run_check,
    s3_spec,
    served_version,
    server_deployment,
    setup_model,
    setup_model_s3,
    wait_status,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def ready_pods_at(kube: Any, namespace: str, version: int) -> bool:
    pods = json.loads(
        kube.kubectl("get", "pods", "-n", namespace, "-l", "app=server", "-o", "json").stdout
    )["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return bool(live) and all(
        p["metadata"].get("annotations", {}).get("modelwatch.io/model-version") == str(version)
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        for p in live
    )


@pytest.mark.parametrize("store_kind", ["file", "s3"])
def test_drift_retrain_and_rollout(operator: Any, namespace: str, store_kind: str) -> None:
    """The loop on a PVC store (``file://``) and on the object store (``s3://``)."""
    kube = operator
    s3: S3Store | None = None
    if store_kind == "s3":
        s3, sha1 = setup_model_s3(kube, namespace, drifted=True)
        kube.apply(monitor(namespace, **s3_spec(s3)))
    else:
        _, sha1 = setup_model(kube, namespace, drifted=True)
        kube.apply(monitor(namespace))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=60,
        what="the monitor to take over the Deployment at version 1",
    )

    # 2. A check on drifted data: drift and its top features in status, a retrain Job.
    run_check(kube, namespace, "iris-check-manual-1")
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("lastCheck"),
        timeout=240,
        what="the check result in status",
    )
    last = st["lastCheck"]
    assert last["datasetDrift"] is True, last
    assert last["nDrifted"] >= 2 and last["nFeatures"] >= 4
    assert st["drift"] == f"{last['nDrifted']}/{last['nFeatures']}"
    assert {f["name"] for f in last["topFeatures"]} & {"x1", "x2"}
    assert last["reportId"] and last["reportUri"]
    assert condition(st, "DataDrift")["status"] == "True"
    assert condition(st, "DataDrift")["observedGeneration"] == 1
    assert last["metric"]["name"] == "accuracy"
    assert st["metric"].startswith("accuracy=")
    assert st["observedGeneration"] == 1
    kube.wait_for(lambda: jobs(kube, namespace, "retrain"), timeout=30, what="the retrain Job")
    (retrain,) = jobs(kube, namespace, "retrain")
    assert retrain["metadata"]["name"] == "iris-retrain-2"
    assert retrain["metadata"]["labels"]["modelwatch.io/version"] == "2"
    assert events(kube, namespace, reason="DriftDetected")

    # 3. The retrain writes version 2; the Deployment rolls; the new pods are ready.
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2,
        timeout=420,
        what="currentVersion 2",
    )
    assert condition(st, "RolloutComplete")["status"] == "True"
    assert st["phase"] == "Healthy"
    assert any(v["version"] == 2 and len(v["sha256"]) == 64 for v in st["versions"])
    assert st["currentSha256"] == next(v["sha256"] for v in st["versions"] if v["version"] == 2)
    assert served_version(kube, namespace) == "2"
    kube.wait_for(
        lambda: ready_pods_at(kube, namespace, 2), timeout=60, what="ready server pods at version 2"
    )
    assert events(kube, namespace, reason="RolloutComplete")
    assert len(jobs(kube, namespace, "retrain")) == 1

    # The operator's Prometheus endpoint counted it all.
    text = kube.kubectl(
        "get",
        "--raw",
        f"/api/v1/namespaces/{OPERATOR_NS}/services/modelwatch-operator-metrics:9090/proxy/metrics",
    ).stdout
    labels = f'monitor="iris",namespace="{namespace}"'
    for series in (
        f'modelwatch_checks_total{{{labels},outcome="ok"}} 1.0',
        f"modelwatch_promotions_total{{{labels}}} 1.0",
        f"modelwatch_current_version{{{labels}}} 2.0",
        f"modelwatch_drift_share{{{labels}}}",
    ):
        assert series in text, series

    # The first manifest re-applied (v1): server-side apply names the fields the operator
    # now owns; forced, v1 serves again and status follows it, with a Warning.
    if s3 is not None:
        assert_the_object_store_holds_the_loop(kube, namespace, s3, st)
    v1 = json.dumps(server_deployment(namespace, version=1, sha256=sha1, s3=s3))
    proc = kube.kubectl("apply", "--server-side", "-f", "-", input=v1, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "conflict" in proc.stderr and 'env[name="MODEL_VERSION"]' in proc.stderr, proc.stderr
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=v1)
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=180,
        what="status to follow the re-applied version 1",
    )
    assert condition(st, "RolloutComplete")["reason"] == "ChangedOutside"
    assert st["currentSha256"] == sha1
    kube.wait_for(
        lambda: events(kube, namespace, reason="VersionChangedOutside"),
        timeout=30,
        what="the VersionChangedOutside Warning",
    )
    (warning,) = events(kube, namespace, reason="VersionChangedOutside")
    assert warning["type"] == "Warning" and "spec.pinnedVersion" in warning["message"]
    assert served_version(kube, namespace) == "1"  # the operator does not fight the apply


READ_STORE = """
import json, sys
import fsspec
from modelwatch_monitor.store.registry import Registry
store, report_uri = sys.argv[1:]
fs, path = fsspec.core.url_to_fs(report_uri)
print(json.dumps({
    "versions": Registry(store, "iris").versions(),
    "report": sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path)),
}))
"""


def assert_the_object_store_holds_the_loop(
    kube: Any, namespace: str, s3: S3Store, st: dict[str, Any]
) -> None:
    """Versions and the report are in the bucket (the server pods that became ready at v2
    loaded and verified it from there); the key pair is nowhere but in the Secret."""
    proc = subprocess.run(
        [sys.executable, "-c", READ_STORE, s3.uri, st["lastCheck"]["reportUri"]],
        capture_output=True,
        text=True,
        timeout=120,
        env=s3.host_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout)
    assert found["versions"] == [1, 2]
    assert found["report"] == ["report.html", "report.json"]
    assert st["lastCheck"]["reportUri"].startswith(f"{s3.uri}/iris/reports/")
    config = kube.get("configmap", "iris-config", namespace)
    cronjob = kube.get("cronjob", "iris-check", namespace)
    (retrain,) = jobs(kube, namespace, "retrain")
    logs = operator_logs(kube)
    for text in (
        json.dumps(config),
        json.dumps(cronjob),
        json.dumps(retrain),
        json.dumps(st),
        logs,
    ):
        assert s3.secret_key not in text and s3.access_key not in text
    env = {
        e["name"]: e
        for e in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == S3_SECRET
    assert env["AWS_ENDPOINT_URL"]["value"] == s3.endpoint


def test_broken_version_rolls_back(operator: Any, namespace: str) -> None:
    kube = operator
    store, _ = setup_model(kube, namespace, drifted=True)
    # Pinned at 1: a retrain writes version 2 but nothing is promoted.
    kube.apply(monitor(namespace, pinnedVersion=1))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=60,
        what="the monitor at version 1",
    )
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1")
    st = wait_status(
        kube,
        namespace,
        lambda s: any(v["version"] == 2 for v in s.get("versions") or []) and not s.get("retrain"),
        timeout=420,
        what="version 2 to be trained",
    )
    assert condition(st, "Retraining")["reason"] == "Pinned"
    assert st["currentVersion"] == 1
    # 4. Break version 2 on disk (its sha256 no longer matches), then pin to it.
    model_file = store / "iris" / "versions" / "2" / "model.joblib"
    with model_file.open("ab") as fh:
        fh.write(b"tampered")
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
    wait_status(
        kube,
        namespace,
        lambda s: (s.get("rollout") or {}).get("version") == 2,
        timeout=60,
        what="the rollout to version 2 to start",
    )
    st = wait_status(
        kube,
        namespace,
        lambda s: (
            condition(s, "RolloutComplete").get("reason") == "RolledBack" and not s.get("rollout")
        ),
        timeout=240,
        what="the rollback to version 1",
    )
    assert st["currentVersion"] == 1
    assert "ProgressDeadlineExceeded" in condition(st, "RolloutComplete")["message"]
    assert served_version(kube, namespace) == "1"
    kube.wait_for(
        lambda: ready_pods_at(kube, namespace, 1), timeout=90, what="ready server pods at version 1"
    )
    warnings = [e for e in events(kube, namespace, reason="RolledBack") if e["type"] == "Warning"]
    assert warnings and "rolled back to version 1" in warnings[0]["message"]


def test_operator_restart_mid_retrain(operator: Any, namespace: str) -> None:
    kube = operator
    setup_model(kube, namespace, drifted=True)
    spec = monitor(namespace)["spec"]
    retrain = {**spec["retrain"], "automl": {"timeBudgetSeconds": 20, "estimators": ["lgbm", "rf"]}}
    kube.apply(monitor(namespace, retrain=retrain))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=60,
        what="the monitor at version 1",
    )
    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1")
    st = wait_status(
        kube, namespace, lambda s: s.get("retrain"), timeout=60, what="the retrain to start"
    )
    assert st["retrain"]["version"] == 2

    # 6. Kill the operator while the retrain runs.
    old = operator_pod(kube)
    assert old is not None
    (running,) = jobs(kube, namespace, "retrain")
    assert not running.get("status", {}).get("conditions"), "the retrain finished too soon"
    kill_operator_pod(kube, old)
    # The new operator neither forgot the retrain nor started a second one.
    assert status(kube, namespace).get("retrain", {}).get("version") in (2, None)
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2,
        timeout=420,
        what="the loop to complete after the restart",
    )
    names = [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")]
    assert names == ["iris-retrain-2"]
    assert not st.get("retrain")
    assert st["latestVersion"] == 2


def status(kube: Any, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = kube.get("modelmonitor", "iris", namespace).get("status") or {}
    return result
