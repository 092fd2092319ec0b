"""The local cluster is a real Kubernetes: what modelwatch relies on works here.

These tests run against the cluster from ``make cluster-up`` with the images from
``make images``; nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import MONITOR_IMAGE, REPO, Kube

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pinned_version() -> str:
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/hack/lib.sh && echo $KUBE_VERSION"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": MONITOR_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        **extra,
    }


def deployment(name: str, *, replicas: int, env_value: str, **spec: Any) -> dict[str, Any]:
    ctr = container(
        "app",
        [
            "python3",
            "-c",
            "import http.server as h; "
            "h.test(h.SimpleHTTPRequestHandler, port=8080, bind='0.0.0.0')",
        ],
        env=[{"name": "MODEL_VERSION", "value": env_value}],
        ports=[{"containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [ctr], "terminationGracePeriodSeconds": 1},
            },
            **spec,
        },
    }


def test_node_ready_and_pinned_version(kube: Kube) -> None:
    nodes = json.loads(kube.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 1
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == pinned_version()
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == pinned_version()
    assert nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_pod_from_local_image_reports_termination_message(kube: Kube, namespace: str) -> None:
    script = (
        "from modelwatch_monitor import contract; "
        "contract.write_result({'kind': 'check', 'ok': True, 'message': 'hello from the pod'})"
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "oneshot"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    container(
                        "main",
                        ["python3", "-c", script],
                        terminationMessagePolicy="FallbackToLogsOnError",
                    )
                ],
            },
        },
        namespace=namespace,
    )

    def finished() -> dict[str, Any] | None:
        pod = kube.get("pod", "oneshot", namespace)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    pod = kube.wait_for(finished, timeout=120, what="the pod to finish")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    result = json.loads(terminated["message"])
    assert result == {"schema": 1, "kind": "check", "ok": True, "message": "hello from the pod"}


def test_cronjob_creates_jobs_and_gc_removes_them(kube: Kube, namespace: str) -> None:
    kube.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "* * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "metadata": {"labels": {"modelwatch.io/test": "tick"}},
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": {"modelwatch.io/test": "tick"}},
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    container("main", ["python3", "-c", "print('tick')"])
                                ],
                            },
                        },
                    },
                },
            },
        },
        namespace=namespace,
    )

    def succeeded_job() -> dict[str, Any] | None:
        jobs = json.loads(
            kube.kubectl(
                "get", "jobs", "-n", namespace, "-l", "modelwatch.io/test=tick", "-o", "json"
            ).stdout
        )["items"]
        return next((j for j in jobs if j.get("status", {}).get("succeeded")), None)

    # The cronjob controller fires on minute boundaries: allow a full minute plus the run.
    job = kube.wait_for(
        succeeded_job, timeout=150, interval=2, what="a Job of the CronJob to succeed"
    )
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("CronJob", "tick")
    pods = json.loads(
        kube.kubectl(
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            f"job-name={job['metadata']['name']}",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]

    kube.kubectl("delete", "cronjob", "tick", "-n", namespace, "--cascade=background")
    kube.wait_for(
        lambda: (
            kube.kubectl(
                "get", "job", job["metadata"]["name"], "-n", namespace, check=False
            ).returncode
            != 0
        ),
        timeout=60,
        what="the garbage collector to delete the CronJob's Job",
    )


def rollout_done(kube: Kube, name: str, namespace: str, replicas: int) -> dict[str, Any] | None:
    dep = kube.get("deployment", name, namespace)
    st = dep.get("status", {})
    done = (
        st.get("observedGeneration") == dep["metadata"]["generation"]
        and st.get("updatedReplicas") == replicas
        and st.get("availableReplicas") == replicas
        and st.get("replicas") == replicas
    )
    return dep if done else None


def test_deployment_env_change_rolls_a_new_replicaset(kube: Kube, namespace: str) -> None:
    kube.apply(deployment("web", replicas=2, env_value="1"), namespace=namespace)
    kube.wait_for(lambda: rollout_done(kube, "web", namespace, 2), timeout=120, what="revision 1")
    kube.kubectl(
        "set",
        "env",
        "deployment/web",
        "-n",
        namespace,
        "MODEL_VERSION=2",
    )
    dep = kube.wait_for(
        lambda: rollout_done(kube, "web", namespace, 2), timeout=120, what="revision 2"
    )
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    rss = json.loads(
        kube.kubectl("get", "rs", "-n", namespace, "-l", "app=web", "-o", "json").stdout
    )["items"]
    by_revision = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in rss
    }
    assert set(by_revision) == {"1", "2"}
    assert by_revision["2"]["status"].get("availableReplicas") == 2
    assert by_revision["1"]["status"].get("replicas", 0) == 0
    env = by_revision["2"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MODEL_VERSION", "value": "2"} in env


def test_unready_rollout_reports_progress_deadline_exceeded(kube: Kube, namespace: str) -> None:
    dep = deployment("stuck", replicas=1, env_value="1", progressDeadlineSeconds=10)
    # A readiness probe that can never succeed.
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["false"]},
        "periodSeconds": 1,
    }
    kube.apply(dep, namespace=namespace)

    def deadline_exceeded() -> str | None:
        conds = kube.get("deployment", "stuck", namespace).get("status", {}).get("conditions", [])
        prog = next((c for c in conds if c["type"] == "Progressing"), None)
        return prog["reason"] if prog and prog["reason"] == "ProgressDeadlineExceeded" else None

    assert kube.wait_for(deadline_exceeded, timeout=90, what="ProgressDeadlineExceeded") == (
        "ProgressDeadlineExceeded"
    )


def test_service_cluster_ip_reaches_pod_from_host(kube: Kube, namespace: str) -> None:
    kube.apply(deployment("echo", replicas=1, env_value="1"), namespace=namespace)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        namespace=namespace,
    )
    kube.wait_for(
        lambda: rollout_done(kube, "echo", namespace, 1), timeout=120, what="the echo pod"
    )
    ip = kube.get("service", "echo", namespace)["spec"]["clusterIP"]
    assert ip.startswith("10.96.")

    def fetch() -> int | None:
        try:
            with urllib.request.urlopen(f"http://{ip}:80/", timeout=3) as resp:
                return int(resp.status)
        except OSError:
            time.sleep(0.5)
            return None

    assert kube.wait_for(fetch, timeout=60, what=f"http://{ip}/ through kube-proxy") == 200
