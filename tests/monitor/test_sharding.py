"""Sharded checks: N shards sketch shares of the window, shard 0 merges and decides.

The verdicts equal those of one pod streaming the window (``sketch`` mode): the same
drifted features, the same row counts, and each drift statistic within the KLL bound
the check states for it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor import contract
from modelwatch_monitor.check import judge, shard_runs, sharding
from modelwatch_monitor.check.settings import CheckSettings, settings_from_config
from modelwatch_monitor.cli import main

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
REF_ROWS = 60_000
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _frame(n: int, *, seed: int, shift: float = 0.0) -> dict[str, Any]:
    """x0 shifts by ``shift``, x1 never, x2 scales by ``1 + shift``, color tilts."""
    rng = np.random.default_rng(seed)
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.4, 0.3, 0.3]
    return {
        "x0": rng.normal(shift, 1.0, n),
        "x1": rng.normal(0.0, 1.0, n),
        "x2": rng.exponential(2.0 * (1 + shift), n),
        "x3": rng.integers(0, 50, n).astype(np.float64),
        "color": rng.choice(["red", "green", "blue"], n, p=p),
    }


def _log(
    store: pathlib.Path,
    name: str,
    cols: dict[str, Any],
    *,
    at: dt.datetime,
    version: int | None,
    row_group: int = 10_000,
) -> None:
    n = len(cols["x0"])
    cols = dict(cols)
    cols["x0"] = np.where(np.arange(n) % 97 == 0, np.nan, cols["x0"])  # some nulls
    cols["prediction"] = (cols["x1"] > 0).astype(np.int64)
    cols["timestamp"] = pa.array([at] * n, pa.timestamp("us", tz="UTC"))
    if version is not None:
        cols[contract.LOG_MODEL_VERSION] = np.full(n, version, dtype=np.int64)
    part = pathlib.Path(contract.predictions_partition(str(store), "churn", at.date().isoformat()))
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), part / f"{name}.parquet", row_group_size=row_group)


def _config(store: pathlib.Path, *, parallelism: int = 1, **current: Any) -> str:
    doc = contract.build_job_config(
        name="churn",
        namespace="default",
        spec={
            "model": {"name": "churn", "target": "y", "idColumn": "request_id"},
            "data": {
                "reference": {"uri": str(store.parent / "ref.parquet")},
                "current": {"window": "1h", **current},
            },
            "store": {"uri": str(store)},
            "check": {"parallelism": parallelism},
        },
    )
    path = store.parent / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _settings(store: pathlib.Path, **extra: Any) -> CheckSettings:
    doc = contract.parse_job_config(pathlib.Path(_config(store)).read_text())
    settings = settings_from_config(doc, now=NOW)
    return dataclasses.replace(settings, **extra)


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    """A reference, and a window of v1 traffic (shifted) and v2 traffic (x0, x2, color
    drift a little; x1, x3 do not), in files of several row groups."""
    pq.write_table(pa.table(_frame(REF_ROWS, seed=1)), tmp_path / "ref.parquet")
    store = tmp_path / "store"
    at = NOW - dt.timedelta(minutes=10)
    _log(store, "v1", _frame(30_000, seed=2, shift=1.0), at=at, version=1)
    for i, n in enumerate((50_000, 35_000, 15_000, 4_000)):
        _log(store, f"v2-{i}", _frame(n, seed=10 + i, shift=0.08), at=at, version=2)
    return store


def _sharded(settings: CheckSettings, shards: int, *, folder: pathlib.Path) -> dict[str, Any]:
    """Plan, run every shard through its file, and merge, as the pods would."""
    plan, profile, features = sharding.make_plan(settings, shards=shards, run=f"run-{shards}")
    shard_runs.write_plan(str(folder), plan)
    for i in range(shards):
        shard_runs.write_shard(str(folder), plan, sharding.run_shard(settings, plan, i))
    summaries = shard_runs.wait_for_shards(str(folder), plan, timeout=0)
    return sharding.merge_check(settings, plan, summaries, profile=profile, features=features)


def _report(result: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (pathlib.Path(result["reportUri"]) / "report.json").read_text()
    )
    return doc


def test_shards_agree_with_one_pod_streaming_the_window(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    single = judge.run_check(_settings(store, serving_version=2, mode="sketch"))
    one = _report(single)
    assert one["mode"] == "sketch" and single["rows"]["current"] == 104_000
    drifted = {f["name"] for f in one["features"] if f["drift"]}
    assert drifted == {"x0", "x2", "color"}  # the data is made so: no borderline feature
    for shards in (1, 2, 4):
        result = _sharded(
            _settings(store, serving_version=2), shards, folder=tmp_path / f"s{shards}"
        )
        report = _report(result)
        assert report["shards"] == shards
        assert result["rows"] == single["rows"]  # exact: counts merge exactly
        assert report["serving"] == one["serving"]  # v1's rows are history in every shard
        assert {f["name"] for f in report["features"] if f["drift"]} == drifted
        assert (result["nDrifted"], result["datasetDrift"]) == (
            single["nDrifted"],
            single["datasetDrift"],
        )
        mine = {f["name"]: f for f in report["features"]}
        for f in one["features"]:
            other = mine[f["name"]]
            bound = f["error_bound"] + other["error_bound"]
            assert abs(other["statistic"] - f["statistic"]) <= bound, (shards, f, other)
            if f["type"] == "categorical":  # counts merge exactly
                assert other["statistic"] == pytest.approx(f["statistic"], abs=1e-12)
        assert result["qualityFindings"] == single["qualityFindings"]


def test_every_row_group_goes_to_exactly_one_share() -> None:
    units = [("a", 10), ("a", 10), ("a", 7), ("b", 30), ("c", -1), ("d", 5), ("d", 5)]
    for shards in (1, 2, 3, 4, 8):
        parts = sharding.balance(units, shards)
        assert len(parts) == shards
        dealt = sorted(
            (f, g)
            for share in parts
            for f, groups in share.items()
            for g in (range(sum(1 for u in units if u[0] == f)) if groups is None else groups)
        )
        want = sorted((f, g) for f in "abcd" for g in range(sum(1 for u in units if u[0] == f)))
        assert dealt == want, shards
    loads = [
        sum(10 if f == "a" else 1 for f, g in share.items() for _ in (g or [0]))
        for share in sharding.balance([("a", 10)] * 8, 4)
    ]
    assert loads == [20, 20, 20, 20]
    with pytest.raises(ValueError, match="'shards' parameter must be >= 1"):
        sharding.balance(units, 0)


def test_a_retried_shard_overwrites_its_own_file(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    settings = _settings(store, serving_version=2)
    folder = str(tmp_path / "shards")
    plan, profile, features = sharding.make_plan(settings, shards=2, run="r")
    shard_runs.write_plan(folder, plan)
    shard_runs.write_shard_failure(folder, "r", 1, "DataError", "the first attempt died")
    with pytest.raises(sharding.ShardError, match="shard 1 of 2: the first attempt died"):
        shard_runs.read_shard(folder, plan, 1)
    first = sharding.run_shard(settings, plan, 1)
    shard_runs.write_shard(folder, plan, first)
    second = sharding.run_shard(settings, plan, 1)  # retried: the same share again
    shard_runs.write_shard(folder, plan, second)
    read = shard_runs.read_shard(folder, plan, 1)
    assert read is not None and read.served_rows == first.served_rows == second.served_rows
    assert sorted(os.listdir(folder)) == ["plan.json", "shard-1.json"]  # no temp file left
    # A shard file of another run (an older Job) is not this run's.
    other = dataclasses.replace(plan, run="another")
    assert shard_runs.read_shard(folder, other, 1) is None
    shard_runs.write_shard(folder, plan, sharding.run_shard(settings, plan, 0))
    summaries = shard_runs.wait_for_shards(folder, plan, timeout=0)
    assert sum(s.served_rows for s in summaries) == 104_000
    assert sum(s.window_rows for s in summaries) == 134_000
    assert sum(s.by_version.get(1, 0) for s in summaries) == 30_000
    result = sharding.merge_check(settings, plan, summaries, profile=profile, features=features)
    assert result["ok"] and result["rows"]["current"] == 104_000


def test_a_failed_shard_fails_the_merge_with_its_reason(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    settings = _settings(store, serving_version=2)
    folder = str(tmp_path / "shards")
    plan, _, _ = sharding.make_plan(settings, shards=3, run="r")
    shard_runs.write_plan(folder, plan)
    shard_runs.write_shard(folder, plan, sharding.run_shard(settings, plan, 0))
    shard_runs.write_shard_failure(folder, "r", 2, "DataError", "cannot read 'x.parquet'")
    with pytest.raises(sharding.ShardError) as err:
        shard_runs.wait_for_shards(folder, plan, timeout=0)
    assert err.value.reason == "DataError" and "shard 2 of 3" in str(err.value)


def test_a_shard_reason_is_always_a_known_check_reason() -> None:
    for reason in contract.CHECK_FAILURE_REASONS:
        assert sharding.ShardError(reason, "m").reason == reason
    assert sharding.ShardError("Whatever", "m").reason == "CheckFailed"


def test_waiting_gives_up_after_the_timeout_naming_the_missing_shards(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    settings = _settings(store, serving_version=2)
    folder = str(tmp_path / "shards")
    plan, _, _ = sharding.make_plan(settings, shards=3, run="r")
    shard_runs.write_shard(folder, plan, sharding.run_shard(settings, plan, 1))
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(sharding.ShardError, match=r"shards 0, 2 of 3 wrote no summary"):
        shard_runs.wait_for(
            lambda: None,
            timeout=30,
            what=lambda: "shards 0, 2 of 3 wrote no summary",
            sleep=sleep,
            clock=lambda: clock[0],
        )
    assert clock[0] >= 30


def test_the_serving_since_filter_applies_in_every_shard(tmp_path: pathlib.Path) -> None:
    """Data without model_version: only the rows since servingSince count, in each shard."""
    pq.write_table(pa.table(_frame(REF_ROWS, seed=1)), tmp_path / "ref.parquet")
    store = tmp_path / "store"
    since = NOW - dt.timedelta(minutes=15)
    _log(store, "before", _frame(20_000, seed=2, shift=1.0), at=since - dt.timedelta(minutes=5),
         version=None)  # fmt: skip
    _log(store, "after", _frame(30_000, seed=3), at=since + dt.timedelta(minutes=5), version=None)
    settings = _settings(store, serving_since=since, serving_version=2)
    single = judge.run_check(dataclasses.replace(settings, mode="sketch"))
    sharded = _sharded(settings, 2, folder=tmp_path / "s")
    assert single["rows"] == sharded["rows"]
    assert sharded["rows"]["current"] == 30_000 and sharded["rows"]["window"] == 50_000
    assert sharded["nDrifted"] == single["nDrifted"] == 0
    assert _report(sharded)["serving"]["basis"] == "servingSince"


def test_too_little_traffic_awaits_it_as_one_pod_does(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    settings = _settings(store, serving_version=3)  # v3 has served nothing yet
    single = judge.run_check(dataclasses.replace(settings, mode="sketch"))
    sharded = _sharded(settings, 2, folder=tmp_path / "s")
    assert sharded == single
    assert sharded["reason"] == contract.REASON_AWAITING_TRAFFIC


def test_without_serving_version_the_plan_judges_the_newest(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    plan, _, _ = sharding.make_plan(_settings(store), shards=2, run="r")
    assert (plan.version, plan.basis) == (2, "model_version")
    assert list(plan.types) == ["x0", "x1", "x2", "x3", "color"]
    assert plan.now == NOW and len(plan.files) == 5
    assert sharding.Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


# ---------------------------------------------------------------------------
# The command line: one process per shard, as the pods of an Indexed Job
# ---------------------------------------------------------------------------


def _shard_process(
    config: str, index: int, out: pathlib.Path, *extra: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "monitor_image")]),
        contract.ENV_SHARD_INDEX: str(index),
        contract.ENV_SHARD_RUN: "job-uid-1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "modelwatch_monitor", "check", "--config", config,
         "--serving-version", "2", "--shards", "2", "--result-path", str(out), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_the_cli_shards_a_check_and_shard_0_carries_the_result(
    store: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(store, parallelism=2)
    one = main(["check", "--config", config, "--serving-version", "2", "--mode", "sketch",
                "--result-path", str(tmp_path / "single.json")])  # fmt: skip
    assert one == 0
    single = json.loads((tmp_path / "single.json").read_text())
    capsys.readouterr()
    shard1 = _shard_process(config, 1, tmp_path / "r1.json")  # may start first: it waits
    shard0 = _shard_process(config, 0, tmp_path / "r0.json")
    _, err0 = shard0.communicate(timeout=600)
    _, err1 = shard1.communicate(timeout=600)
    assert shard0.returncode == 0, err0
    assert shard1.returncode == 0, err1
    assert not (tmp_path / "r1.json").exists()  # only shard 0 carries a result
    result = contract.parse_result((tmp_path / "r0.json").read_text())
    assert result["ok"] and result["rows"] == single["rows"]
    assert {f["name"] for f in result["topFeatures"]} == {f["name"] for f in single["topFeatures"]}
    assert (result["nDrifted"], result["datasetDrift"]) == (
        single["nDrifted"],
        single["datasetDrift"],
    )
    assert not contract.validate_result(result)
    folder = pathlib.Path(contract.shards_dir(str(store), "churn", "job-uid-1"))
    assert sorted(p.name for p in folder.iterdir()) == ["plan.json", "shard-0.json", "shard-1.json"]


def test_the_cli_without_a_run_id_is_a_config_error(
    store: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv(contract.ENV_SHARD_RUN, raising=False)
    code = main(["check", "--config", _config(store), "--shards", "2", "--shard-index", "1",
                 "--result-path", str(tmp_path / "r.json")])  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and result["reason"] == "ConfigError"
    assert contract.ENV_SHARD_RUN in result["message"]
    code = main(["check", "--config", _config(store), "--shards", "2", "--shard-index", "2",
                 "--shard-run", "x", "--result-path", str(tmp_path / "r.json")])  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and "must be in [0, 2)" in result["message"]


def test_a_check_that_cannot_be_planned_stops_every_shard(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traffic logged yet: shard 0 says NoData (not a failure: exit 0), and shard 1
    stops waiting with the same outcome."""
    pq.write_table(pa.table(_frame(1000, seed=1)), tmp_path / "ref.parquet")
    store = tmp_path / "store"
    config = _config(store)
    args = ["check", "--config", config, "--shards", "2", "--shard-run", "r", "--shard-timeout",
            "600", "--result-path", str(tmp_path / "r.json")]  # fmt: skip
    assert main([*args, "--shard-index", "0"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] is True and result["reason"] == contract.REASON_NO_DATA
    assert result["rows"] == {"reference": 1000, "current": 0, "window": 0, "needed": 100}
    assert "no predictions logged yet" in result["message"]
    assert main([*args, "--shard-index", "1"]) == 0  # returns at once: the plan says why
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] is True and result["reason"] == contract.REASON_NO_DATA
    assert "shard 0 could not plan the check" in result["message"]
    assert not (store / "churn" / "reports").exists()


