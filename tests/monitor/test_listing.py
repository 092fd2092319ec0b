"""Listing a store folder's subfolders and pruning the old ones, on a file store."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

from modelwatch_monitor.store.dataio import partition_date
from modelwatch_monitor.store.listing import Folder, list_dirs, prune_older_than


def _tree(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "store" / "m" / "predictions"
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        (root / f"date={day}").mkdir(parents=True)
        (root / f"date={day}" / "part-0.parquet").write_bytes(b"x")
    (root / "notes").mkdir()
    (root / "README.txt").write_text("a file, not a folder")
    return root


def test_list_dirs_lists_only_folders_by_path(tmp_path: pathlib.Path) -> None:
    root = _tree(tmp_path)
    folders = list_dirs(str(root))
    assert [f.name for f in folders] == [
        "date=2026-03-01",
        "date=2026-03-02",
        "date=2026-03-03",
        "notes",
    ]
    first = folders[0]
    assert pathlib.Path(first.path) == root / "date=2026-03-01"
    assert first.uri.startswith("file://") and first.uri.endswith(first.path)
    assert first.mtime == os.path.getmtime(root / "date=2026-03-01")
    assert list_dirs(f"file://{root}") == folders  # a URI lists the same folders
    assert list_dirs(str(tmp_path / "absent")) == []


def test_prune_older_than_deletes_before_the_cutoff_only(tmp_path: pathlib.Path) -> None:
    root = _tree(tmp_path)
    deleted = prune_older_than(
        str(root), dt.date(2026, 3, 2), time_of=lambda f: partition_date(f.name)
    )
    assert [pathlib.Path(p).name for p in deleted] == ["date=2026-03-01"]
    assert sorted(p.name for p in root.iterdir()) == [
        "README.txt",
        "date=2026-03-02",
        "date=2026-03-03",
        "notes",  # no time: kept
    ]
    assert (
        prune_older_than(str(tmp_path / "absent"), dt.date(2026, 3, 9), time_of=lambda f: None)
        == []
    )


def test_prune_older_than_spares_the_kept_names(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "runs"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    seen: list[str] = []

    def time_of(folder: Folder) -> dt.datetime:
        seen.append(folder.name)
        return t0

    deleted = prune_older_than(
        f"file://{root}", t0 + dt.timedelta(seconds=1), time_of=time_of, keep={"b"}
    )
    assert [pathlib.Path(p).name for p in deleted] == ["a", "c"]
    assert [p.name for p in root.iterdir()] == ["b"]
    assert seen == ["a", "c"]  # a kept folder is not even timed
    # Not strictly older than the cutoff: kept.
    (root / "d").mkdir()
    assert prune_older_than(str(root), t0, time_of=lambda f: t0) == []
    assert sorted(p.name for p in root.iterdir()) == ["b", "d"]
