"""Sources: files, folders, globs, CSV, windows, streaming, errors."""

from __future__ import annotations

import datetime as dt
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelwatch_monitor.store.dataio import DataError, open_source, parse_window, read_table

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_parse_window() -> None:
    assert parse_window("7d") == dt.timedelta(days=7)
    assert parse_window("24h") == dt.timedelta(hours=24)
    assert parse_window("30m") == dt.timedelta(minutes=30)
    assert parse_window("90m") == dt.timedelta(minutes=90)
    for text in ("a week", "1.5h", "2w"):  # the CRD's pattern: whole numbers of s, m, h, d
        with pytest.raises(ValueError, match="'window' parameter"):
            parse_window(text)


def _logs(tmp_path: pathlib.Path, tz: str | None) -> pathlib.Path:
    root = tmp_path / "predictions"
    for days in (1, 3, 10):
        t = NOW - dt.timedelta(days=days)
        part = root / f"date={t:%Y-%m-%d}"
        part.mkdir(parents=True)
        stamps = pa.array([t.replace(tzinfo=None)] * 5, pa.timestamp("us", tz=tz))
        pq.write_table(
            pa.table({"x": np.full(5, float(days)), "timestamp": stamps}), part / "a.parquet"
        )
    return root


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_window_selects_by_timestamp(tmp_path: pathlib.Path, tz: str | None) -> None:
    src = open_source(str(_logs(tmp_path, tz)))
    assert src.count_rows() == 15 and "date" not in src.columns
    src.select_window("timestamp", "7d", now=NOW)
    assert src.count_rows() == 10
    assert sorted(set(src.column("x").to_pylist())) == [1.0, 3.0]
    streamed = [v for b in src.batches(["x"], batch_rows=2) for v in b.column(0).to_pylist()]
    assert sorted(streamed) == [1.0] * 5 + [3.0] * 5
    src.select_window("timestamp", "1h", now=NOW)
    assert src.count_rows() == 0


def test_window_needs_a_timestamp(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": [1.0], "timestamp": ["2026-01-01"]}), path)
    src = open_source(str(path))
    with pytest.raises(DataError, match=r"'timestamp'.*not a timestamp"):
        src.select_window("timestamp", "7d")
    with pytest.raises(DataError, match="missing timestamp column 'ts'"):
        src.select_window("ts", "7d")


def test_globs_folders_csv_and_read_table(tmp_path: pathlib.Path) -> None:
    for i in range(3):
        pd.DataFrame({"a": [i, i], "b": ["x", "y"]}).to_csv(tmp_path / f"p{i}.csv", index=False)
    src = open_source(str(tmp_path / "p*.csv"))
    assert src.is_csv and src.count_rows() == 6 and len(src.files) == 3
    assert sum(len(b) for b in src.batches(["a"])) == 6
    assert read_table(str(tmp_path / "p*.csv"), columns=["a"]).shape == (6, 1)
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="mixes Parquet and CSV"):
        open_source(str(tmp_path))


def test_errors_name_the_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        open_source(str(tmp_path / "none.parquet"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet"):
        open_source(str(bad)).column("x")
    with pytest.raises(DataError, match=r"bad\.parquet"):
        read_table(str(bad))


def test_window_on_csv_timestamps_in_seconds(tmp_path: pathlib.Path) -> None:
    # CSV timestamps parse to second resolution; the cutoff has microseconds.
    stamps = [NOW - dt.timedelta(days=d) for d in (1, 3, 10)]
    pd.DataFrame(
        {"x": [1.0, 3.0, 10.0], "timestamp": [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in stamps]}
    ).to_csv(tmp_path / "logs.csv", index=False)
    src = open_source(str(tmp_path / "logs.csv"))
    src.select_window("timestamp", "7d", now=NOW + dt.timedelta(microseconds=123))
    assert sorted(src.column("x").to_pylist()) == [1.0, 3.0]
