"""The five most likely mistakes, and the text a user sees for each (README: Troubleshooting).

Each test makes one mistake on the real cluster and reads what ``kubectl`` shows: the
``kubectl apply`` error, ``kubectl get mm`` (the phase), ``kubectl describe mm`` (conditions
and Events) and the check Job's termination message. The assertions are on that text: it must
name the cause. Checks run from the CronJob's own template (``kubectl create job --from``),
not on the schedule.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from tests.cluster.mw_operator_env import (
    condition,
    events,
    hand_over,
    make_store,
    monitor,
    run_check,
    start_monitor,
    wait_status,
    write_data,
)

pytestmark = pytest.mark.cluster

Kube = Any


def shown(kube: Kube, namespace: str, name: str = "iris") -> str:
    """What ``kubectl get mm`` and ``kubectl describe mm`` print."""
    get = kube.kubectl("get", "mm", name, "-n", namespace).stdout
    describe = kube.kubectl("describe", "mm", name, "-n", namespace).stdout
    text = f"$ kubectl get mm {name}\n{get}\n$ kubectl describe mm {name}\n{describe}"
    print(text)  # the README's troubleshooting texts come from here (pytest -s)
    return str(text)


def termination_message(kube: Kube, namespace: str, job: str) -> str:
    """The check Job's result as its pod left it (``kubectl get pod -o jsonpath=...``)."""
    pods = json.loads(
        kube.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json").stdout
    )["items"]
    messages = [
        cs["state"]["terminated"].get("message", "")
        for pod in pods
        for cs in pod.get("status", {}).get("containerStatuses") or []
        if "terminated" in cs.get("state", {})
    ]
    print(f"$ termination message of {job}\n{messages}")
    return "\n".join(messages)


def check_once(kube: Kube, namespace: str, job: str = "check-1") -> dict[str, Any]:
    """Run one check now and wait until the operator has read its result."""
    run_check(kube, namespace, job)
    return wait_status(
        kube,
        namespace,
        lambda s: s.get("lastCheckJob") == job,
        timeout=180,
        what=f"the operator to read the result of Job {job}",
    )


# ---------------------------------------------------------------------------
# 1. A wrong deployment name
# ---------------------------------------------------------------------------


def test_wrong_deployment_name(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["deployment"]["name"] = "iris-srever"
    start_monitor(kube, namespace, doc, data=False)
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "DeploymentNotFound",
        timeout=60,
        what="Ready=False DeploymentNotFound",
    )
    assert st["phase"] == "Failed"
    expected = f'deployment "iris-srever" not found in namespace "{namespace}"'
    assert condition(st, "Ready")["message"] == f"spec.deployment.name: {expected}"
    kube.wait_for(
        lambda: events(kube, namespace, reason="DeploymentNotFound"),
        timeout=30,
        what="a DeploymentNotFound Event",
    )
    (event,) = events(kube, namespace, reason="DeploymentNotFound")
    assert event["type"] == "Warning" and expected in event["message"]
    text = shown(kube, namespace)
    assert "Failed" in text.splitlines()[2]
    assert "DeploymentNotFound" in text and expected in text


# ---------------------------------------------------------------------------
# 2. The store not mounted
# ---------------------------------------------------------------------------


