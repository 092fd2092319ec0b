"""One Arrow schema per model version in the prediction log; readers unify the rest.

Before: the dataset schema came from the oldest file, so one batch whose categorical
column was all null (Arrow type ``null``) or whose ids were integers made every later
check fail with ``Unsupported cast from string to null``.
"""

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
from modelwatch_monitor.serve.prediction_log import LoggedBatch, log_schema, write_batches
from modelwatch_monitor.store.dataio import open_source, prune_partitions, unify_schemas
from modelwatch_monitor.store.feature_schema import Feature

NOW = dt.datetime.now(dt.UTC)
FEATURES = [Feature("x0", "numeric"), Feature("color", "categorical")]


def schema_v(version: int, features: list[Feature] = FEATURES) -> pa.Schema:
    return log_schema(
        features, version=version, classes=[0, 1], id_column="customer_id", task="classification"
    )


def batch(n: int, *, ids: Any, color: Any, x0: Any = None, **extra: Any) -> LoggedBatch:
    feats: dict[str, Any] = {
        "x0": np.zeros(n) if x0 is None else np.asarray(x0, dtype=float),
        "color": np.asarray(color, dtype=object),
        "customer_id": np.asarray(ids, dtype=object),
        **{k: np.asarray(v) for k, v in extra.items()},
    }
    return LoggedBatch(
        features=feats,
        predictions=np.zeros(n, dtype=np.int64),
        proba=np.full((n, 2), 0.5),
        request_id="req",
        timestamp=NOW,
    )


def write(store: pathlib.Path, batches: list[LoggedBatch], *, version: int, **kw: Any) -> str:
    return write_batches(
        batches,
        store=str(store),
        model="churn",
        day=kw.pop("day", NOW.strftime("%Y-%m-%d")),
        version=version,
        classes=[0, 1],
        schema=kw.pop("schema", schema_v(version)),
    )


def file_schema(uri: str) -> pa.Schema:
    return pq.read_schema(uri).remove_metadata()


def test_every_file_of_a_version_has_its_one_schema(tmp_path: pathlib.Path) -> None:
    """Null-only columns, integer ids and string ids: the same schema in each file."""
    files = [
        write(tmp_path, [batch(2, ids=[None, None], color=[None, None])], version=1),
        write(tmp_path, [batch(2, ids=[7, 8], color=["red", "blue"])], version=1),
        write(tmp_path, [batch(2, ids=["a", 9], color=["mauve", None])], version=1),
    ]
    expected = schema_v(1).remove_metadata()
    assert [file_schema(f) for f in files] == [expected] * 3
    assert expected.field("color").type == pa.string()
    assert expected.field("customer_id").type == pa.string()
    assert pq.read_schema(files[0]).metadata[b"modelwatch.model_version"] == b"1"
    source = open_source(contract.predictions_dir(str(tmp_path), "churn"))
    ids = source.table(["customer_id"]).column(0).to_pylist()
    assert sorted(ids, key=str) == ["7", "8", "9", None, None, "a"]


def legacy_file(store: pathlib.Path, name: str, cols: dict[str, pa.Array]) -> None:
    """A file as the old writer made it: each batch's own Arrow types."""
    n = len(next(iter(cols.values())))
    cols = {
        **cols,
        "prediction": pa.array(np.zeros(n, dtype=np.int64)),
        "timestamp": pa.array([NOW] * n, pa.timestamp("us", tz="UTC")),
        "model_version": pa.array(np.ones(n, dtype=np.int64)),
    }
    part = pathlib.Path(contract.predictions_partition(str(store), "churn", f"{NOW:%Y-%m-%d}"))
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), part / f"{name}.parquet")


@pytest.mark.parametrize("stream", [False, True])
def test_readers_unify_files_that_disagree(tmp_path: pathlib.Path, stream: bool) -> None:
    # Oldest first: the file whose types used to become everyone's.
    legacy_file(tmp_path, "0-null", {
        "x0": pa.array([1.0, 2.0]),
        "color": pa.nulls(2),  # one batch with every colour missing
        "customer_id": pa.array([1, 2]),  # integer ids
    })  # fmt: skip
    legacy_file(tmp_path, "1-str", {
        "x0": pa.array([3, 4]),  # integers where floats were
        "color": pa.array(["red", "never-seen"]),  # a new category
        "customer_id": pa.array(["c3", "c4"]),  # string ids
    })  # fmt: skip
    # Version 2 adds a feature.
    v2 = [*FEATURES, Feature("x_new", "numeric")]
    write(
        tmp_path,
        [batch(2, ids=["c5", "c6"], color=["blue", "red"], x_new=[0.5, 0.25])],
        version=2,
        schema=schema_v(2, v2),
    )
    source = open_source(contract.predictions_dir(str(tmp_path), "churn"))
    columns = ["x0", "color", "customer_id", "x_new"]
    if stream:
        table = pa.Table.from_batches(list(source.batches(columns)))
    else:
        table = source.table(columns)
    got = {name: sorted(map(str, table.column(name).to_pylist())) for name in columns}
    assert got == {
        "x0": ["0.0", "0.0", "1.0", "2.0", "3.0", "4.0"],
        "color": ["None", "None", "blue", "never-seen", "red", "red"],
        "customer_id": ["1", "2", "c3", "c4", "c5", "c6"],
        "x_new": ["0.25", "0.5", "None", "None", "None", "None"],
    }


