"""After a promotion the reference moves with the model: a check compares live data
with the data the serving version was trained on, stored with that version."""

from __future__ import annotations

import json
import pathlib

from modelwatch_monitor import contract
from modelwatch_monitor.store.registry import Registry
from tests.monitor import mw_synth as synth


def _check(tmp_path: pathlib.Path, store: str, reference: pathlib.Path) -> dict[str, object]:
    doc = synth.job_config(store)
    # The synthetic log is dated 2026-11-02: a window wide enough for it (the default is 7d).
    doc["spec"]["data"] = {"reference": {"uri": str(reference)}, "current": {"window": "3650d"}}
    doc["spec"]["drift"] = {"driftShareThreshold": 0.3}
    cfg = synth.write_config(tmp_path / "check.json", doc)
    code, result, err = synth.run_cli(
        "check", "--config", cfg, "--result-path", str(tmp_path / "check.t")
    )
    assert code == 0, err
    return result


def test_check_uses_the_serving_versions_training_data(tmp_path: pathlib.Path) -> None:
    store = str(tmp_path / "store")
    original = synth.frame(3000, seed=1)
    original.to_parquet(tmp_path / "original.parquet")
    shifted = synth.frame(3000, seed=2)
    shifted[["x1", "x2"]] += 1.0  # the new normal
    shifted.to_parquet(tmp_path / "shifted.parquet")

    # Version 1 is trained on the new normal and stores its training profile.
    doc = synth.job_config(store, trainingData="reference")
    doc["spec"]["data"] = {"reference": {"uri": str(tmp_path / "shifted.parquet")}}
    cfg = synth.write_config(tmp_path / "v1.json", doc)
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "1", "--termination-log", str(tmp_path / "t")
    )
    assert code == 0, err
    profile_path = pathlib.Path(contract.version_profile_path(store, "churn", 1))
    profile = json.loads(profile_path.read_text())
    assert {"x1", "x2", "x3", "color"} <= set(profile["columns"])
    # The model was at hand: its holdout probabilities calibrate estimated performance.
    assert profile["performance"]["calibration"]["classes"] == ["0", "1"]
    meta = Registry(store, "churn").metadata(1)
    assert set(meta["files"]) == {contract.PROFILE_FILE}

    # Live traffic of the new normal, served by version 1 (model_version = 1).
    live = synth.frame(2000, seed=3, start_id=50_000)
    live[["x1", "x2"]] += 1.0
    synth.write_prediction_log(store, "churn", live)

    result = _check(tmp_path, store, tmp_path / "original.parquet")
    assert result["nDrifted"] == 0, result
    assert result["datasetDrift"] is False
    # Calibrated, but these logs carry no probabilities: the estimate says so.
    assert result["estimatedMetric"]["undefinedReason"].startswith("NoProbabilities")

    # Without that profile the configured (original) reference applies: drift.
    profile_path.chmod(0o644)
    profile_path.unlink()
    (pathlib.Path(contract.reference_profile_path(store, "churn"))).unlink(missing_ok=True)
    result = _check(tmp_path, store, tmp_path / "original.parquet")
    drifted = {f["name"] for f in result["topFeatures"]}
    assert {"x1", "x2"} <= drifted, result
