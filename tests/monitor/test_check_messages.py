"""The check's messages for the likely mistakes name the cause (README: Troubleshooting)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.cli import main
from modelwatch_monitor.store.dataio import DataError, local_path, require_store

N = 400


def _frame(n: int, *, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    return {
        "x0": x0,
        "x1": x1,
        "request_id": [f"r{i}" for i in range(n)],
        "y": (x0 + x1 > 0).astype(np.int64),
    }


def _write(path: pathlib.Path, cols: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return str(path)


def _check(tmp: pathlib.Path, labels: dict[str, Any], capsys: Any, **flags: str) -> Any:
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    cur = _frame(N, seed=2)
    cur["prediction"] = cur.pop("y")
    argv = [
        "check", "--reference", _write(tmp / "ref.parquet", ref),
        "--current", _write(tmp / "cur.parquet", cur), "--output", str(tmp / "report"),
        "--labels", _write(tmp / "labels.parquet", labels), "--id-column", "request_id",
        "--task", "classification", "--result-path", str(tmp / "result.json"),
    ]  # fmt: skip
    for flag, value in {"target": "y", **flags}.items():
        argv += [f"--{flag}", value]
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_label_join_without_matches_names_both_ids(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _frame(N, seed=2)
    labels = {"request_id": [f"req-{i}" for i in truth["request_id"]], "y": truth["y"]}
    code, result = _check(tmp_path, labels, capsys)
    assert code == 0 and result["ok"], result
    reason = result["metric"]["undefinedReason"]
    assert reason.startswith(f"the labels join matched 0 of {N} predictions")
    assert "(e.g. 'r0')" in reason and "(e.g. 'req-r0')" in reason
    assert "spec.data.labels.idColumn" in reason
    assert reason in result["message"]


def test_a_partial_label_join_says_how_many_matched(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _frame(N, seed=2)
    labels = {"request_id": truth["request_id"][:20], "y": truth["y"][:20]}
    code, result = _check(tmp_path, labels, capsys)
    assert code == 0, result
    assert result["metric"]["undefinedReason"] == (
        "only 20 labelled rows in this window; need at least 50 "
        f"(the labels join matched 20 of {N} predictions)"
    )


def test_a_target_missing_from_the_labels_is_named(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _frame(N, seed=2)
    labels = {"request_id": truth["request_id"], "y": truth["y"]}
    code, result = _check(tmp_path, labels, capsys, target="label")
    assert code == 1 and result["reason"] == "DataError"
    assert result["message"].startswith(
        "the target column 'label' (spec.model.target) is not in the labels"
    )
    assert result["message"].endswith("their columns: 'request_id', 'y'")


def test_a_stored_profile_made_with_another_target_is_not_reused(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    cur = _frame(N, seed=2)
    cur["prediction"] = cur.pop("y")
    # Inside the default window (7d) of spec.data.current.
    cur["timestamp"] = pa.array(np.full(N, np.datetime64("now", "us")), pa.timestamp("us", "UTC"))
    spec: dict[str, Any] = {
        "model": {"name": "m", "task": "classification", "target": "label"},
        "data": {
            "reference": {"uri": _write(tmp_path / "ref.parquet", ref)},
            "current": {"uri": _write(tmp_path / "cur.parquet", cur)},
        },
        "store": {"uri": str(store)},
    }
    config = tmp_path / "config.json"

    def check() -> Any:
        doc = contract.build_job_config(name="m", namespace="default", spec=spec)
        config.write_text(json.dumps(doc))
        main(["check", "--config", str(config), "--result-path", str(tmp_path / "r")])
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    wrong = check()  # "y" is taken for a feature, and the current data has no "y"
    assert not wrong["ok"], wrong
    assert wrong["message"].startswith("missing feature column 'y' in ")
    assert "set spec.model.target (now 'label')" in wrong["message"]
    assert pathlib.Path(contract.reference_profile_path(str(store), "m")).exists()
    spec["model"]["target"] = "y"  # the fix must not be undone by the stored profile
    fixed = check()
    assert fixed["ok"], fixed
    assert fixed["nFeatures"] == 2


def test_a_store_that_is_not_there_is_not_mounted(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError) as err:
        require_store(f"file://{blocker}/store")
    message = str(err.value)
    assert message.startswith(f"the store 'file://{blocker}/store' is not mounted: ")
    assert "spec.store.volume.claimName" in message
    fresh = tmp_path / "fresh" / "store"
    require_store(str(fresh))  # a fresh volume: created
    assert fresh.is_dir()
    require_store("s3://bucket/prefix")  # remote stores are not checked here
    assert local_path("file:///store") == "/store" and local_path("s3://b/p") is None


def test_a_retrain_into_a_store_that_is_not_there_says_so(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    train = _frame(N, seed=1)
    train.pop("request_id")
    argv = [
        "retrain", "--train", _write(tmp_path / "train.parquet", train), "--target", "y",
        "--task", "classification", "--time-budget", "1", "--store", f"file://{blocker}/store",
        "--model", "m", "--version", "1", "--termination-log", str(tmp_path / "t"),
    ]  # fmt: skip
    assert main(argv) == 1
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["reason"] == "StoreError"
    assert result["message"].startswith(f"the store 'file://{blocker}/store' is not mounted")
