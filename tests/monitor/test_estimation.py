"""Estimated performance without labels (CBPE): calibration, estimates, bands, the check."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from modelwatch_monitor.check import estimation as est
from modelwatch_monitor.check import loss_estimation as dle
from modelwatch_monitor.check.performance import compute_metrics, evaluate, reference_metrics
from modelwatch_monitor.check.profile import Roles, build_profile
from modelwatch_monitor.cli import main
from modelwatch_monitor.store.dataio import open_source

COEF = np.array([1.5, -1.0, 0.0])


def binary(n: int, *, seed: int, shift: float = 0.0, concept: bool = False) -> dict[str, Any]:
    """A calibrated binary model: the logged probability is the true ``P(y = 1 | x)``.

    ``shift`` moves ``x0`` (covariate shift: ``P(y | x)`` unchanged); ``concept`` flips
    the relation (the same probabilities, other labels).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    p1 = 1 / (1 + np.exp(-(x @ COEF + 0.3)))
    truth = 1 - p1 if concept else p1
    y = (rng.random(n) < truth).astype(np.int64)
    return {
        "x0": x[:, 0],
        "x1": x[:, 1],
        "x2": x[:, 2],
        "request_id": [f"r{seed}-{i}" for i in range(n)],
        "prediction": (p1 > 0.5).astype(np.int64),
        "proba_0": 1 - p1,
        "proba_1": p1,
        "y": y,
    }


