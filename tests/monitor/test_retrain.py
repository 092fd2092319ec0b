"""``modelwatch retrain``: real FLAML runs on small synthetic data, in subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from modelwatch_monitor import cli, contract
from modelwatch_monitor.store.registry import Registry
from modelwatch_monitor.train import data as training_data
from modelwatch_monitor.train import plan as planning
from modelwatch_monitor.train import reasons
from modelwatch_monitor.train.automl import cpu_limit
from tests.monitor import mw_synth as synth


@pytest.fixture(scope="module")
def stale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store whose version 1 was trained on concept ``a`` reference data."""
    root = tmp_path_factory.mktemp("stale")
    store = str(root / "store")
    ref = synth.frame(600, concept="a", seed=1)
    ref.to_parquet(root / "reference.parquet")
    doc = synth.job_config(store, trainingData="reference")
    doc["spec"]["data"] = {"reference": {"uri": str(root / "reference.parquet")}}
    cfg = synth.write_config(root / "v1.json", doc)
    term = root / "v1.termination"
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "1", "--termination-log", str(term)
    )
    assert code == 0, err
    return {"root": root, "store": store, "result": result, "termination": term, "stderr": err}


def _scenario(
    stale: dict[str, Any], tmp_path: pathlib.Path, *, concept: str, rows: int = 400
) -> str:
    """Copy the stale store and add ``rows`` logged predictions labeled under ``concept``."""
    store = str(tmp_path / "store")
    shutil.copytree(stale["store"], store)
    recent = synth.frame(rows, concept=concept, seed=2, start_id=10_000)
    synth.write_prediction_log(store, "churn", recent)
    recent[["id", "y"]].to_parquet(tmp_path / "labels.parquet")
    return store


def _config(tmp_path: pathlib.Path, store: str, stale: dict[str, Any], **retrain: Any) -> str:
    doc = synth.job_config(store, **retrain)
    doc["spec"]["data"] = {
        "reference": {"uri": str(stale["root"] / "reference.parquet")},
        "labels": {"uri": str(tmp_path / "labels.parquet"), "idColumn": "id"},
    }
    return synth.write_config(tmp_path / "config.json", doc)


@pytest.mark.slow
def test_first_version_is_promoted_and_written(stale: dict[str, Any]) -> None:
    result = stale["result"]
    assert result["ok"] is True
    assert result["kind"] == "retrain"
    assert result["version"] == 1
    assert result["promote"] is True
    assert result["reason"] == "FirstVersion"
    assert result["champion"] is None
    assert result["metric"] == "roc_auc"
    assert result["challenger"]["score"] > 0.75
    # The termination message and stdout's last line carry the same result.
    assert contract.parse_result(stale["termination"].read_text()) == result
    folder = pathlib.Path(contract.version_dir(stale["store"], "churn", 1))
    sha = hashlib.sha256((folder / contract.MODEL_FILE).read_bytes()).hexdigest()
    assert result["sha256"] == sha
    meta = json.loads((folder / contract.METADATA_FILE).read_text())
    assert meta["sha256"] == sha
    assert meta["version"] == 1
    assert meta["metrics"]["champion"] is None
    assert meta["metrics"]["challenger"]["roc_auc"] == result["challenger"]["score"]
    assert meta["flaml"]["bestEstimator"] in ("lgbm", "rf")
    assert isinstance(meta["flaml"]["bestConfig"], dict) and meta["flaml"]["bestConfig"]
    assert meta["flaml"]["nJobs"] == cpu_limit()
    assert meta["training"]["rows"] == 420 and meta["holdout"]["rows"] == 180
    assert meta["training"]["fingerprint"].startswith("sha256:")
    libraries = {"python", "flaml", "scikit-learn", "lightgbm", "xgboost", "numpy", "pandas"}
    assert libraries <= set(meta["libraries"])
    assert result["libraries"] == meta["libraries"]  # the operator shows them in status
    assert [f["name"] for f in meta["features"]] == synth.FEATURES
    assert meta["features"][0] == {"name": "x1", "type": "numeric", "dtype": "float64"}
    assert meta["features"][3] == {
        "name": "color",
        "type": "categorical",
        "dtype": "str",
        "categories": ["blue", "green", "red"],
    }
    # Progress was logged while training.
    assert "iteration" in stale["stderr"] and "training done" in stale["stderr"]


