"""The Helm chart on the real cluster: install over a cluster that already has ModelMonitors,
upgrade to a changed value, uninstall; the monitors and their status survive each step.

The session's operator (installed with kustomize by the ``operator`` fixture) is removed
first, since the chart owns the same objects, and put back at the end for the tests that
follow. The CRDs stay throughout: deleting one would delete every ModelMonitor.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    OPERATOR_NS,
    deploy_operator,
    monitor,
    operator_pods,
    operator_ready,
    start_monitor,
    wait_status,
)
from tests.conftest import REPO
from tests.monitoring.promql import CHART, helm

HELM = helm()
RELEASE = "mw"
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(HELM is None, reason="helm is not built: run make helm"),
]


def _helm(kube: Any, *args: str) -> str:
    proc = subprocess.run(
        [str(HELM), *args, "--kubeconfig", kube.kubeconfig],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _operator_deployment(kube: Any) -> dict[str, Any] | None:
    found = kube.kubectl(
        "get", "deployment", "modelwatch-operator", "-n", OPERATOR_NS, "-o", "json", check=False
    )
    return json.loads(found.stdout) if found.returncode == 0 else None


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _remove_kustomize_install(kube: Any) -> None:
    """Delete what `make deploy` installed, except the CRDs and the namespace."""
    for path in ("manifests/operator", "manifests/rbac"):
        rendered = kube.kubectl("kustomize", str(REPO / path)).stdout
        docs = [d for d in rendered.split("\n---\n") if "kind: Namespace\n" not in d]
        kept = "\n---\n".join(docs)
        kube.kubectl("delete", "--ignore-not-found", "--wait=true", "-f", "-", input=kept)
    kube.wait_for(lambda: not operator_pods(kube), timeout=120, what="the operator pods to go")


@pytest.fixture
def chart_cluster(operator: Any, namespace: str) -> Iterator[Any]:
    """The cluster without the session's operator; it comes back (before the test's
    namespace is deleted, whose monitor carries the operator's finalizer)."""
    kube = operator
    _remove_kustomize_install(kube)
    try:
        yield kube
    finally:
        subprocess.run(
            [str(HELM), "uninstall", RELEASE, "-n", OPERATOR_NS, "--kubeconfig", kube.kubeconfig],
            capture_output=True,
            timeout=300,
        )
        deploy_operator(kube)  # the session's operator again, for the tests that follow


def test_install_upgrade_uninstall_keep_the_monitors(chart_cluster: Any, namespace: str) -> None:
    kube = chart_cluster
    _helm(
        kube,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        OPERATOR_NS,
        "--set",
        "namespace.create=false",
        "--set",
        "replicas=1",
        "--wait",
        "--timeout",
        "180s",
    )
    kube.wait_for(lambda: operator_ready(kube), timeout=180, what="the chart's operator")
    dep = _operator_deployment(kube)
    assert dep is not None
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    st = start_monitor(kube, namespace, monitor(namespace, schedule="*/7 * * * *"), data=False)
    assert st["currentVersion"] == 1 and st["phase"] == "Pending"
    uid = kube.get("modelmonitor", "iris", namespace)["metadata"]["uid"]

    # Upgrade to a changed value: the Deployment follows it, the monitor is untouched.
    _helm(
        kube,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        OPERATOR_NS,
        "--set",
        "namespace.create=false",
        "--set",
        "replicas=1",
        "--set",
        "allowedMonitorImages={modelwatch/monitor:dev,registry.example/mw/*}",
        "--wait",
        "--timeout",
        "180s",
    )
    dep = _operator_deployment(kube)
    assert dep is not None
    allowed = _env(dep)["MODELWATCH_ALLOWED_MONITOR_IMAGES"]
    assert allowed == "modelwatch/monitor:dev,registry.example/mw/*"
    kube.wait_for(lambda: operator_ready(kube), timeout=180, what="the upgraded operator")
    # The upgraded operator resumes the monitor from its status: same object, same version,
    # and a spec change is still reconciled (the operator behind the release works).
    kube.kubectl(
        "patch", "modelmonitor", "iris", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"schedule": "*/9 * * * *"}}),
    )  # fmt: skip
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("observedGeneration") == 2,
        timeout=90,
        what="the upgraded operator to reconcile generation 2",
    )
    assert st["currentVersion"] == 1
    assert kube.get("modelmonitor", "iris", namespace)["metadata"]["uid"] == uid
    cronjob = kube.get("cronjob", "iris-check", namespace)
    assert cronjob["spec"]["schedule"] == "*/9 * * * *"

    # Uninstall: the operator goes, the CRD and the monitor with its status stay.
    _helm(kube, "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "180s")
    assert _operator_deployment(kube) is None
    kube.wait_for(lambda: not operator_pods(kube), timeout=120, what="the operator pods to go")
    kept = kube.get("modelmonitor", "iris", namespace)
    assert kept["metadata"]["uid"] == uid
    assert kept["status"]["currentVersion"] == 1 and kept["status"]["observedGeneration"] == 2
    kube.get("crd", "modelmonitors.modelwatch.io")