def test_old_runs_are_pruned_but_not_the_current_one(tmp_path: pathlib.Path) -> None:
    parent = tmp_path / "shards"
    for run, when in (("old", NOW - dt.timedelta(days=2)), ("recent", NOW), ("mine", NOW)):
        (parent / run).mkdir(parents=True)
        (parent / run / "plan.json").write_text(json.dumps({"now": when.isoformat()}))
    deleted = shard_runs.prune_runs(str(parent), keep="mine", now=NOW + dt.timedelta(hours=1))
    assert [pathlib.Path(d).name for d in deleted] == ["old"]
    assert sorted(p.name for p in parent.iterdir()) == ["mine", "recent"]


def test_sigterm_while_waiting_fails_with_a_reason() -> None:
    """The Job failed (a shard out of retries): index 0 still writes why it stopped."""
    import signal

    calls = []

    def probe() -> None:
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises while we wait
        return None

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(sharding.ShardError, match="terminated while waiting: shard 1 is late"):
        shard_runs.wait_for(
            probe, timeout=600, what=lambda: "shard 1 is late", sleep=lambda s: None
        )
    assert len(calls) == 2  # one last look after the signal
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back


def test_csv_files_are_shared_out_whole(tmp_path: pathlib.Path) -> None:
    pq.write_table(pa.table(_frame(REF_ROWS, seed=1)), tmp_path / "ref.parquet")
    store = tmp_path / "store"
    folder = pathlib.Path(contract.predictions_dir(str(store), "churn"))
    folder.mkdir(parents=True)
    for i in range(3):
        cols = _frame(4000, seed=20 + i, shift=0.3)
        cols["timestamp"] = [NOW.isoformat()] * 4000
        pa.csv.write_csv(pa.table(cols), folder / f"part-{i}.csv")
    settings = _settings(store)
    single = judge.run_check(dataclasses.replace(settings, mode="sketch"))
    plan, _, _ = sharding.make_plan(settings, shards=2, run="r")
    assert sorted(len(p) for p in plan.parts) == [1, 2]
    assert all(groups is None for share in plan.parts for groups in share.values())
    sharded = _sharded(settings, 2, folder=tmp_path / "s")
    assert sharded["rows"] == single["rows"] and sharded["rows"]["current"] == 12_000
    assert {f["name"] for f in sharded["topFeatures"]} == {f["name"] for f in single["topFeatures"]}
    assert sharded["nDrifted"] == single["nDrifted"] >= 2