@pytest.mark.slow
def test_concept_drift_challenger_beats_stale_champion(
    stale: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    store = _scenario(stale, tmp_path, concept="b")
    cfg = _config(tmp_path, store, stale, trainingData="recent")
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--trigger-report", "20261123T100000Z",
        "--termination-log", str(tmp_path / "term"),
    )  # fmt: skip
    assert code == 0, err
    assert result["ok"] is True
    assert result["promote"] is True, result
    assert result["reason"] == "ChallengerBetter"
    assert result["champion"]["version"] == 1
    assert result["challenger"]["score"] >= result["champion"]["score"] + 0.01
    assert result["reportId"] == "20261123T100000Z"
    meta = Registry(store, "churn").metadata(2)
    assert meta["triggerReport"] == "20261123T100000Z"
    assert meta["metrics"]["champion"]["roc_auc"] == result["champion"]["score"]
    assert meta["training"]["sources"] == {"recent": 280}
    assert meta["holdout"]["source"] == "recent" and meta["holdout"]["rows"] == 120
    # The holdout is the most recent slice: it starts after the training window ends.
    assert meta["training"]["window"]["end"] < meta["holdout"]["window"]["start"]


@pytest.mark.slow
def test_champion_trained_with_another_scikit_learn_is_refused(
    stale: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    """The champion's pickle would not survive this image's scikit-learn: it is refused
    before unpickling, with both releases named, and the challenger replaces it."""
    store = _scenario(stale, tmp_path, concept="b")
    meta_path = pathlib.Path(contract.version_dir(store, "churn", 1)) / contract.METADATA_FILE
    meta = json.loads(meta_path.read_text())
    installed = meta["libraries"]["scikit-learn"]
    major, minor = installed.split(".")[:2]
    other = f"{major}.{int(minor) + 1}.0"
    meta["libraries"]["scikit-learn"] = other
    meta_path.write_text(json.dumps(meta))
    cfg = _config(tmp_path, store, stale, trainingData="recent")
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--termination-log", str(tmp_path / "t")
    )
    assert code == 0, err
    assert result["reason"] == "ChampionUnusable" and result["promote"] is True
    assert (
        f"scikit-learn: the version was trained with {other}, this image has {installed}"
        in (result["message"])
    )
    assert Registry(store, "churn").metadata(1)["libraries"]["scikit-learn"] == other


@pytest.mark.slow
def test_no_drift_challenger_is_not_promoted(tmp_path: pathlib.Path) -> None:
    # Both versions are logistic regressions (a convex fit: the same optimum however
    # many FLAML trials a loaded machine allows), so "no gain" does not hinge on timing.
    automl = {"timeBudgetSeconds": 2, "estimators": ["lrl1"], "seed": 0}
    store = str(tmp_path / "store")
    ref = synth.frame(600, concept="a", seed=1)
    ref.to_parquet(tmp_path / "reference.parquet")
    doc = synth.job_config(store, trainingData="reference", automl=automl)
    doc["spec"]["data"] = {"reference": {"uri": str(tmp_path / "reference.parquet")}}
    v1 = synth.write_config(tmp_path / "v1.json", doc)
    code, _, err = synth.run_cli(
        "retrain", "--config", v1, "--version", "1", "--termination-log", str(tmp_path / "t1")
    )
    assert code == 0, err
    recent = synth.frame(2000, concept="a", seed=2, start_id=10_000)
    synth.write_prediction_log(store, "churn", recent)
    recent[["id", "y"]].to_parquet(tmp_path / "labels.parquet")
    doc = synth.job_config(store, trainingData="both", minImprovement=0.03, automl=automl)
    doc["spec"]["data"] = {
        "reference": {"uri": str(tmp_path / "reference.parquet")},
        "labels": {"uri": str(tmp_path / "labels.parquet"), "idColumn": "id"},
    }
    cfg = synth.write_config(tmp_path / "config.json", doc)
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--termination-log", str(tmp_path / "t")
    )
    assert code == 0, err
    assert result["promote"] is False, result
    assert result["reason"] == "BelowMinImprovement"
    assert "is below minImprovement 0.03" in result["message"]
    assert result["improvement"] < 0.03
    assert result["champion"]["version"] == 1
    # The version is still recorded, for the audit trail; the operator does not roll it.
    assert Registry(store, "churn").versions() == [1, 2]


