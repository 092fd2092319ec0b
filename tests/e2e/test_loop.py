"""The whole loop, as `make demo` runs it, with assertions.

The operator runs in-cluster from its image under its ServiceAccount; the check,
retrain and traffic Jobs and the model server run in the monitor image.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
from types import ModuleType

import pytest

from tests.conftest import REPO, Kube

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelwatch_demo", REPO / "hack" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["modelwatch_demo"] = module
    spec.loader.exec_module(module)
    return module


def test_drift_retrain_rollout_loop(kube: Kube) -> None:
    os.environ["KUBECONFIG"] = kube.kubeconfig
    demo = load_demo()
    record = demo.run()

    # The phases a user sees in `kubectl get mm`, in order.
    phases = record.phases
    assert phases[-1] == "Healthy"
    for expected in ("Retraining", "RollingOut"):
        assert expected in phases, phases
    assert any(p in ("Drifted", "Degraded") for p in phases), phases
    assert phases.index("Retraining") < phases.index("RollingOut")

    # After the rollout v2 is judged on its own traffic only: Healthy, 0 drifted, and the
    # v1 traffic still in the window started no second retrain.
    assert record.retrains == 1
    assert record.v2_traffic_rounds >= 1

    status = record.final_status
    assert status["currentVersion"] == 2 and status["servingSince"]
    assert status["lastCheck"]["servingVersion"] == 2 and status["lastCheck"]["nDrifted"] == 0
    assert status["drift"].startswith("0/")
    assert len(status["currentSha256"]) == 64 and status["currentSha256"] != record.v1_sha256
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["RolloutComplete"]["status"] == "True"

    # The new pods serve v2, proven through the Service.
    assert int(record.metadata["version"]) == 2
    assert record.metadata["sha256"] == status["currentSha256"]
    dep = kube.get("deployment", "churn-server", "modelwatch-demo")
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_VERSION"] == "2" and env["MODEL_SHA256"] == status["currentSha256"]
    assert dep["status"]["availableReplicas"] == dep["spec"]["replicas"]

    # The report of the last check (v2's) exists in the store, as JSON and HTML; what v1
    # served in the window is history there, not part of the verdict.
    assert record.report_uri.startswith("file:///store/churn/reports/")
    if record.report_host_path:  # the local cluster's store is a host directory
        report_dir = pathlib.Path(record.report_host_path)
        report = json.loads((report_dir / "report.json").read_text())
        assert {"dataset_drift", "drift_share", "features"} <= set(report)
        assert not [f["name"] for f in report["features"] if f["drift"]]
        assert report["serving"]["version"] == 2 and report["serving"]["basis"] == "model_version"
        history = {h["version"]: h for h in report["serving"]["byVersion"]}
        assert history[2]["judged"] and not history.get(1, {"judged": False})["judged"]
        assert (report_dir / "report.html").stat().st_size > 1000

    # The decisions are explained as Events on the ModelMonitor.
    for reason in ("RetrainStarted", "Promoting", "RolloutComplete"):
        assert reason in record.events, record.events

    # The metadata of v2 records that it beat v1 on the same holdout.
    v2 = subprocess.run(
        [
            str(REPO / "hack" / "kubectl"),
            "get",
            "--raw",
            "/api/v1/namespaces/modelwatch-demo/services/model-server:80/proxy/metadata",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    meta = json.loads(v2.stdout)
    assert meta["version"] in (2, "2")
