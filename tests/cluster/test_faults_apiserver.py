"""Faults of the control plane on the real cluster: the kube-apiserver stopped for 30 s
while a check Job finishes and while a rollout is in flight, and the operator pod killed
right after it patched the serving Deployment. Each test ends with the loop complete, no
duplicate Job, and every result folded exactly once."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    events,
    jobs,
    kill_operator_pod,
    monitor,
    operator_pod,
    run_check,
    served_version,
    setup_model,
    wait_status,
)
from tests.cluster.test_operator_loop import ready_pods_at

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]
STATE_DIR = pathlib.Path(os.environ.get("MODELWATCH_STATE", "/var/lib/modelwatch-cluster"))
DOWN_SECONDS = 30


def _apiserver_pid() -> int:
    pid = int((STATE_DIR / "pids" / "kube-apiserver.pid").read_text().strip())
    exe = os.readlink(f"/proc/{pid}/exe")
    assert os.path.basename(exe.removesuffix(" (deleted)")) == "kube-apiserver", exe
    return pid


def apiserver_down_for(seconds: float) -> float:
    """Stop the kube-apiserver (SIGTERM, as a restart would), keep it down for ``seconds``,
    then start it again with the cluster tooling; return how long it was unreachable."""
    pid = _apiserver_pid()
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.2)
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster-up.sh")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - began


def _pod_running(kube: Any, namespace: str, job: str) -> bool:
    pods = kube.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json")
    items = json.loads(pods.stdout)["items"]
    return any(
        (cs.get("state") or {}).get("running") or (cs.get("state") or {}).get("terminated")
        for p in items
        for cs in (p.get("status") or {}).get("containerStatuses") or []
    )


def test_apiserver_down_while_a_check_job_finishes(operator: Any, namespace: str) -> None:
    kube = operator
    setup_model(kube, namespace, drifted=False)
    kube.apply(monitor(namespace))
    wait_status(
        kube, namespace, lambda s: s.get("currentVersion") == 1, timeout=90,
        what="the monitor at version 1",
    )  # fmt: skip
    run_check(kube, namespace, "iris-check-manual-1")
    kube.wait_for(
        lambda: _pod_running(kube, namespace, "iris-check-manual-1"),
        timeout=180,
        what="the check pod to start",
    )
    down = apiserver_down_for(DOWN_SECONDS)
    assert down >= DOWN_SECONDS
    st = wait_status(
        kube,
        namespace,
        lambda s: (s.get("lastCheck") or {}).get("job") == "iris-check-manual-1",
        timeout=240,
        what="the check finished during the outage to be read",
    )
    # Read once: one history entry, and the Job was not run again.
    assert len(st.get("history") or []) == 1, st.get("history")
    assert st["history"][0]["reportId"] == st["lastCheck"]["reportId"]
    assert st["phase"] == "Healthy"
    checks = [j["metadata"]["name"] for j in jobs(kube, namespace, "check")]
    assert checks == ["iris-check-manual-1"]
    assert not jobs(kube, namespace, "retrain")


def test_apiserver_down_while_a_rollout_is_in_flight(operator: Any, namespace: str) -> None:
    kube = operator
    setup_model(kube, namespace, drifted=True)
    # A deadline longer than the outage (30 s down plus the restart): while the apiserver is
    # gone no pod can report ready, and a 30 s deadline would rightly fail the rollout.
    deployment = {"name": "server", "container": "server", "progressDeadlineSeconds": 240}
    kube.apply(monitor(namespace, deployment=deployment))
    wait_status(
        kube, namespace, lambda s: s.get("currentVersion") == 1, timeout=90,
        what="the monitor at version 1",
    )  # fmt: skip
    run_check(kube, namespace, "iris-check-manual-1")
    wait_status(
        kube,
        namespace,
        lambda s: (s.get("rollout") or {}).get("version") == 2,
        timeout=600,
        what="the rollout to version 2 to start",
    )
    apiserver_down_for(DOWN_SECONDS)
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2 and not s.get("rollout"),
        timeout=300,
        what="the rollout to complete after the outage",
    )
    assert [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")] == ["iris-retrain-2"]
    assert [r["version"] for r in st["retrains"]] == [2]
    assert served_version(kube, namespace) == "2"
    for reason in ("DriftDetected", "RetrainStarted", "RolloutComplete"):
        said = events(kube, namespace, reason=reason)
        assert len(said) == 1, (reason, said)
    kube.wait_for(
        lambda: ready_pods_at(kube, namespace, 2), timeout=120, what="ready server pods at v2"
    )


def test_operator_killed_right_after_the_deployment_patch(operator: Any, namespace: str) -> None:
    kube = operator
    setup_model(kube, namespace, drifted=True)
    kube.apply(monitor(namespace))
    wait_status(
        kube, namespace, lambda s: s.get("currentVersion") == 1, timeout=90,
        what="the monitor at version 1",
    )  # fmt: skip
    old = operator_pod(kube)
    assert old is not None
    run_check(kube, namespace, "iris-check-manual-1")
    kube.wait_for(
        lambda: served_version(kube, namespace) == "2",
        timeout=600,
        interval=0.2,
        what="the Deployment patch to version 2",
    )
    kill_operator_pod(kube, old)
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 2 and not s.get("rollout"),
        timeout=300,
        what="the new operator to finish the rollout",
    )
    assert [j["metadata"]["name"] for j in jobs(kube, namespace, "retrain")] == ["iris-retrain-2"]
    assert [v["version"] for v in st["versions"]] == [1, 2]
    assert len(events(kube, namespace, reason="RolloutComplete")) == 1