def multiclass(n: int, *, seed: int, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    logits = 1.5 * x
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    labels = np.array(["a", "b", "c"])
    return {
        "x0": x[:, 0],
        "x1": x[:, 1],
        "x2": x[:, 2],
        "prediction": labels[p.argmax(axis=1)],
        **{f"proba_{c}": p[:, i] for i, c in enumerate(labels)},
        "y": labels[y],
    }


def proba_of(d: dict[str, Any]) -> dict[str, Any]:
    return {k[len("proba_") :]: v for k, v in d.items() if k.startswith("proba_")}


@pytest.fixture(scope="module")
def calibration() -> est.Calibration:
    ref = binary(20_000, seed=0)
    return est.fit_calibration(ref["y"], proba_of(ref))


@pytest.mark.parametrize("shift", [0.0, 0.8, -0.8])
def test_estimate_is_within_its_band_under_covariate_shift(
    calibration: est.Calibration, shift: float
) -> None:
    window = binary(4000, seed=11, shift=shift)
    found = est.estimate_metrics(calibration, proba_of(window), window["prediction"])
    realized = compute_metrics(
        window["y"], window["prediction"], "classification", proba=proba_of(window)
    )
    for name in est.ESTIMABLE_METRICS:
        e, r = found[name], realized[name].value
        assert r is not None
        assert e.lower <= r <= e.upper, (name, e, r)
        assert e.lower < e.value < e.upper


def test_estimate_tracks_a_covariate_shift_the_reference_did_not_show(
    calibration: est.Calibration,
) -> None:
    """Moving x0 far out makes the model more confident: accuracy goes up; the estimate
    follows, within 0.02 of the realized accuracy."""
    base = binary(5000, seed=3)
    shifted = binary(5000, seed=4, shift=2.5)
    e0 = est.estimate_metrics(calibration, proba_of(base), base["prediction"])["accuracy"]
    e1 = est.estimate_metrics(calibration, proba_of(shifted), shifted["prediction"])["accuracy"]
    r1 = skm.accuracy_score(shifted["y"], shifted["prediction"])
    assert e1.value > e0.value + 0.03
    assert abs(e1.value - r1) < 0.02


def test_band_narrows_with_the_window_size(calibration: est.Calibration) -> None:
    widths = {}
    for n in (250, 1000, 4000, 16000):
        w = binary(n, seed=5)
        found = est.estimate_metrics(calibration, proba_of(w), w["prediction"])
        widths[n] = {k: e.upper - e.lower for k, e in found.items()}
    for name in est.ESTIMABLE_METRICS:
        series = [widths[n][name] for n in (250, 1000, 4000, 16000)]
        assert series == sorted(series, reverse=True), (name, series)
        # about 1 / sqrt(n): four times the rows, about half the width
        assert 0.35 < series[-1] / series[-2] < 0.65, (name, series)


def test_multiclass_estimate_is_close_to_the_realized_metrics() -> None:
    ref = multiclass(20_000, seed=0)
    cal = est.fit_calibration(ref["y"], proba_of(ref))
    assert cal.classes == ("a", "b", "c") and len(cal.maps) == 3
    window = multiclass(5000, seed=9, shift=0.7)
    found = est.estimate_metrics(cal, proba_of(window), window["prediction"])
    realized = compute_metrics(
        window["y"], window["prediction"], "classification", proba=proba_of(window)
    )
    for name in ("accuracy", "f1", "roc_auc"):
        r = realized[name].value
        assert r is not None and abs(found[name].value - r) < 0.03, (name, found[name], r)
        assert found[name].lower < found[name].value < found[name].upper


def test_calibration_fixes_an_overconfident_model() -> None:
    """A model whose probabilities are pushed to the extremes: the raw confidence
    overstates the accuracy; the calibrated estimate does not."""
    rng = np.random.default_rng(7)

    def overconfident(n: int) -> tuple[np.ndarray[Any, Any], dict[str, Any], np.ndarray[Any, Any]]:
        x = rng.normal(size=n)
        p = 1 / (1 + np.exp(-x))
        y = (rng.random(n) < p).astype(int)
        shown = 1 / (1 + np.exp(-4 * x))
        return y, {"0": 1 - shown, "1": shown}, (shown > 0.5).astype(int)

    y_ref, p_ref, _ = overconfident(20_000)
    cal = est.fit_calibration(y_ref, p_ref)
    y, p, pred = overconfident(5000)
    realized = skm.accuracy_score(y, pred)
    raw_confidence = float(np.mean(np.maximum(p["0"], p["1"])))
    found = est.estimate_metrics(cal, p, pred)["accuracy"]
    assert raw_confidence - realized > 0.1
    assert found.lower <= realized <= found.upper


def test_calibration_round_trip_and_bad_input() -> None:
    ref = binary(500, seed=1)
    cal = est.fit_calibration(ref["y"], proba_of(ref))
    again = est.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    with pytest.raises(ValueError, match="malformed"):
        est.Calibration.from_dict({"classes": ["0", "1"], "maps": []})
    with pytest.raises(ValueError, match="at least 100"):
        est.fit_calibration(ref["y"][:10], {k: v[:10] for k, v in proba_of(ref).items()})
    with pytest.raises(ValueError, match="proba_c"):
        est.proba_matrix({"a": [0.5], "b": [0.5]}, ["a", "b", "c"])
    with pytest.raises(ValueError, match="'level' parameter"):
        est.estimate_metrics(cal, proba_of(ref), level=1.5)


@pytest.mark.parametrize(
    ("metric", "estimate", "baseline", "degraded", "reason"),
    [
        # the whole band below 0.9 * (1 - 0.1) = 0.81: degraded
        ("accuracy", est.Estimate("accuracy", 0.75, 0.72, 0.78), 0.9, True, None),
        # the band reaches above 0.81: not degraded, although the value is below
        ("accuracy", est.Estimate("accuracy", 0.79, 0.76, 0.82), 0.9, False, None),
        # lower is better: the band's lower end decides
        ("log_loss", est.Estimate("log_loss", 0.7, 0.6, 0.8), 0.5, True, None),
        ("log_loss", est.Estimate("log_loss", 0.7, 0.5, 0.9), 0.5, False, None),
        ("accuracy", est.Estimate("accuracy", 0.75, 0.72, 0.78), None, None, "NoBaseline"),
    ],
)
def test_evaluate_estimate_counts_the_band(
    metric: str, estimate: est.Estimate, baseline: float | None, degraded: bool | None, reason: str
) -> None:
    entry = est.evaluate_estimate(
        estimate,
        metric,
        baseline=baseline,
        baseline_source="reference" if baseline else None,
        max_degradation=0.1,
        rows=1000,
    )
    assert entry["degraded"] is degraded and entry["undefinedReason"] == reason
    assert entry["estimated"] is True and entry["overridden"] is False
    over = est.evaluate_estimate(
        estimate,
        metric,
        baseline=baseline,
        baseline_source=None,
        max_degradation=0.1,
        rows=1000,
        realized={"value": 0.9},
    )
    assert over["overridden"] is True


@pytest.mark.parametrize(
    ("module", "metric", "performance", "reason"),
    [
        (est, "r2", {}, "NotEstimable: r2 is not estimated without labels"),
        (est, "accuracy", {}, "NoCalibration: the reference needs the target"),
        (dle, "accuracy", {}, "NotEstimable: accuracy is not estimated without labels"),
        (dle, "mae", {}, "NoLossModel: the reference needs the features"),
    ],
)
def test_both_estimators_state_the_terms_in_their_entry(
    tmp_path: pathlib.Path, module: Any, metric: str, performance: dict[str, Any], reason: str
) -> None:
    """Without an estimate, either estimator's entry still carries the terms it was given."""
    source = open_source(_write(tmp_path / "w.parquet", {"prediction": [1, 0, 1]}))
    terms = est.EstimateTerms(
        metric,
        baseline=0.8,
        baseline_source="holdout",
        max_degradation=0.2,
        realized={"value": 0.7},
        level=0.9,
    )
    entry = module.estimate_window(source, performance, terms, prediction_column="prediction")
    assert entry["undefinedReason"].startswith(reason)
    assert entry == terms.entry(None, 0, entry["undefinedReason"])
    assert entry == est.evaluate_estimate(
        None,
        metric,
        baseline=0.8,
        baseline_source="holdout",
        max_degradation=0.2,
        rows=0,
        level=0.9,
        realized={"value": 0.7},
        undefined_reason=entry["undefinedReason"],
    )
    assert (entry["name"], entry["baseline"], entry["baselineSource"]) == (metric, 0.8, "holdout")
    assert (entry["level"], entry["overridden"], entry["value"]) == (0.9, True, None)


# ---------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------


def _write(path: pathlib.Path, cols: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return str(path)


@pytest.mark.parametrize("make", [binary, multiclass])
def test_profile_records_every_metric_and_the_calibration(
    tmp_path: pathlib.Path, make: Any
) -> None:
    ref = make(3000, seed=2)
    ref.pop("request_id", None)
    profile = build_profile(
        _write(tmp_path / "ref.parquet", ref),
        roles=Roles(target="y", prediction="prediction"),
        task="classification",
    )
    assert profile.performance is not None
    got = profile.performance["metrics"]
    assert set(got) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    classes = sorted(proba_of(ref))
    p = np.column_stack([ref[f"proba_{c}"] for c in classes])
    if len(classes) == 2:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(ref["y"], p[:, 1]))
    else:
        assert got["roc_auc"] == pytest.approx(
            skm.roc_auc_score([str(v) for v in ref["y"]], p, multi_class="ovr", labels=classes)
        )
    y_text = [str(v) for v in ref["y"]]
    assert got["log_loss"] == pytest.approx(skm.log_loss(y_text, p, labels=classes), rel=1e-6)
    cal = est.Calibration.from_dict(profile.performance["calibration"])
    assert list(cal.classes) == classes
    assert not {c for c in profile.features if c.startswith("proba_")}


def test_reference_metrics_skip_rows_without_probabilities() -> None:
    y = np.array([0, 1, 1, 0, 1] * 20)
    p1 = np.where(y == 1, 0.8, 0.3).astype(float)
    p1[0] = np.nan
    got = reference_metrics(y, y, "classification", proba={"1": p1})
    assert got["roc_auc"] == 1.0 and got["accuracy"] == 1.0


def test_a_metric_without_baseline_is_not_judged() -> None:
    m = compute_metrics([0, 1, 1, 0] * 20, [0, 1, 0, 0] * 20, "classification")
    r = evaluate(m, "accuracy", baseline=None, labeled_rows=80)
    assert r["value"] == 0.75 and r["degraded"] is None
    assert r["undefinedReason"] == "NoBaseline" and r["baselineSource"] is None
    r = evaluate(m, "accuracy", baseline=0.9, labeled_rows=80, baseline_source="spec")
    assert r["degraded"] is True and r["baselineSource"] == "spec"


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_check_estimates_before_labels_and_labels_override_a_concept_shift(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = binary(5000, seed=1)
    ref.pop("request_id")
    cur = binary(3000, seed=2, concept=True)  # the relation flipped: the model is now wrong
    y = cur.pop("y")
    args = [
        "check", "--reference", _write(tmp_path / "ref.parquet", ref),
        "--current", _write(tmp_path / "cur.parquet", cur),
        "--target", "y", "--id-column", "request_id", "--metric", "roc_auc",
        "--task", "classification",
    ]  # fmt: skip
    # No labels yet: the estimate (from confident, unchanged probabilities) looks fine.
    code, result = _run([*args, "--output", str(tmp_path / "o1")], capsys)
    assert code == 0, result
    e = result["estimatedMetric"]
    assert e["estimated"] is True and e["baselineSource"] == "reference"
    assert e["lower"] <= e["value"] <= e["upper"] and e["degraded"] is False
    assert not e["overridden"] and result["metric"] is None
    report = json.loads((tmp_path / "o1" / "report.json").read_text())
    assert report["estimated"]["value"] == pytest.approx(e["value"], abs=1e-6)
    page = (tmp_path / "o1" / "report.html").read_text()
    assert "Estimated performance" in page and "estimate" in page
    # Labels arrive: the realized metric shows the concept shift and overrides.
    labels = _write(tmp_path / "labels.parquet", {"request_id": cur["request_id"], "y": y})
    code, result = _run([*args, "--labels", labels, "--output", str(tmp_path / "o2")], capsys)
    assert code == 0, result
    assert result["metric"]["degraded"] is True and result["metric"]["value"] < 0.5
    assert result["metric"]["baselineSource"] == "reference"
    assert result["estimatedMetric"]["overridden"] is True
    assert result["estimatedMetric"]["degraded"] is False  # the estimate alone is blind to it


def test_check_without_calibration_says_what_is_needed(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = binary(2000, seed=1)
    for k in ("request_id", "proba_0", "proba_1"):
        ref.pop(k)
    cur = binary(1000, seed=2)
    cur.pop("y")
    code, result = _run(
        [
            "check", "--reference", _write(tmp_path / "ref.parquet", ref),
            "--current", _write(tmp_path / "cur.parquet", cur), "--target", "y",
            "--task", "classification", "--output", str(tmp_path / "o"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, result
    e = result["estimatedMetric"]
    assert e["value"] is None and e["undefinedReason"].startswith("NoCalibration")
    assert "proba_<class>" in e["undefinedReason"]
