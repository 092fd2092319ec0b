"""``modelwatch check`` end to end: user mode, config mode, and bad data."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.check import run as checking
from modelwatch_monitor.cli import main

N = 3000


def _frame(n: int, *, seed: int, shift: float = 0.0, start_id: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(shift, 1.0, n)
    x1 = rng.normal(size=n)
    return {
        "x0": x0,
        "x1": x1,
        "x2": rng.exponential(2.0, n),
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "request_id": [f"r{i}" for i in range(start_id, start_id + n)],
        "y": (x0 + x1 > 0).astype(np.int64),
    }


def _write(path: pathlib.Path, cols: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return str(path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


@pytest.fixture
def data(tmp_path: pathlib.Path) -> dict[str, str]:
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    cur = _frame(N, seed=2, shift=0.5)
    cur["prediction"] = (cur["x1"] > 0).astype(np.int64)  # a worse model on current data
    labels = {"request_id": cur["request_id"][::2], "y": cur.pop("y")[::2]}
    return {
        "ref": _write(tmp_path / "ref.parquet", ref),
        "cur": _write(tmp_path / "cur.parquet", cur),
        "labels": _write(tmp_path / "labels.parquet", labels),
        "out": str(tmp_path / "report"),
        "result": str(tmp_path / "result.json"),
    }


def test_user_mode_finds_the_shifted_feature(
    data: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _run(
        [
            "check", "--reference", data["ref"], "--current", data["cur"],
            "--output", data["out"], "--target", "y", "--id-column", "request_id",
            "--prediction-column", "prediction", "--labels", data["labels"],
            "--task", "classification", "--baseline", "0.9", "--result-path", data["result"],
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert result["ok"] and result["kind"] == "check"
    assert result["nDrifted"] == 1 and result["nFeatures"] == 4
    assert result["topFeatures"][0]["name"] == "x0"
    assert not result["datasetDrift"]
    assert result["rows"] == {"reference": N, "current": N, "window": N, "labeled": N // 2}
    metric = result["metric"]
    assert metric["name"] == "accuracy" and metric["baseline"] == 0.9
    assert 0.6 < metric["value"] < 0.85 and metric["degraded"]
    assert metric["relativeChange"] == pytest.approx((metric["value"] - 0.9) / 0.9)
    assert pathlib.Path(data["result"]).read_text() == json.dumps(
        result, separators=(",", ":"), sort_keys=True
    )
    assert len(pathlib.Path(data["result"]).read_bytes()) <= contract.MAX_RESULT_BYTES

    report = json.loads((pathlib.Path(data["out"]) / "report.json").read_text())
    assert report["dataset_drift"] is False
    assert report["drift_share"] == pytest.approx(0.25)
    feats = {f["name"]: f for f in report["features"]}
    assert set(feats) == {"x0", "x1", "x2", "color"}
    assert {"name", "type", "test", "statistic", "p_value", "drift"} <= set(feats["x0"])
    assert feats["x0"]["drift"] and feats["x0"]["test"] == "ks"
    assert feats["color"]["test"] == "chi2" and feats["color"]["type"] == "categorical"
    assert report["performance"]["metrics"]["f1"]["value"] is not None
    assert report["performance"]["metrics"]["accuracy"] == metric
    assert all({"kind", "column", "message"} <= set(q) for q in report["quality"])
    page = (pathlib.Path(data["out"]) / "report.html").read_text()
    assert page.count("<svg") == 1 and "x0" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_profile_and_raw_reference_agree(
    data: dict[str, str], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = str(tmp_path / "ref-profile.json")
    assert main(["profile", data["ref"], "--output", profile, "--target", "y"]) == 0
    capsys.readouterr()
    results = []
    for i, ref in enumerate((data["ref"], profile)):
        code, result = _run(
            [
                "check", "--reference", ref, "--current", data["cur"],
                "--output", f"{data['out']}{i}", "--target", "y", "--result-path", data["result"],
            ],
            capsys,
        )  # fmt: skip
        assert code == 0
        results.append(result)
    assert results[0]["topFeatures"] == results[1]["topFeatures"]


def test_csv_folder_input(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    for i in range(2):
        d = tmp_path / "cur"
        d.mkdir(exist_ok=True)
        pd.DataFrame(_frame(500, seed=10 + i)).drop(columns=["request_id", "y"]).to_csv(
            d / f"part{i}.csv", index=False
        )
    pd.DataFrame(_frame(1000, seed=3)).drop(columns=["request_id", "y"]).to_csv(
        tmp_path / "ref.csv", index=False
    )
    code, result = _run(
        [
            "check", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur"),
            "--output", str(tmp_path / "out"), "--result-path", str(tmp_path / "r"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0 and result["rows"]["current"] == 1000 and result["nDrifted"] == 0


def _config(store: pathlib.Path, **spec: Any) -> str:
    doc = contract.build_job_config(
        name="shop",
        namespace="default",
        spec={
            "model": {
                "name": "churn",
                "task": "classification",
                "target": "y",
                "idColumn": "request_id",
            },
            "store": {"uri": str(store)},
            **spec,
        },
    )
    path = store.parent / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _log(store: pathlib.Path, day: dt.datetime, cols: dict[str, Any], name: str) -> None:
    n = len(cols["x0"])
    cols = dict(cols)
    cols.pop("y")
    cols["prediction"] = (cols["x0"] + cols["x1"] > 0).astype(np.int64)
    cols["timestamp"] = pa.array([day.replace(tzinfo=None)] * n, pa.timestamp("us"))
    part = contract.predictions_partition(str(store), "churn", day.strftime("%Y-%m-%d"))
    _write(pathlib.Path(part) / f"{name}.parquet", cols)


def test_config_mode_store_layout_window_labels_and_baseline(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    ref_uri = _write(tmp_path / "data" / "train.parquet", ref)
    now = dt.datetime.now(dt.UTC)
    recent = _frame(1000, seed=5, start_id=0)
    old = _frame(1000, seed=6, shift=2.0, start_id=5000)  # outside the 7-day window
    _log(store, now - dt.timedelta(days=1), recent, "a")
    _log(store, now - dt.timedelta(days=30), old, "b")
    labels = {"request_id": recent["request_id"][:400], "y": recent["y"][:400]}
    labels_uri = _write(tmp_path / "labels" / "l.parquet", labels)
    meta = pathlib.Path(contract.version_dir(str(store), "churn", 3)) / contract.METADATA_FILE
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"metrics": {"challenger": {"accuracy": 0.97}}}))
    config = _config(
        store,
        data={
            "reference": {"uri": ref_uri},
            "current": {"window": "7d"},
            "labels": {"uri": labels_uri, "idColumn": "request_id"},
        },
        drift={"correction": "bh"},
        performance={"maxDegradation": 0.1, "minLabeledRows": 50},
    )
    code, result = _run(["check", "--config", config, "--result-path", str(tmp_path / "r")], capsys)
    assert code == 0, result
    assert result["rows"] == {"reference": N, "current": 1000, "window": 1000, "labeled": 400}
    assert result["nFeatures"] == 4
    assert result["metric"]["baseline"] == 0.97
    assert result["metric"]["value"] == 1.0 and not result["metric"]["degraded"]
    report_dir = pathlib.Path(contract.report_dir(str(store), "churn", result["reportId"]))
    assert result["reportUri"] == str(report_dir)
    assert (report_dir / "report.json").exists() and (report_dir / "report.html").exists()
    profile = pathlib.Path(contract.reference_profile_path(str(store), "churn"))
    assert profile.exists()
    report = json.loads((report_dir / "report.json").read_text())
    assert report["settings"]["correction"] == "fdr_bh"  # "bh" is read as the CRD's spelling
    # The 30-day-old partition (x0 shifted by 2 sigma) is outside the window.
    x0 = next(f for f in report["features"] if f["name"] == "x0")
    assert not x0["drift"] and x0["statistic"] < 0.1
    assert not any(q["column"] in ("prediction", "timestamp") for q in report["quality"])

    # The second check reuses the stored profile and never reads the reference again.
    pathlib.Path(ref_uri).unlink()
    reports = pathlib.Path(contract.reports_dir(str(store), "churn"))
    for d in reports.iterdir():
        d.rename(reports / f"old-{d.name}")
    code, again = _run(["check", "--config", config, "--result-path", str(tmp_path / "r")], capsys)
    assert code == 0, again
    assert again["topFeatures"] == result["topFeatures"]


def test_baseline_is_the_serving_versions_not_the_newest(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newer version that was never promoted does not become the baseline: the
    ``model_version`` the server logged picks the version whose holdout score counts."""
    store = tmp_path / "store"
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    ref_uri = _write(tmp_path / "train.parquet", ref)
    recent = _frame(1000, seed=5, start_id=0)
    labels = {"request_id": recent["request_id"], "y": recent["y"]}
    labels_uri = _write(tmp_path / "labels.parquet", labels)
    recent[contract.LOG_MODEL_VERSION] = np.full(1000, 3, dtype=np.int64)
    _log(store, dt.datetime.now(dt.UTC), recent, "a")
    for version, accuracy in ((3, 0.8), (4, 0.99)):  # 4 lost its promotion
        meta = pathlib.Path(contract.version_dir(str(store), "churn", version))
        meta.mkdir(parents=True)
        (meta / contract.METADATA_FILE).write_text(
            json.dumps({"metrics": {"challenger": {"accuracy": accuracy}}})
        )
    config = _config(
        store,
        data={"reference": {"uri": ref_uri}, "labels": {"uri": labels_uri}},
        performance={"maxDegradation": 0.1, "minLabeledRows": 50},
    )
    code, result = _run(["check", "--config", config, "--result-path", str(tmp_path / "r")], capsys)
    assert code == 0, result
    assert result["metric"]["baseline"] == 0.8