def test_store_not_mounted(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    del doc["spec"]["store"]["volume"]  # file:///store, but no PVC mounted there
    start_monitor(kube, namespace, doc)
    st = check_once(kube, namespace)
    assert st["phase"] == "Failed"
    ready = condition(st, "Ready")
    assert ready["reason"] == "CheckFailed"
    message = termination_message(kube, namespace, "check-1")
    text = shown(kube, namespace)
    for seen in (message, ready["message"], text):
        assert "store" in seen and "not mounted" in seen and "spec.store.volume" in seen, seen


def test_store_claim_misspelt(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["store"]["volume"]["claimName"] = "modelwatch-stroe"
    start_monitor(kube, namespace, doc, data=False)
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "StoreClaimNotFound",
        timeout=60,
        what="Ready=False StoreClaimNotFound",
    )
    assert st["phase"] == "Failed"
    expected = f'persistentvolumeclaim "modelwatch-stroe" not found in namespace "{namespace}"'
    assert expected in condition(st, "Ready")["message"]
    text = shown(kube, namespace)
    assert "StoreClaimNotFound" in text and expected in text
    kube.wait_for(
        lambda: events(kube, namespace, reason="StoreClaimNotFound"),
        timeout=30,
        what="the StoreClaimNotFound Warning",
    )


# ---------------------------------------------------------------------------
# 3. A missing target column
# ---------------------------------------------------------------------------


def test_missing_target_column(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["model"]["target"] = "label"  # the data calls it "y"
    start_monitor(kube, namespace, doc)
    st = check_once(kube, namespace)
    assert st["phase"] == "Failed"
    ready = condition(st, "Ready")
    assert ready["reason"] == "CheckFailed"
    message = termination_message(kube, namespace, "check-1")
    text = shown(kube, namespace)
    for seen in (message, ready["message"], text):
        assert "'label'" in seen and "spec.model.target" in seen, seen


def test_missing_target_column_without_labels(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["model"]["target"] = "label"
    del doc["spec"]["data"]["labels"]  # then the reference's "y" looks like a feature
    start_monitor(kube, namespace, doc)
    st = check_once(kube, namespace)
    assert st["phase"] == "Failed"
    message = condition(st, "Ready")["message"]
    assert message.startswith("check-1: DataError: missing feature column 'y' in "), message
    assert "set spec.model.target (now 'label')" in message


# ---------------------------------------------------------------------------
# 4. A label join with no matches
# ---------------------------------------------------------------------------


def test_label_join_without_matches(operator: Kube, namespace: str) -> None:
    kube = operator
    store = make_store(kube, namespace)
    write_data(store, drifted=False)
    # The labelling system writes its own ids ("req-10000"), not the served ones (10000).
    labels = pd.read_csv(store / "data" / "labels.csv")
    labels["id"] = "req-" + labels["id"].astype(str)
    labels.to_csv(store / "data" / "labels.csv", index=False)
    hand_over(store)
    start_monitor(kube, namespace, monitor(namespace), data=False)
    st = check_once(kube, namespace)
    assert st["phase"] == "Healthy", st.get("lastFailure")  # the check ran; metric undefined
    degraded = condition(st, "PerformanceDegraded")
    assert degraded["status"] == "Unknown" and degraded["reason"] == "MetricUndefined"
    message = termination_message(kube, namespace, "check-1")
    text = shown(kube, namespace)
    for seen in (message, degraded["message"], text):
        assert "matched 0 of 400" in seen, seen
    assert "'req-10000'" in degraded["message"] and "'10000'" in degraded["message"]
    assert "accuracy=n/a" in text.splitlines()[2]


# ---------------------------------------------------------------------------
# 5. An invalid schedule
# ---------------------------------------------------------------------------


CRON = "spec.schedule must be a cron expression with five fields"
RANGE = "spec.schedule must not have a range whose start is after its end"


@pytest.mark.parametrize(
    ("schedule", "why", "expected"),
    [
        ("*/5 * * *", "four fields", CRON),
        ("every 5 minutes", "not cron", CRON),
        ("0 */5 * * * *", "six fields (seconds)", CRON),
        ("0 25 * * *", "hour out of range", CRON),
        ("30-10 * * * *", "a reversed range", RANGE),
    ],
)
def test_invalid_schedule(
    kube: Kube, namespace: str, schedule: str, why: str, expected: str
) -> None:
    doc = monitor(namespace, schedule=schedule)
    proc = kube.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    print(f"$ kubectl apply -f iris.yaml  # schedule {schedule!r}: {why}\n{proc.stderr}")
    assert proc.returncode != 0, f"schedule {schedule!r} ({why}) was accepted"
    assert "spec.schedule: Invalid value" in proc.stderr
    assert expected in proc.stderr
    assert f'got "{schedule}"' in proc.stderr
    get = kube.kubectl("get", "mm", "-n", namespace, check=False)
    assert "iris" not in get.stdout


def test_valid_schedules_are_accepted(kube: Kube, namespace: str) -> None:
    for i, schedule in enumerate(
        ["*/15 * * * *", "0 9-17 * * MON-FRI", "5 4 1,15 * ?", "0 0 1 JAN *", "@hourly"]
    ):
        doc = monitor(namespace, name=f"ok-{i}", schedule=schedule)
        proc = kube.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False
        )
        assert proc.returncode == 0, f"{schedule!r}: {proc.stderr}"


# ---------------------------------------------------------------------------
# Not a mistake: no traffic yet
# ---------------------------------------------------------------------------


def test_no_traffic_is_no_data_not_failed(operator: Kube, namespace: str) -> None:
    """A monitor created before its model got traffic: nothing is logged in the store."""
    kube = operator
    doc = monitor(namespace)
    doc["spec"]["data"].pop("current")  # the default: the server's prediction logs
    doc["spec"]["data"].pop("labels")
    start_monitor(kube, namespace, doc)
    st = check_once(kube, namespace)
    assert st["phase"] == "NoData", condition(st, "Ready")
    ready = condition(st, "Ready")
    assert ready["reason"] == "NoData"
    assert "no predictions logged yet" in ready["message"]
    text = shown(kube, namespace)
    assert "NoData" in text.splitlines()[2]  # the PHASE column of kubectl get
    warnings = [e for e in events(kube, namespace) if e.get("reason") == "NoData"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert not st.get("retrain")
    # Not a broken check: the Job succeeded, its pod is Completed, not Error.
    job = kube.get("job", "check-1", namespace)
    assert (job.get("status") or {}).get("succeeded") == 1, job.get("status")


def test_unquoted_y_target_is_refused(kube: Kube, namespace: str) -> None:
    """YAML 1.1 reads a bare ``y`` (or ``n``, ``yes``, ``on``) as a boolean; the schema
    refuses it for spec.model.target instead of monitoring a column named ``True``."""
    import yaml

    doc = monitor(namespace)
    doc["spec"]["model"]["target"] = "TARGET"
    text = yaml.safe_dump(doc).replace("target: TARGET", "target: y")
    proc = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=text, check=False
    )
    print(f"$ kubectl apply -f iris.yaml  # target: y\n{proc.stderr}")
    assert proc.returncode != 0
    assert ".spec.model.target: expected string" in proc.stderr
    quoted = text.replace("target: y", 'target: "y"')
    proc = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=quoted, check=False
    )
    assert proc.returncode == 0, proc.stderr
