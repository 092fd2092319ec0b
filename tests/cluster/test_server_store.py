"""The model server on the real cluster: a read-only store with a writable prediction
log, and no artifact loaded without a sha256 from outside the store."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelwatch_monitor import contract
from tests.cluster.mw_operator_env import MODEL, server_deployment, setup_model
from tests.conftest import Kube

pytestmark = [pytest.mark.cluster]

PROBE = """
import json, urllib.request
try:
    open("/store/intruder", "w")
    wrote = "written"
except OSError as exc:
    wrote = type(exc).__name__ + ": " + (exc.strerror or "")
rows = [{"x1": 0.1, "x2": 0.2, "x3": 0.3, "color": "red", "id": 99}]
body = json.dumps(rows).encode()
req = urllib.request.Request("http://127.0.0.1:8080/predict", body,
                             {"Content-Type": "application/json"})
status = urllib.request.urlopen(req).status
print(json.dumps({"store": wrote, "predict": status}))
"""


def _pods(kube: Kube, namespace: str, app: str) -> list[dict[str, Any]]:
    out = kube.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def test_the_server_writes_only_its_prediction_log(kube: Kube, namespace: str) -> None:
    store, _ = setup_model(kube, namespace, drifted=False)
    out = kube.kubectl(
        "exec", "-n", namespace, "deploy/server", "--", "python", "-c", PROBE
    ).stdout.strip()
    probe = json.loads(out.splitlines()[-1])
    assert probe == {"store": "OSError: Read-only file system", "predict": 200}
    assert not (store / "intruder").exists()
    # SIGTERM drains the log buffer: delete the pod and wait for the file.
    kube.kubectl("scale", "-n", namespace, "deploy/server", "--replicas=0")
    folder = pathlib.Path(contract.predictions_dir(str(store), MODEL))
    kube.wait_for(
        lambda: list(folder.rglob("*.parquet")),
        timeout=90,
        what="the prediction log file written through the read-write subPath",
    )


def test_an_empty_sha256_is_never_ready(kube: Kube, namespace: str) -> None:
    setup_model(kube, namespace, drifted=False)
    doc = server_deployment(namespace, version=1, sha256="")
    doc["metadata"]["name"] = "unverified"
    doc["spec"]["selector"]["matchLabels"] = {"app": "unverified"}
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "unverified"}
    kube.apply(doc)

    def logged() -> str:
        pods = _pods(kube, namespace, "unverified")
        if not pods:
            return ""
        name = pods[0]["metadata"]["name"]
        return str(kube.kubectl("logs", "-n", namespace, name, check=False).stdout)

    text = kube.wait_for(
        lambda: "model not ready: ConfigError" in logged() and logged(),
        timeout=120,
        what="the unverified server to say why it is not ready",
    )
    assert "MODEL_SHA256 is not set: refusing to load an artifact" in text
    pods = _pods(kube, namespace, "unverified")
    assert all(
        c["status"] != "True" for p in pods for c in p["status"].get("conditions", [])
        if c["type"] == "Ready"
    )  # fmt: skip