def test_config_mode_without_window_takes_the_crds_default(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config without spec.data.current.window gets the CRD's default (7d), as the API
    server would have filled it in: a 30-day-old shift is outside the window."""
    store = tmp_path / "store"
    ref = _frame(N, seed=1)
    ref_uri = _write(tmp_path / "train.parquet", ref)
    now = dt.datetime.now(dt.UTC)
    _log(store, now - dt.timedelta(days=30), _frame(2000, seed=6, shift=2.0), "b")
    config = _config(store, data={"reference": {"uri": ref_uri}})
    code, result = _run(["check", "--config", config, "--result-path", str(tmp_path / "r")], capsys)
    assert code == 0, result
    assert result["ok"] is True and result["reason"] == "NoData"
    assert result["rows"] == {"reference": N, "current": 0, "window": 0, "needed": 100}
    assert contract.CurrentSpec().window == "7d"


def test_no_predictions_logged_yet_is_no_data(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A monitor created before its model got traffic: the store has no prediction logs.

    Not a failure: the check ran and found nothing to judge (exit 0, ``ok``, reason
    ``NoData``), with the counts and no report."""
    store = tmp_path / "store"
    ref = _frame(1000, seed=1)
    config = _config(store, data={"reference": {"uri": _write(tmp_path / "ref.parquet", ref)}})
    result_path = tmp_path / "r"
    code, result = _run(
        ["check", "--config", config, "--result-path", str(result_path), "--serving-version", "3"],
        capsys,
    )
    assert code == 0
    assert result == {
        "schema": contract.SCHEMA_VERSION,
        "kind": "check",
        "ok": True,
        "reason": "NoData",
        "message": result["message"],
        "servingVersion": 3,
        "rows": {"reference": 1000, "current": 0, "window": 0, "needed": 100},
    }
    assert "no predictions logged yet" in result["message"]
    assert contract.predictions_dir(str(store), "churn") in result["message"]
    assert json.loads(result_path.read_text()) == result
    assert not (store / "churn" / "reports").exists()


def _bad_case(case: str, tmp: pathlib.Path, ref: str) -> tuple[list[str], str]:
    cur = _frame(500, seed=4)
    cur.pop("y")
    extra: list[str] = []
    if case == "missing column":
        cur.pop("x1")
        needle = "'x1'"
    elif case == "all-NaN column":
        cur["x2"] = np.full(500, np.nan)
        needle = "'x2'"
    elif case == "wrong dtype":
        cur["x1"] = np.array([f"v{v:.2f}" for v in cur["x1"]])
        needle = "'x1'"
    elif case == "file not found":
        return ["--current", str(tmp / "nope.parquet")], "not found"
    else:  # corrupt parquet
        path = tmp / "corrupt.parquet"
        path.write_bytes(b"PAR1" + b"\x00garbage" * 100)
        return ["--current", str(path)], "corrupt.parquet"
    return ["--current", _write(tmp / "cur.parquet", cur), *extra], needle


@pytest.mark.parametrize(
    "case",
    [
        "missing column",
        "all-NaN column",
        "wrong dtype",
        "file not found",
        "corrupt parquet",
    ],
)
def test_bad_data_fails_cleanly(
    case: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _frame(1000, seed=1)
    ref.pop("y")
    ref.pop("request_id")
    ref_uri = _write(tmp_path / "ref.parquet", ref)
    args, needle = _bad_case(case, tmp_path, ref_uri)
    out = tmp_path / "reports" / "r1"
    result_path = tmp_path / "result.json"
    code, result = _run(
        [
            "check", "--reference", ref_uri, *args, "--output", str(out),
            "--result-path", str(result_path), "--id-column", "request_id",
        ],
        capsys,
    )  # fmt: skip
    assert code != 0
    assert result["ok"] is False and result["reason"] == "DataError"
    assert needle in result["message"]
    assert json.loads(result_path.read_text())["reason"] == "DataError"
    assert not out.exists()
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())


def test_an_empty_window_is_no_data_not_a_failure(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row is older than the window: exit 0, ``ok`` with reason NoData, no report."""
    ref = _frame(1000, seed=1)
    cur = _frame(500, seed=4)
    cur["timestamp"] = pa.array([dt.datetime(2020, 1, 1)] * 500, pa.timestamp("us"))
    out = tmp_path / "reports" / "r1"
    result_path = tmp_path / "result.json"
    code, result = _run(
        [
            "check", "--reference", _write(tmp_path / "ref.parquet", ref),
            "--current", _write(tmp_path / "cur.parquet", cur), "--window", "24h",
            "--timestamp-column", "timestamp", "--output", str(out),
            "--result-path", str(result_path),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert result["ok"] is True and result["reason"] == "NoData"
    assert "has no rows in the window '24h'" in result["message"]
    assert result["servingVersion"] is None
    assert result["rows"] == {"reference": 1000, "current": 0, "window": 0, "needed": 100}
    assert json.loads(result_path.read_text()) == result
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--p-value-threshold", "nan"], "--p-value-threshold: must be a finite number, got nan"),
        (["--numeric-test", "chi2"], "--numeric-test: must be one of ks, psi"),
        (["--window", "2w"], "--window: must be a number followed by s, m, h or d"),
        (["--min-rows", "0"], "--min-rows: must be >= 1, got 0"),
        (["--labels", "l.parquet"], "--id-column is required when --labels is set"),
        (
            ["--metric", "rmse", "--task", "classification"],
            "--metric 'rmse' does not suit --task 'classification'",
        ),
    ],
)
def test_flags_take_what_their_spec_fields_take(
    flags: list[str],
    message: str,
    data: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The flags make a spec that the contract's parser reads, as it reads a job config;
    its errors name the flags."""
    code, result = _run(
        [
            "check", "--reference", data["ref"], "--current", data["cur"], "--target", "y",
            "--output", data["out"], "--result-path", data["result"], *flags,
        ],
        capsys,
    )  # fmt: skip
    assert code == 1 and result["reason"] == "ConfigError"
    assert message in result["message"]
    assert not pathlib.Path(data["out"]).exists()


def test_flags_build_the_spec_the_settings_come_from(data: dict[str, str]) -> None:
    parser = argparse.ArgumentParser()
    checking.add_arguments(parser)
    args = parser.parse_args(
        ["--reference", data["ref"], "--current", data["cur"], "--output", data["out"],
         "--labels", data["labels"], "--id-column", "request_id", "--min-rows", "7",
         "--correction", "bh", "--metric", "rmse"]
    )  # fmt: skip
    spec = checking.spec_from_args(args)
    assert spec["data"] == {
        "reference": {"uri": data["ref"]},
        "current": {"uri": data["cur"], "minRows": 7},
        "labels": {"uri": data["labels"]},
    }
    assert spec["drift"]["correction"] == "bh"
    assert spec["model"]["task"] == "regression"  # the task --metric suits, for the parser
    settings = checking.settings_from_args(args)
    assert settings.drift.correction == contract.CORRECTION_ALIASES["bh"]
    assert settings.min_rows == 7 and settings.metric == "rmse"
    assert settings.store is None and settings.model == "" and settings.output == data["out"]
    assert settings.roles.target is None and settings.window is None and settings.task is None
    assert settings.roles.prediction == contract.ModelSpec(name="m", target="y").prediction_column


def test_bad_config_is_a_config_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"schema": 99, "spec": {}}))
    code, result = _run(
        ["check", "--config", str(path), "--result-path", str(tmp_path / "r")], capsys
    )
    assert code == 1 and result["reason"] == "ConfigError" and "schema" in result["message"]
    code, result = _run(["check", "--reference", "x.parquet"], capsys)
    assert code == 1 and "--current" in result["message"]


