"""The operator never adopts: a user's ConfigMap or CronJob of a child's name, a Deployment
another monitor serves, and a monitor image off the allowlist are left alone (issue 11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    condition,
    events,
    monitor,
    start_monitor,
    wait_status,
)

pytestmark = pytest.mark.cluster

Kube = Any


def _exists(kube: Kube, kind: str, name: str, namespace: str) -> bool:
    proc = kube.kubectl("get", kind, name, "-n", namespace, "-o", "name", check=False)
    return proc.returncode == 0


def _users_object(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create the user's object with kubectl create (no field manager of ours) and read it."""
    kube.kubectl("create", "-f", "-", input=json.dumps(manifest))
    meta = manifest["metadata"]
    return kube.get(manifest["kind"].lower(), meta["name"], meta["namespace"])


def _spec_managers(obj: dict[str, Any]) -> set[str]:
    """Who wrote the object outside its status (controllers write the status)."""
    return {
        f["manager"]
        for f in obj["metadata"].get("managedFields", [])
        if f.get("subresource") != "status"
    }


def _canary(kube: Kube, namespace: str, owner: dict[str, Any]) -> str:
    """A ConfigMap owned by ``owner``: its collection shows the garbage collector has
    processed the owner's deletion."""
    meta = owner["metadata"]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "canary",
                "namespace": namespace,
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": meta["name"],
                        "uid": meta["uid"],
                    }
                ],
            },
        }
    )
    return "canary"


def _delete_monitor_and_wait_for_gc(
    kube: Kube, namespace: str, name: str, *, collected: str
) -> None:
    kube.kubectl("delete", "modelmonitor", name, "-n", namespace, "--wait=true", "--timeout=60s")
    kube.wait_for(
        lambda: not _exists(kube, "configmap", collected, namespace),
        timeout=90,
        what=f"ConfigMap {collected} (owned by the monitor) to be garbage-collected",
    )


def test_users_config_map_survives_the_monitor(operator: Kube, namespace: str) -> None:
    kube = operator
    users = _users_object(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "iris-config", "namespace": namespace, "labels": {"app": "mine"}},
            "data": {"config.json": '{"mine": true}', "settings.ini": "[a]\nb = 1\n"},
        },
    )
    st = start_monitor(kube, namespace, monitor(namespace), data=False)
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "NameConflict",
        timeout=60,
        what="Ready=False NameConflict",
    )
    ready = condition(st, "Ready")
    assert ready["status"] == "False"
    assert 'ConfigMap "iris-config" already exists' in ready["message"]
    assert st["phase"] == "Failed"
    assert any(e["type"] == "Warning" for e in events(kube, namespace, reason="NameConflict"))
    assert not _exists(kube, "cronjob", "iris-check", namespace)  # it would mount the user's
    dep = kube.get("deployment", "server", namespace)
    assert "modelwatch.io/monitor" not in dep["metadata"].get("labels", {})

    mm = kube.get("modelmonitor", "iris", namespace)
    _canary(kube, namespace, mm)
    _delete_monitor_and_wait_for_gc(kube, namespace, "iris", collected="canary")

    after = kube.get("configmap", "iris-config", namespace)
    assert after["data"] == users["data"]
    assert after["metadata"]["resourceVersion"] == users["metadata"]["resourceVersion"]
    assert after["metadata"]["uid"] == users["metadata"]["uid"]
    assert after["metadata"].get("labels") == users["metadata"].get("labels")
    assert "ownerReferences" not in after["metadata"]


def test_users_cronjob_survives_the_monitor(operator: Kube, namespace: str) -> None:
    kube = operator
    users = _users_object(
        kube,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "iris-check", "namespace": namespace},
            "spec": {
                "schedule": "0 0 1 1 *",
                "suspend": True,
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "mine", "image": "busybox", "command": ["true"]}
                                ],
                            }
                        }
                    }
                },
            },
        },
    )
    start_monitor(kube, namespace, monitor(namespace), data=False)
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "NameConflict",
        timeout=60,
        what="Ready=False NameConflict",
    )
    assert 'CronJob "iris-check" already exists' in condition(st, "Ready")["message"]
    mine = kube.get("configmap", "iris-config", namespace)  # the monitor's own ConfigMap
    mm = kube.get("modelmonitor", "iris", namespace)
    assert mine["metadata"]["ownerReferences"][0]["uid"] == mm["metadata"]["uid"]

    _delete_monitor_and_wait_for_gc(kube, namespace, "iris", collected="iris-config")

    after = kube.get("cronjob", "iris-check", namespace)
    assert after["metadata"]["uid"] == users["metadata"]["uid"]
    assert after["metadata"]["generation"] == users["metadata"]["generation"]
    assert after["spec"] == users["spec"]
    assert after["metadata"].get("labels") == users["metadata"].get("labels")
    assert after["metadata"].get("annotations") == users["metadata"].get("annotations")
    assert "ownerReferences" not in after["metadata"]
    assert _spec_managers(after) == _spec_managers(users)


def test_second_monitor_leaves_a_claimed_deployment_alone(operator: Kube, namespace: str) -> None:
    kube = operator
    start_monitor(kube, namespace, monitor(namespace), data=False)
    before = kube.get("deployment", "server", namespace)
    assert before["metadata"]["labels"]["modelwatch.io/monitor"] == "iris"

    kube.apply(monitor(namespace, name="iris2"))
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "DeploymentClaimed",
        timeout=60,
        what="iris2: Ready=False DeploymentClaimed",
        name="iris2",
    )
    ready = condition(st, "Ready")
    assert ready["status"] == "False"
    assert 'claimed by ModelMonitor "iris"' in ready["message"]
    assert "currentVersion" not in st
    assert events(kube, namespace, reason="DeploymentClaimed")

    after = kube.get("deployment", "server", namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["spec"]["template"] == before["spec"]["template"]
    assert _spec_managers(after) == _spec_managers(before)


def test_monitor_image_off_the_allowlist_runs_nothing(operator: Kube, namespace: str) -> None:
    kube = operator
    doc = monitor(namespace, images={"monitor": "example.invalid/miner:1"})
    kube.apply(doc)
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Ready").get("reason") == "ImageNotAllowed",
        timeout=60,
        what="Ready=False ImageNotAllowed",
    )
    message = condition(st, "Ready")["message"]
    assert 'spec.images.monitor: image "example.invalid/miner:1" is not allowed' in message
    assert "MODELWATCH_ALLOWED_MONITOR_IMAGES" in message
    assert not _exists(kube, "cronjob", "iris-check", namespace)
    assert not _exists(kube, "configmap", "iris-config", namespace)