def test_unify_schemas_table() -> None:
    a = pa.schema(
        [("id", pa.int64()), ("c", pa.null()), ("x", pa.int32()), ("t", pa.timestamp("us"))]
    )
    b = pa.schema([("id", pa.string()), ("c", pa.string()), ("x", pa.float64()), ("n", pa.bool_())])
    got = unify_schemas([a, b])
    assert got == pa.schema([
        ("id", pa.string()), ("c", pa.string()), ("x", pa.float64()),
        ("t", pa.timestamp("us")), ("n", pa.bool_()),
    ])  # fmt: skip


def _partitions(store: pathlib.Path, days: list[int]) -> pathlib.Path:
    for d in days:
        day = (NOW - dt.timedelta(days=d)).strftime("%Y-%m-%d")
        write(store, [batch(3, ids=[1, 2, 3], color=["red"] * 3)], version=1, day=day)
    return pathlib.Path(contract.predictions_dir(str(store), "churn"))


def test_a_window_lists_only_its_partitions(tmp_path: pathlib.Path) -> None:
    folder = _partitions(tmp_path, [0, 1, 5, 30])
    since = (NOW - dt.timedelta(days=2)).date()
    source = open_source(str(folder), since=since)
    days = sorted({pathlib.Path(f).parent.name for f in source.files})
    assert days == sorted(f"date={(NOW - dt.timedelta(days=d)):%Y-%m-%d}" for d in (0, 1))
    assert len(open_source(str(folder)).files) == 4


def test_prune_partitions_deletes_only_whole_days_before_the_cutoff(tmp_path: pathlib.Path) -> None:
    folder = _partitions(tmp_path, [0, 3, 4, 40])
    (folder / "notes.txt").write_text("not a partition")
    cutoff = (NOW - dt.timedelta(days=3)).date()
    deleted = prune_partitions(str(folder), older_than=cutoff)
    assert [pathlib.Path(p).name for p in deleted] == sorted(
        f"date={(NOW - dt.timedelta(days=d)):%Y-%m-%d}" for d in (4, 40)
    )
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(
        [*(f"date={(NOW - dt.timedelta(days=d)):%Y-%m-%d}" for d in (0, 3)), "notes.txt"]
    )
    assert prune_partitions(str(tmp_path / "absent"), older_than=cutoff) == []


def test_retention_defaults_to_four_windows() -> None:
    assert contract.CurrentSpec(window="2d").retention_seconds == 8 * 86400
    assert contract.CurrentSpec(window="2d", retention="1d").retention_seconds == 86400


def test_a_check_reads_a_poisoned_log_and_prunes_old_partitions(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: a null-only batch first, int and string ids, and partitions older than
    the retention (1d window -> 4d by default), which the check deletes."""
    store = tmp_path / "store"
    rng = np.random.default_rng(0)
    ref = {
        "x0": rng.normal(size=2000),
        "color": rng.choice(["red", "blue"], 2000),
        "y": rng.integers(0, 2, 2000),
    }
    pq.write_table(pa.table(ref), tmp_path / "ref.parquet")
    legacy_file(store, "0-null", {
        "x0": pa.array(rng.normal(size=5)), "color": pa.nulls(5), "customer_id": pa.array(range(5)),
    })  # fmt: skip
    for ids in [list(range(10, 510)), [f"c{i}" for i in range(500)]]:
        b = batch(500, ids=ids, color=rng.choice(["red", "blue"], 500), x0=rng.normal(size=500))
        write(store, [b], version=1)
    old = _partitions(store, [6, 9])
    config = tmp_path / "config.json"
    config.write_text(json.dumps(contract.build_job_config(name="churn", namespace="ml", spec={
        "model": {"name": "churn", "target": "y", "idColumn": "customer_id"},
        "data": {"reference": {"uri": str(tmp_path / "ref.parquet")}, "current": {"window": "1d"}},
        "store": {"uri": str(store)},
    })))  # fmt: skip
    code = main(["check", "--config", str(config), "--result-path", str(tmp_path / "r")])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, result
    assert result["rows"]["current"] == 1005
    assert result["nFeatures"] == 2
    left = sorted(p.name for p in old.iterdir())
    assert left == [f"date={NOW:%Y-%m-%d}"]