def test_console_entry_exit_code(data: dict[str, str], tmp_path: pathlib.Path) -> None:
    """The real process: exit 0 with drift found, non-zero when it cannot run."""
    base = [sys.executable, "-m", "modelwatch_monitor", "check", "--reference", data["ref"]]
    base += ["--target", "y"]
    ok = subprocess.run(
        [*base, "--current", data["cur"], "--output", str(tmp_path / "o1"),
         "--result-path", str(tmp_path / "r")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["nDrifted"] >= 1
    bad = subprocess.run(
        [*base, "--current", str(tmp_path / "missing.parquet"), "--output", str(tmp_path / "o2"),
         "--result-path", str(tmp_path / "r")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "file not found" in json.loads(bad.stdout.strip().splitlines()[-1])["message"]


def test_sketch_mode_agrees_with_exact_mode(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _frame(40_000, seed=1)
    cur = _frame(40_000, seed=2, shift=0.1)
    for c in (ref, cur):
        c.pop("request_id")
    ref_uri = _write(tmp_path / "ref.parquet", ref)
    cur_uri = _write(tmp_path / "cur.parquet", cur)
    verdicts = {}
    for mode in ("exact", "sketch"):
        code, _ = _run(
            [
                "check", "--reference", ref_uri, "--current", cur_uri, "--target", "y",
                "--output", str(tmp_path / mode), "--mode", mode,
                "--result-path", str(tmp_path / "r"),
            ],
            capsys,
        )  # fmt: skip
        assert code == 0
        report = json.loads((tmp_path / mode / "report.json").read_text())
        assert report["mode"] == mode
        verdicts[mode] = {f["name"]: f for f in report["features"]}
    assert {n for n, f in verdicts["exact"].items() if f["drift"]} == {"x0"}
    assert {n for n, f in verdicts["sketch"].items() if f["drift"]} == {"x0"}
    for name in ("x0", "x1", "x2"):
        exact, sketch = verdicts["exact"][name], verdicts["sketch"][name]
        assert abs(exact["statistic"] - sketch["statistic"]) <= sketch["error_bound"] + 2e-4
        assert sketch["error_bound"] > 0


def test_integer_label_ids_and_an_unknown_metric(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _frame(1000, seed=1)
    ref.pop("request_id")
    cur = _frame(1000, seed=2)
    cur["request_id"] = [str(i) for i in range(1000)]
    cur["prediction"] = cur["y"].copy()
    labels = {"id": np.arange(0, 1000, 4), "y": cur.pop("y")[::4]}
    args = [
        "check", "--reference", _write(tmp_path / "ref.parquet", ref),
        "--current", _write(tmp_path / "cur.parquet", cur),
        "--labels", _write(tmp_path / "labels.parquet", labels), "--labels-id-column", "id",
        "--id-column", "request_id", "--target", "y", "--result-path", str(tmp_path / "r"),
    ]  # fmt: skip
    code, result = _run([*args, "--output", str(tmp_path / "o1")], capsys)
    assert code == 0 and result["rows"]["labeled"] == 250
    assert result["metric"]["value"] == 1.0 and result["metric"]["baseline"] is None
    code, result = _run([*args, "--output", str(tmp_path / "o2"), "--metric", "rmse"], capsys)
    assert code == 1 and result["reason"] == "ConfigError" and "'metric'" in result["message"]
    assert not (tmp_path / "o2").exists()