@pytest.mark.slow
def test_killed_retrain_leaves_no_version(stale: dict[str, Any], tmp_path: pathlib.Path) -> None:
    store = _scenario(stale, tmp_path, concept="b")
    doc = synth.job_config(store, trainingData="recent")
    doc["spec"]["retrain"]["automl"]["timeBudgetSeconds"] = 60
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "config.json", doc)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwatch_monitor", "retrain", "--config", cfg,
         "--version", "2", "--termination-log", str(tmp_path / "t")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=synth.ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if "iteration 3," in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert Registry(store, "churn").versions() == [1]
    assert not os.path.exists(contract.version_dir(store, "churn", 2))


@pytest.mark.slow
def test_convenience_form_regression(tmp_path: pathlib.Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    data = synth.frame(500, seed=3)
    data["y"] = 2.0 * data["x1"] - data["x2"] + rng.normal(scale=0.1, size=len(data))
    data.iloc[:400].to_csv(tmp_path / "train.csv", index=False)
    data.iloc[400:].to_parquet(tmp_path / "holdout.parquet")
    code, result, err = synth.run_cli(
        "retrain", "--train", str(tmp_path / "train.csv"), "--holdout",
        str(tmp_path / "holdout.parquet"), "--target", "y", "--task", "regression",
        "--time-budget", "2", "--store", str(tmp_path / "store"), "--model", "demand",
        "--version", "1", "--id-column", "id", "--timestamp-column", "ts",
        "--estimators", "lgbm", "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 0, err
    assert result["metric"] == "r2"
    assert result["challenger"]["score"] > 0.3  # R²; low budgets on a busy machine vary
    assert result["rows"] == {"train": 400, "holdout": 100}
    meta = Registry(str(tmp_path / "store"), "demand").metadata(1)
    assert [f["name"] for f in meta["features"]] == ["x1", "x2", "x3", "color"]
    assert set(meta["metrics"]["challenger"]) == {"r2", "rmse", "mae"}


# -- bad input: fails before training, run in-process ---------------------------------


def _run_inproc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["retrain", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


@pytest.fixture()
def recent_store(tmp_path: pathlib.Path) -> str:
    store = str(tmp_path / "store")
    recent = synth.frame(120, concept="b", seed=5)
    synth.write_prediction_log(store, "churn", recent)
    recent[["id", "y"]].to_parquet(tmp_path / "labels.parquet")
    recent[["y"]].assign(key=recent["id"]).to_parquet(tmp_path / "labels-no-id.parquet")
    return store


def test_labels_without_id_column(
    recent_store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = synth.job_config(recent_store, trainingData="recent")
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels-no-id.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    term = tmp_path / "term"
    code, result = _run_inproc(
        capsys, "--config", cfg, "--version", "1", "--termination-log", str(term)
    )
    assert code != 0
    assert result["ok"] is False
    assert result["reason"] == "DataError"
    assert "no id column 'id'" in result["message"]
    assert json.loads(term.read_text())["reason"] == "DataError"
    assert Registry(recent_store, "churn").versions() == []


def test_too_few_labeled_rows(
    recent_store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = synth.job_config(recent_store, trainingData="both", minLabeledRows=500)
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    code, result = _run_inproc(
        capsys, "--config", cfg, "--version", "1", "--termination-log", str(tmp_path / "t")
    )
    assert code != 0
    assert result["reason"] == "NotEnoughLabels"
    assert "120 labeled recent rows, fewer than minLabeledRows 500" in result["message"]
    assert not os.path.exists(contract.versions_dir(recent_store, "churn"))


@pytest.mark.parametrize("budget", [0, -5])
def test_time_budget_must_be_positive(
    budget: int, recent_store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = synth.job_config(recent_store)
    doc["spec"]["retrain"]["automl"]["timeBudgetSeconds"] = budget
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    code, result = _run_inproc(
        capsys, "--config", cfg, "--version", "1", "--termination-log", str(tmp_path / "t")
    )
    assert code != 0
    assert result["reason"] == "ConfigError"
    assert (
        "timeBudgetSeconds: must be >= 1" in result["message"]
        and f"got {budget!r}" in result["message"]
    )
    code, result = _run_inproc(
        capsys, "--train", str(tmp_path / "labels.parquet"), "--target", "y", "--task",
        "classification", "--time-budget", str(budget), "--store", recent_store, "--model",
        "churn", "--version", "1", "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code != 0 and result["reason"] == "ConfigError"
    assert Registry(recent_store, "churn").versions() == []


def test_existing_version_is_refused(
    recent_store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Registry(recent_store, "churn").publish(1, {"w": 1}, {})
    doc = synth.job_config(recent_store)
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    code, result = _run_inproc(
        capsys, "--config", cfg, "--version", "1", "--termination-log", str(tmp_path / "t")
    )
    assert code != 0 and result["reason"] == "VersionExists"
    assert Registry(recent_store, "churn").load(1).model == {"w": 1}


def test_bad_config_document(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.json").write_text('{"schema": 1, "spec": {}}')
    code, result = _run_inproc(
        capsys, "--config", str(tmp_path / "c.json"), "--version", "1",
        "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code != 0 and result["reason"] == "ConfigError"
    assert "spec.model: is required" in result["message"]


def test_cpu_limit_is_joblibs_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """joblib's count honours the cgroup CPU quota and the affinity (loky reads cpu.max or
    cpu.cfs_quota_us); LOKY_MAX_CPU_COUNT is its user override."""
    import joblib

    assert cpu_limit() == joblib.cpu_count() >= 1
    assert cpu_limit() <= len(os.sched_getaffinity(0))
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert cpu_limit() == 1


def test_assembly_joins_labels_by_id_and_holds_out_the_latest(
    recent_store: str, tmp_path: pathlib.Path
) -> None:
    import argparse

    import numpy as np
    import pandas as pd

    labels = pd.read_parquet(tmp_path / "labels.parquet").iloc[:100]
    labels["id"] = labels["id"].astype(float)  # as a CSV with a gap reads it
    labels = pd.concat([labels, pd.DataFrame({"id": [np.nan], "y": [1]})])
    labels.to_csv(tmp_path / "labels.csv", index=False)
    doc = synth.job_config(recent_store, trainingData="recent", holdoutFraction=0.25)
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.csv")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    args = argparse.Namespace(
        config=cfg, model_version=1, champion_version=None, trigger_report="", n_jobs=1
    )
    data = training_data.assemble(planning.plan_from_config(args))
    assert len(data.train) == 75 and len(data.holdout) == 25
    assert data.features == synth.FEATURES
    assert data.holdout["timestamp"].min() > pd.to_datetime(data.training_info["window"]["end"])
    assert data.holdout["id"].tolist() == list(range(75, 100))


# -- metrics: one scoring function for champion and challenger ------------------------


@pytest.mark.parametrize(
    ("metric", "task", "n_classes", "expected"),
    [
        ("auto", "classification", 2, "roc_auc"),
        ("auto", "classification", 3, "roc_auc_ovr"),
        ("auto", "regression", 0, "r2"),
        ("roc_auc", "classification", 4, "roc_auc_ovr"),
        ("log_loss", "classification", 2, "log_loss"),
        ("rmse", "regression", 0, "rmse"),
    ],
)
def test_resolve_metric(metric: str, task: str, n_classes: int, expected: str) -> None:
    from modelwatch_monitor.train.automl import resolve_metric

    assert resolve_metric(metric, task, n_classes) == expected


def test_resolve_metric_rejects_a_metric_of_the_other_task() -> None:
    from modelwatch_monitor.train.automl import resolve_metric

    with pytest.raises(ValueError, match="does not apply"):
        resolve_metric("rmse", "classification", 2)


class _Fixed:
    """A stand-in model with fixed outputs, to check the scoring arithmetic."""

    def __init__(self, classes: list[str], proba: Any) -> None:
        import numpy as np

        self.classes_ = np.asarray(classes)
        self.proba = np.asarray(proba, dtype=float)

    def predict_proba(self, X: Any) -> Any:
        return self.proba

    def predict(self, X: Any) -> Any:
        return self.classes_[self.proba.argmax(axis=1)]


def test_scores_match_scikit_learn() -> None:
    import numpy as np
    import pandas as pd
    from sklearn import metrics as skm

    from modelwatch_monitor.train.scoring import score

    rng = np.random.default_rng(0)
    y = pd.Series(rng.choice(["a", "b", "c"], size=200))
    proba = rng.dirichlet([1, 1, 1], size=200)
    model = _Fixed(["a", "b", "c"], proba)
    X = pd.DataFrame(index=range(200))
    assert score(model, X, y, "roc_auc_ovr") == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", labels=["a", "b", "c"])
    )
    assert score(model, X, y, "accuracy") == pytest.approx(skm.accuracy_score(y, model.predict(X)))
    assert score(model, X, y, "log_loss") == pytest.approx(skm.log_loss(y, proba))
    # A champion that never saw class "c" still scores on the same holdout.
    old = _Fixed(["a", "b"], proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True))
    assert 0.0 <= score(old, X, y, "roc_auc_ovr") <= 1.0
    binary = y.where(y == "a", "b")
    assert score(model, X, binary, "roc_auc") == pytest.approx(
        skm.roc_auc_score(binary == "b", proba[:, 1])
    )
    with pytest.raises(ValueError, match="one class"):
        score(model, X, pd.Series(["a"] * 200), "roc_auc")


def test_a_profile_reference_cannot_train(recent_store: str, tmp_path: pathlib.Path) -> None:
    import argparse

    doc = synth.job_config(recent_store, trainingData="both")
    doc["spec"]["data"] = {
        "reference": {"uri": str(tmp_path / "reference.json")},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    args = argparse.Namespace(
        config=cfg, model_version=1, champion_version=None, trigger_report="", n_jobs=1
    )
    data = training_data.assemble(planning.plan_from_config(args))
    assert data.training_info["sources"] == {"recent": 84}
    assert len(data.holdout) == 36
    doc["spec"]["retrain"]["trainingData"] = "reference"
    synth.write_config(tmp_path / "c.json", doc)
    with pytest.raises(reasons.RetrainError, match="a profile cannot train") as err:
        training_data.assemble(planning.plan_from_config(args))
    assert err.value.reason == "ConfigError"


@pytest.mark.slow
@pytest.mark.parametrize(("since_row", "expected_rows"), [(10_400, 400), (10_780, 800)])
def test_since_trains_on_the_traffic_after_the_change(
    stale: dict[str, Any], tmp_path: pathlib.Path, since_row: int, expected_rows: int
) -> None:
    """``--since`` (when the violations began) keeps the old normal out of the training
    data, unless too few labeled rows are left: then the whole window is used."""
    import pandas as pd

    store = str(tmp_path / "store")
    shutil.copytree(stale["store"], store)
    old = synth.frame(400, concept="a", seed=2, start_id=10_000)
    new = synth.frame(400, concept="b", seed=3, start_id=10_400)
    synth.write_prediction_log(store, "churn", old)
    synth.write_prediction_log(store, "churn", new)
    pd.concat([old, new])[["id", "y"]].to_parquet(tmp_path / "labels.parquet")
    cfg = _config(tmp_path, store, stale, trainingData="recent")
    since = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=since_row)
    code, _, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--since", since.isoformat(),
        "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 0, err
    meta = Registry(store, "churn").metadata(2)
    assert meta["training"]["rows"] + meta["holdout"]["rows"] == expected_rows
    if expected_rows == 400:
        assert "since the violations began" in err
    else:
        assert "training on the whole window" in err


def test_a_bad_since_is_a_config_error(stale: dict[str, Any], tmp_path: pathlib.Path) -> None:
    cfg = _config(tmp_path, stale["store"], stale, trainingData="recent")
    code, result, _ = synth.run_cli(
        "retrain", "--config", cfg, "--version", "9", "--since", "last tuesday",
        "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 1 and result["reason"] == "ConfigError"
    assert "The '--since' parameter must be an RFC 3339 time" in result["message"]


@pytest.mark.slow
def test_a_rerun_of_the_same_reservation_reports_the_published_version(
    stale: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    """The Job for version 2 ran to the end, then ran again (its pod restarted, or the Job
    was recreated): the second run reports version 2 as published, trains nothing and
    writes nothing, and the operator's strict reader accepts the result."""
    store = _scenario(stale, tmp_path, concept="b")
    cfg = _config(tmp_path, store, stale, trainingData="recent")
    argv = ("retrain", "--config", cfg, "--version", "2", "--termination-log")
    code, first, err = synth.run_cli(*argv, str(tmp_path / "t1"))
    assert code == 0, err
    folder = pathlib.Path(contract.version_dir(store, "churn", 2))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    code, again, err = synth.run_cli(*argv, str(tmp_path / "t2"))
    assert code == 0, err
    assert again["reused"] is True and "training done" not in err
    for key in ("version", "sha256", "metric", "promote", "reason", "libraries"):
        assert again[key] == first[key], key
    assert again["challenger"]["score"] == pytest.approx(first["challenger"]["score"])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert contract.validate_result(contract.parse_result((tmp_path / "t2").read_text())) == []


@pytest.mark.slow
def test_a_regression_version_carries_its_loss_model(tmp_path: pathlib.Path) -> None:
    """A retrained regressor stores the loss model of its error (fitted on the holdout)
    with the version, so estimated error keeps working after it is promoted."""
    import hashlib

    import numpy as np

    from modelwatch_monitor.check.loss_estimation import load

    rng = np.random.default_rng(4)
    data = synth.frame(1500, seed=4)
    data["y"] = 2.0 * data["x1"] - data["x2"] + rng.normal(scale=0.3, size=len(data))
    data.iloc[:1200].to_csv(tmp_path / "train.csv", index=False)
    data.iloc[1200:].to_parquet(tmp_path / "holdout.parquet")
    code, _, err = synth.run_cli(
        "retrain", "--train", str(tmp_path / "train.csv"), "--holdout",
        str(tmp_path / "holdout.parquet"), "--target", "y", "--task", "regression",
        "--time-budget", "2", "--store", str(tmp_path / "store"), "--model", "demand",
        "--version", "1", "--id-column", "id", "--timestamp-column", "ts", "--estimators",
        "lgbm", "--termination-log", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 0, err
    folder = pathlib.Path(contract.version_dir(str(tmp_path / "store"), "demand", 1))
    payload = (folder / "loss-model.joblib").read_bytes()
    meta = json.loads((folder / contract.METADATA_FILE).read_text())
    assert meta["files"]["loss-model.joblib"] == hashlib.sha256(payload).hexdigest()
    entry = json.loads((folder / contract.PROFILE_FILE).read_text())["performance"]["lossModel"]
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest() and entry["rows"] == 300
    model = load(entry)  # the check reads it through the profile, hash checked
    assert model.features == ["x1", "x2", "x3", "color"]


@pytest.mark.slow
def test_the_versions_reference_is_its_newest_data(
    stale: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    """The profile stored with a version (its own traffic's reference once it serves) is
    built from the newest rows it was given, the holdout, not the whole training window,
    which still holds traffic from before the change."""
    store = _scenario(stale, tmp_path, concept="b", rows=800)
    cfg = _config(tmp_path, store, stale, trainingData="recent")
    code, result, err = synth.run_cli(
        "retrain", "--config", cfg, "--version", "2", "--termination-log", str(tmp_path / "t")
    )
    assert code == 0, err
    holdout = result["rows"]["holdout"]
    assert holdout >= 200
    folder = pathlib.Path(contract.version_dir(store, "churn", 2))
    profile = json.loads((folder / contract.PROFILE_FILE).read_text())
    assert profile["rows"] == holdout
    assert profile["source"] == f"the newest {holdout} rows of the training data"


# -- the champion's hash, the flags' spec, the reasons ---------------------------------


def test_a_champion_with_another_hash_fails_and_publishes_nothing(
    recent_store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator recorded another sha256 for the champion than its artifact has: the
    retrain stops with ChampionHashMismatch, names both hashes, and writes no version 2."""
    registry = Registry(recent_store, "churn")
    actual = registry.publish(1, {"w": 1}, {})["sha256"]
    expected = "0123456789abcdef" * 4
    doc = synth.job_config(recent_store, trainingData="recent")
    doc["spec"]["data"] = {
        "reference": {"uri": synth.UNUSED_REFERENCE},
        "labels": {"uri": str(tmp_path / "labels.parquet")},
    }
    cfg = synth.write_config(tmp_path / "c.json", doc)
    term = tmp_path / "term"
    code, result = _run_inproc(
        capsys, "--config", cfg, "--version", "2", "--champion-version", "1",
        "--champion-sha256", expected, "--termination-log", str(term),
    )  # fmt: skip
    assert code == 1 and result["ok"] is False
    assert result["reason"] == reasons.CHAMPION_HASH_MISMATCH == "ChampionHashMismatch"
    assert f"expected {expected}, artifact {actual}" in result["message"]
    assert result["message"].startswith("champion v1: sha256 mismatch")
    assert json.loads(term.read_text())["reason"] == "ChampionHashMismatch"
    versions = pathlib.Path(contract.versions_dir(recent_store, "churn"))
    assert sorted(p.name for p in versions.iterdir()) == ["1"]  # no version 2, no temp folder
    assert registry.versions() == [1]
    assert registry.load(1, expected_sha256=actual).model == {"w": 1}


def test_the_flags_are_a_spec_parsed_as_the_config_is() -> None:
    args = cli.build_parser(["retrain"]).parse_args(
        ["retrain", "--version", "1", "--train", "t.csv", "--target", "y", "--task",
         "regression", "--time-budget", "5", "--store", "/s", "--model", "demand",
         "--estimators", "lgbm, rf", "--id-column", "id", "--holdout-fraction", "0.3"]
    )  # fmt: skip
    mapping = planning.spec_from_flags(args)
    assert mapping == {
        "model": {"name": "demand", "target": "y", "task": "regression", "idColumn": "id"},
        "data": {"reference": {"uri": "t.csv"}},
        "store": {"uri": "/s"},
        "retrain": {
            "holdoutFraction": 0.3,
            "automl": {"timeBudgetSeconds": 5, "estimators": ["lgbm", "rf"]},
            "trainingData": "reference",
            "minLabeledRows": 1,
        },
    }
    plan = planning.plan_from_flags(args)
    spec = contract.parse_spec(mapping)
    assert plan.automl.time_budget == 5.0 and plan.automl.estimators == ("lgbm", "rf")
    assert plan.automl.metric == spec.retrain.automl.metric == "auto"  # the spec's default
    assert plan.min_improvement == spec.retrain.min_improvement
    assert plan.train_uri == "t.csv" and plan.reference_uri is None
    assert plan.min_labeled_rows == 1 and plan.reuse_published is False


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        (
            "--model",
            "Demand_Model",
            "--model: must be a DNS-1123 label (lowercase letters, digits and '-'), "
            "got 'Demand_Model'",
        ),
        ("--time-budget", "2.5", "--time-budget: must be an integer, got 2.5"),
        ("--task", None, "without --config, retrain needs --task"),
        ("--holdout-fraction", "1.5", "--holdout-fraction: must be < 1.0, got 1.5"),
        ("--estimators", "lgbm,forest", "The 'estimators' parameter must hold names from"),
    ],
)
def test_a_bad_flag_is_a_config_error_naming_the_flag(
    flag: str,
    value: str | None,
    expected: str,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = {
        "--train": "t.csv", "--target": "y", "--task": "regression", "--time-budget": "2",
        "--store": str(tmp_path / "store"), "--model": "demand", "--version": "1",
        "--termination-log": str(tmp_path / "t"),
    }  # fmt: skip
    if value is None:
        del argv[flag]
    else:
        argv[flag] = value
    code, result = _run_inproc(capsys, *[x for kv in argv.items() for x in kv])
    assert code == 1 and result["reason"] == "ConfigError"
    assert expected in result["message"]
    assert not (tmp_path / "store").exists()


def test_a_model_pickled_under_its_old_module_still_loads() -> None:
    """Versions published before FittedModel had its own module name it
    modelwatch_monitor.train.automl.FittedModel in their pickle."""
    import pickle

    from modelwatch_monitor.store.feature_schema import Feature
    from modelwatch_monitor.train.fitted import FittedModel

    model = FittedModel(
        schema=[Feature("x", "numeric")],
        task="regression",
        transformer=None,
        estimator=None,
        label_transformer=None,
    )
    new = pickle.dumps(model)
    assert b"modelwatch_monitor.train.fitted" in new
    old = new.replace(b"modelwatch_monitor.train.fitted", b"modelwatch_monitor.train.automl")
    loaded = pickle.loads(old)
    assert type(loaded) is FittedModel and loaded.feature_names == ["x"]


def test_every_retrain_reason_is_defined_once() -> None:
    """Each RetrainError names a constant of train/reasons.py, and no other module of the
    retrain spells a reason out."""
    import ast

    folder = pathlib.Path(reasons.__file__).parent
    spelled = set(reasons.FAILURE_REASONS)
    raised: set[str] = set()
    for path in sorted(folder.glob("*.py")):
        if path.name == "reasons.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in spelled:
                pytest.fail(f"{path.name}:{node.lineno} spells out reason {node.value!r}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "RetrainError"
            ):
                arg = node.args[0]
                assert isinstance(arg, ast.Name), f"{path.name}:{node.lineno}"
                raised.add(getattr(reasons, arg.id))
    assert raised | {reasons.TRAINING_FAILED} == reasons.FAILURE_REASONS
