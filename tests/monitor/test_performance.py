"""Metrics against scikit-learn, undefined windows, baselines."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from sklearn import metrics as skm

from modelwatch_monitor import contract
from modelwatch_monitor.check.performance import (
    compute_metrics,
    evaluate,
    is_degraded,
    version_metric,
)


def test_binary_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p1 = np.clip(y * 0.6 + rng.random(500) * 0.5, 0, 1)
    pred = (p1 > 0.5).astype(int)
    m = compute_metrics(y, pred, "classification", proba={"1": p1})
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"].value == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"].value == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"].value == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, p1))
    assert m["log_loss"].value == pytest.approx(skm.log_loss(y, np.clip(p1, 1e-15, 1)), rel=1e-6)


def test_multiclass_with_probability_columns() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 300)
    proba = rng.dirichlet(np.ones(3), 300)
    pred = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    m = compute_metrics(
        y, pred, "classification", proba={c: proba[:, i] for i, c in enumerate("abc")}
    )
    assert m["f1"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"].value == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", labels=["a", "b", "c"])
    )


def test_a_missing_class_is_undefined_not_a_crash() -> None:
    m = compute_metrics([1, 1, 1], [1, 0, 1], "classification", proba={"1": [0.9, 0.2, 0.8]})
    assert m["accuracy"].value == pytest.approx(2 / 3)
    for name in ("precision", "recall", "f1", "roc_auc", "log_loss"):
        assert m[name].value is None and "only one class" in str(m[name].undefined_reason)
    m = compute_metrics([0, 1], [0, 1], "classification")
    assert m["roc_auc"].value is None and "probability" in str(m["roc_auc"].undefined_reason)


def test_regression_metrics() -> None:
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 5.0])
    m = compute_metrics(y, p, "regression")
    assert m["rmse"].value == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert m["mae"].value == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["r2"].value == pytest.approx(skm.r2_score(y, p))
    assert compute_metrics([2.0, 2.0], [1.0, 3.0], "regression")["r2"].value is None


def test_evaluate_direction_and_min_rows() -> None:
    m = compute_metrics([0, 1, 1, 0] * 20, [0, 1, 0, 0] * 20, "classification")
    r = evaluate(m, "accuracy", baseline=0.9, labeled_rows=80)
    assert r["value"] == 0.75 and r["relativeChange"] == pytest.approx(-1 / 6) and r["degraded"]
    r = evaluate(m, "accuracy", baseline=0.8, labeled_rows=80)
    assert not r["degraded"]
    r = evaluate(m, "accuracy", baseline=0.9, labeled_rows=20, min_labeled_rows=50)
    assert r["value"] is None and not r["degraded"] and "20 labelled rows" in r["undefinedReason"]
    assert is_degraded("rmse", 0.2, 0.1) and not is_degraded("rmse", -0.5, 0.1)
    with pytest.raises(ValueError, match="'metric' parameter"):
        evaluate(m, "rmse", baseline=None, labeled_rows=80)


def test_version_metric(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path)
    assert version_metric(store, "m", "accuracy") is None
    for v, acc in ((1, 0.8), (2, 0.85), (10, 0.9)):
        path = pathlib.Path(contract.version_dir(store, "m", v)) / contract.METADATA_FILE
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"metrics": {"challenger": {"accuracy": acc}}}))
    assert version_metric(store, "m", "accuracy") == 0.9
    assert version_metric(store, "m", "f1") is None
    # the version that served the window is the baseline, not a newer unpromoted one
    assert version_metric(store, "m", "accuracy", version=2) == 0.85
    assert version_metric(store, "m", "accuracy", version=7) == 0.9  # no such version
