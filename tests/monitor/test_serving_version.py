"""A check judges the version that serves: older versions' traffic is history, not a verdict."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.cli import main

N = 2000
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _frame(n: int, *, seed: int, shift: float = 0.0, start_id: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(shift, 1.0, n)
    x1 = rng.normal(shift, 1.0, n)
    return {
        "x0": x0,
        "x1": x1,
        "x2": rng.exponential(2.0, n),
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "request_id": [f"r{i}" for i in range(start_id, start_id + n)],
    }


def _log(
    store: pathlib.Path, cols: dict[str, Any], name: str, *, at: dt.datetime, version: int | None
) -> None:
    """Write ``cols`` as the model server logs them; ``version=None`` leaves out the column."""
    n = len(cols["x0"])
    cols = dict(cols)
    cols["prediction"] = (cols["x0"] > 0).astype(np.int64)
    cols["timestamp"] = pa.array([at] * n, pa.timestamp("us", tz="UTC"))
    if version is not None:
        cols[contract.LOG_MODEL_VERSION] = np.full(n, version, dtype=np.int64)
    part = pathlib.Path(
        contract.predictions_partition(str(store), "churn", at.strftime("%Y-%m-%d"))
    )
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), part / f"{name}.parquet")


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    ref = _frame(N, seed=1)
    ref.pop("request_id")
    pq.write_table(pa.table(ref), tmp_path / "ref.parquet")
    return tmp_path / "store"


def _config(store: pathlib.Path, **current: Any) -> str:
    doc = contract.build_job_config(
        name="churn",
        namespace="default",
        spec={
            "model": {
                "name": "churn",
                "task": "classification",
                "target": "y",
                "idColumn": "request_id",
            },
            "data": {
                "reference": {"uri": str(store.parent / "ref.parquet")},
                "current": {"window": "1h", **current},
            },
            "store": {"uri": str(store)},
        },
    )
    path = store.parent / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _check(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str], *args: str, **current: Any
) -> tuple[int, dict[str, Any]]:
    argv = [
        "check",
        "--config",
        _config(store, **current),
        "--result-path",
        str(store.parent / "r"),
    ]
    code = main([*argv, *args])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _reports(store: pathlib.Path) -> list[pathlib.Path]:
    folder = pathlib.Path(contract.reports_dir(str(store), "churn"))
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_window_of_v1_and_v2_traffic_is_judged_for_v2_only(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """v1 served shifted traffic, v2 serves in-distribution traffic: v2 is healthy."""
    _log(store, _frame(4000, seed=2, shift=1.0), "v1", at=NOW - dt.timedelta(minutes=20), version=1)
    _log(store, _frame(600, seed=3, start_id=10_000), "v2", at=NOW, version=2)

    code, result = _check(store, capsys, "--serving-version", "2")
    assert code == 0, result
    assert result["ok"] and "reason" not in result
    assert result["servingVersion"] == 2
    assert result["nDrifted"] == 0 and result["datasetDrift"] is False
    assert result["rows"] == {"reference": N, "current": 600, "window": 4600, "labeled": 0}

    # The report keeps what v1 served, as history.
    (report_dir,) = _reports(store)
    report = json.loads((report_dir / "report.json").read_text())
    assert report["serving"]["version"] == 2 and report["serving"]["basis"] == "model_version"
    assert report["serving"]["byVersion"] == [
        {"version": 1, "rows": 4000, "judged": False},
        {"version": 2, "rows": 600, "judged": True},
    ]
    assert report["serving"]["olderRows"] == 4000
    page = (report_dir / "report.html").read_text()
    assert "judges version 2" in page and "history only" in page

    # The same window judged for v1 (what the check did before) drifts: the filter matters.
    code, v1 = _check(store, capsys, "--serving-version", "1")
    assert code == 0 and v1["servingVersion"] == 1
    assert v1["datasetDrift"] is True and {"x0", "x1"} <= {f["name"] for f in v1["topFeatures"]}


def test_without_serving_version_the_newest_version_in_the_window_is_judged(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log(store, _frame(4000, seed=2, shift=1.0), "v1", at=NOW - dt.timedelta(minutes=20), version=1)
    _log(store, _frame(600, seed=3, start_id=10_000), "v2", at=NOW, version=2)
    code, result = _check(store, capsys)
    assert code == 0 and result["servingVersion"] == 2 and result["nDrifted"] == 0


def test_only_older_traffic_while_v2_serves_is_awaiting_traffic(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log(store, _frame(4800, seed=2, shift=1.0), "v1", at=NOW, version=1)

    code, result = _check(store, capsys, "--serving-version", "2")
    assert code == 0, result  # not a failure: the check ran and has no verdict yet
    assert result["ok"] is True and result["reason"] == contract.REASON_AWAITING_TRAFFIC
    assert result["servingVersion"] == 2
    assert result["rows"] == {"reference": N, "current": 0, "window": 4800, "needed": 100}
    assert result["message"] == (
        "version 2 has served 0 of the 100 rows a verdict needs (spec.data.current.minRows); "
        "4,800 rows in the window were served by other versions (1) and do not count"
    )
    # No verdict: nothing the retrain policy could count as a violation, and no report.
    assert "datasetDrift" not in result and "metric" not in result
    assert _reports(store) == []


def test_too_few_rows_of_the_serving_version_await_more_traffic(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log(store, _frame(4800, seed=2, shift=1.0), "v1", at=NOW - dt.timedelta(minutes=5), version=1)
    _log(store, _frame(12, seed=3, start_id=10_000), "v2", at=NOW, version=2)

    code, result = _check(store, capsys, "--serving-version", "2", minRows=200)
    assert code == 0 and result["reason"] == contract.REASON_AWAITING_TRAFFIC
    assert result["message"].startswith("version 2 has served 12 of the 200 rows a verdict needs")
    assert result["rows"]["current"] == 12 and result["rows"]["needed"] == 200

    # --min-rows overrides the spec; with enough rows there is a verdict on v2's 12 rows.
    code, result = _check(store, capsys, "--serving-version", "2", "--min-rows", "10")
    assert code == 0 and "reason" not in result and result["rows"]["current"] == 12


def test_data_without_model_version_uses_the_serving_since_time(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = NOW - dt.timedelta(minutes=10)
    _log(
        store,
        _frame(4000, seed=2, shift=1.0),
        "before",
        at=since - dt.timedelta(minutes=5),
        version=None,
    )
    _log(store, _frame(600, seed=3, start_id=10_000), "after", at=NOW, version=None)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")

    code, result = _check(store, capsys, "--serving-version", "2", "--serving-since", stamp)
    assert code == 0, result
    assert result["nDrifted"] == 0 and result["rows"]["current"] == 600
    assert result["rows"]["window"] == 4600
    (report_dir,) = _reports(store)
    serving = json.loads((report_dir / "report.json").read_text())["serving"]
    assert serving["basis"] == "servingSince" and serving["olderRows"] == 4000

    # Serving since after every row: nothing of the window counts yet.
    later = (NOW + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, result = _check(store, capsys, "--serving-version", "2", "--serving-since", later)
    assert code == 0 and result["reason"] == contract.REASON_AWAITING_TRAFFIC
    assert "since it began serving at" in result["message"]
    assert "4,600 rows in the window came before and do not count" in result["message"]


@pytest.mark.parametrize(
    ("args", "current", "needle"),
    [
        (["--serving-since", "yesterday"], {}, "'--serving-since' parameter must be an RFC 3339"),
        (["--serving-version", "0"], {}, "'--serving-version' parameter must be a version >= 1"),
        ([], {"minRows": 0}, "spec.data.current.minRows: must be >= 1, got 0"),
        (["--min-rows", "0"], {}, "--min-rows: must be >= 1, got 0"),
    ],
)
def test_bad_serving_arguments_are_config_errors(
    store: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    current: dict[str, Any],
    needle: str,
) -> None:
    _log(store, _frame(500, seed=3), "v1", at=NOW, version=1)
    code, result = _check(store, capsys, *args, **current)
    assert code == 1 and result["reason"] == "ConfigError"
    assert needle in result["message"]


def test_sketch_mode_streams_only_the_serving_versions_rows(
    store: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The streaming (larger than memory) path applies the same version filter."""
    _log(store, _frame(4000, seed=2, shift=1.0), "v1", at=NOW - dt.timedelta(minutes=20), version=1)
    _log(store, _frame(600, seed=3, start_id=10_000), "v2", at=NOW, version=2)
    code, v2 = _check(store, capsys, "--serving-version", "2", "--mode", "sketch")
    assert code == 0 and v2["nDrifted"] == 0 and v2["rows"]["current"] == 600
    code, v1 = _check(store, capsys, "--serving-version", "1", "--mode", "sketch")
    assert code == 0 and v1["datasetDrift"] is True and v1["rows"]["current"] == 4000
