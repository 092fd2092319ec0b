"""Estimated regression error without labels: the direct loss-estimation model."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor.check import loss_estimation as dle
from modelwatch_monitor.cli import main
from modelwatch_monitor.store.dataio import DataError


def frame(n: int, *, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """``y = 2 x0 - x1 + noise``, the noise 0.2 for x0 < 0 and up to 1.2 beyond; the
    model predicts the mean exactly, so its error is the noise. A covariate shift of
    x0 moves the traffic where the model is worse."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(shift, 1.0, n)
    x1 = rng.normal(size=n)
    seg = rng.choice(["a", "b"], n)
    scale = 0.2 + np.clip(x0, 0, 2) * 0.5 + (seg == "b") * 0.1
    mean = 2 * x0 - x1
    return pd.DataFrame(
        {"x0": x0, "x1": x1, "seg": seg, "prediction": mean, "y": mean + rng.normal(size=n) * scale}
    )


@pytest.fixture(scope="module")
def model() -> dle.LossModel:
    ref = frame(20_000, seed=0)
    return dle.fit_loss_model(
        ref[["x0", "x1", "seg"]], ref["y"], ref["prediction"], categorical=["seg"]
    )


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_estimate_follows_a_covariate_shift_within_its_band(
    model: dle.LossModel, shift: float
) -> None:
    """A 95% band: the realized error falls inside in at least 8 of 10 windows, and the
    estimate is within 3% of it on average."""
    inside = {"mae": 0, "rmse": 0}
    errors: dict[str, list[float]] = {"mae": [], "rmse": []}
    for seed in range(10):
        w = frame(4000, seed=100 + seed, shift=shift)
        found = model.estimate(w, w["prediction"])
        err = w["y"] - w["prediction"]
        realized = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}
        for name in inside:
            e = found[name]
            inside[name] += e.lower <= realized[name] <= e.upper
            errors[name].append(abs(e.value - realized[name]) / realized[name])
    for name in inside:
        assert inside[name] >= 8, (name, inside)
        assert np.mean(errors[name]) < 0.03, (name, errors[name])


def test_shift_into_the_worse_region_raises_the_estimate(model: dle.LossModel) -> None:
    base, moved = frame(3000, seed=3), frame(3000, seed=4, shift=1.5)
    assert model.estimate(moved, moved["prediction"])["mae"].value > 1.5 * (
        model.estimate(base, base["prediction"])["mae"].value
    )


def test_band_narrows_with_the_window_size(model: dle.LossModel) -> None:
    widths = []
    for n in (250, 1000, 4000):
        w = frame(n, seed=5)
        e = model.estimate(w, w["prediction"])["mae"]
        widths.append(e.upper - e.lower)
    assert widths == sorted(widths, reverse=True)
    assert 0.4 < widths[2] / widths[1] < 0.6


def test_a_tampered_loss_model_is_refused(tmp_path: pathlib.Path, model: dle.LossModel) -> None:
    uri = str(tmp_path / "loss.joblib")
    entry = dle.save(model, uri)
    assert isinstance(dle.load(entry), dle.LossModel)
    pathlib.Path(uri).write_bytes(b"x" + pathlib.Path(uri).read_bytes())
    with pytest.raises(DataError, match="refusing to unpickle"):
        dle.load(entry)
    with pytest.raises(ValueError, match="at least 200 rows"):
        ref = frame(50, seed=1)
        dle.fit_loss_model(ref[["x0"]], ref["y"], ref["prediction"])


def _write(path: pathlib.Path, df: pd.DataFrame) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return str(path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_check_estimates_regression_error_before_labels(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = frame(5000, seed=1)
    cur = frame(2000, seed=2, shift=1.0).drop(columns=["y"])
    code, result = _run(
        [
            "check", "--reference", _write(tmp_path / "ref.parquet", ref),
            "--current", _write(tmp_path / "cur.parquet", cur), "--target", "y",
            "--prediction-column", "prediction", "--task", "regression", "--metric", "mae",
            "--output", str(tmp_path / "o"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, result
    e = result["estimatedMetric"]
    assert e["estimated"] is True and e["name"] == "mae" and e["baselineSource"] == "reference"
    assert e["lower"] < e["value"] < e["upper"]
    # x0 moved into the noisier region: the estimated error grew beyond 10%, band included.
    assert e["degraded"] is True and e["relativeChange"] > 0.5
    assert "estimated mae" in result["message"]


def test_the_loss_model_is_stored_beside_the_profile_and_reused(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelwatch_monitor import contract

    store = tmp_path / "store"
    ref_uri = _write(tmp_path / "ref.parquet", frame(3000, seed=1))
    current = frame(1000, seed=2).drop(columns=["y"])
    current["timestamp"] = pd.Timestamp.now(tz="UTC")  # inside the default 7d window
    cur_uri = _write(tmp_path / "cur.parquet", current)
    doc = contract.build_job_config(
        name="m",
        namespace="default",
        spec={
            "model": {"name": "house", "task": "regression", "target": "y"},
            "data": {"reference": {"uri": ref_uri}, "current": {"uri": cur_uri}},
            "store": {"uri": str(store)},
            "performance": {"metric": "rmse"},
        },
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(doc))
    argv = ["check", "--config", str(config), "--result-path", str(tmp_path / "r")]
    code, first = _run(argv, capsys)
    assert code == 0, first
    profile_path = pathlib.Path(contract.reference_profile_path(str(store), "house"))
    entry = json.loads(profile_path.read_text())["performance"]["lossModel"]
    assert pathlib.Path(entry["uri"]) == profile_path.parent / dle.LOSS_MODEL_FILE
    assert entry["rows"] == 3000 and len(entry["sha256"]) == 64
    pathlib.Path(ref_uri).unlink()  # the second check never reads the reference again
    code, again = _run(argv, capsys)
    assert code == 0, again
    assert again["estimatedMetric"]["value"] == pytest.approx(first["estimatedMetric"]["value"])
    assert again["estimatedMetric"]["name"] == "rmse" and again["estimatedMetric"]["estimated"]


def test_an_id_like_categorical_is_left_out_of_the_loss_model() -> None:
    from modelwatch_monitor.check.loss_estimation import fit_loss_model

    rng = np.random.default_rng(0)
    n = 600
    features = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "shop": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "order": pd.Categorical([f"o-{i}" for i in range(n)]),
        }
    )
    y = features["x"].to_numpy() + rng.normal(scale=0.2, size=n)
    model = fit_loss_model(features, y, features["x"].to_numpy(), categorical=["shop", "order"])
    assert model.features == ["x", "shop"] and model.categorical == ["shop"]
