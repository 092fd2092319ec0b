"""Estimated performance on the real cluster: the spec's defaults, and an estimate in
``kubectl get mm -o wide`` and status before any label arrives."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.cluster.mw_operator_env import (
    frame,
    hand_over,
    make_store,
    monitor,
    run_check,
    server_deployment,
    wait_status,
)

pytestmark = pytest.mark.cluster

Kube = Any


def test_estimate_defaults_and_column(operator: Kube, namespace: str) -> None:
    kube = operator  # the fixture installs this checkout's CRD
    doc = monitor(namespace)
    doc["spec"]["performance"]["estimate"] = {"trigger": True}
    proc = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-",
        input=json.dumps(doc),
    )  # fmt: skip
    applied = json.loads(proc.stdout)
    assert applied["spec"]["performance"]["estimate"] == {"enabled": True, "trigger": True}
    crd = json.loads(kube.kubectl("get", "crd", "modelmonitors.modelwatch.io", "-o", "json").stdout)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert any(
        c["name"] == "Estimated" and c["jsonPath"] == ".status.estimatedMetric" for c in columns
    )


def _with_proba(df: Any) -> Any:
    """The model's probabilities: a logistic of the score the prediction thresholds."""
    effect = np.select([df["color"] == "red", df["color"] == "green"], [0.8, -0.8], 0.0)
    p1 = 1 / (1 + np.exp(-3 * (df["x1"] + df["x2"] + effect)))
    return df.assign(proba_0=1 - p1, proba_1=p1)


def test_estimate_shows_before_labels(operator: Kube, namespace: str) -> None:
    kube = operator
    store = make_store(kube, namespace)
    data = store / "data"
    data.mkdir(parents=True, exist_ok=True)
    _with_proba(frame(2000, concept="a", seed=1)).to_csv(data / "reference.csv", index=False)
    current = _with_proba(frame(800, concept="a", seed=2, start_id=10_000, shift=0.5))
    current.drop(columns=["y"]).to_parquet(data / "current.parquet", index=False)
    hand_over(store)
    kube.apply(server_deployment(namespace, version=1, sha256="ab" * 32, serve=False))
    doc = monitor(namespace, performance={"metric": "roc_auc"})
    doc["spec"]["data"].pop("labels")
    doc["spec"]["model"]["predictionColumn"] = "prediction"
    kube.apply(doc)
    wait_status(  # the operator has made the CronJob the check is created from
        kube,
        namespace,
        lambda s: s.get("observedGeneration") == 1,
        timeout=60,
        what="the status to be initialised",
    )
    run_check(kube, namespace, "check-1")
    st = wait_status(
        kube,
        namespace,
        lambda s: s.get("lastCheckJob") == "check-1",
        timeout=180,
        what="the operator to read check-1",
    )
    estimated = st["lastCheck"]["estimatedMetric"]
    assert estimated["estimated"] is True and estimated["name"] == "roc_auc", estimated
    assert estimated["lower"] <= estimated["value"] <= estimated["upper"]
    assert estimated["baselineSource"] == "reference"
    assert st["estimatedMetric"].startswith("roc_auc~")
    wide = kube.kubectl("get", "mm", "iris", "-n", namespace, "-o", "wide").stdout
    print(wide)
    assert "ESTIMATED" in wide and "roc_auc~" in wide
