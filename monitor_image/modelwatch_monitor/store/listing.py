"""The subfolders of a store folder, and the pruning of the old ones.

Retention in the store is one loop: list the subfolders of a folder (a path or fsspec
URI), give each a time, delete those before a cutoff. The prediction log's day
partitions (:func:`modelwatch_monitor.store.dataio.prune_partitions`) and the folders of
past sharded checks (:func:`modelwatch_monitor.check.shard_runs.prune_runs`) are pruned
with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

When = TypeVar("When", dt.date, dt.datetime)


@dataclass(frozen=True)
class Folder:
    """One subfolder, as the filesystem lists it."""

    path: str
    """The filesystem's path (without the protocol), as :meth:`fsspec.AbstractFileSystem.rm`
    takes it."""
    uri: str
    """The path with its protocol (``file://...``, ``s3://...``)."""
    name: str
    """The last segment of the path."""
    mtime: float | None
    """Seconds since the epoch, where the filesystem tells (an object store does not)."""


def _url_to_fs(folder: str) -> tuple[Any, str]:
    import fsspec  # deferred: fsspec pulls in its registry of filesystems

    fs, path = fsspec.core.url_to_fs(folder)
    return fs, str(path)


def _list(fs: Any, path: str) -> list[Folder]:
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if entry.get("type") != "directory":
            continue
        name = str(entry["name"])
        mtime = entry.get("mtime")
        out.append(
            Folder(
                path=name,
                uri=str(fs.unstrip_protocol(name)),
                name=name.rstrip("/").rsplit("/", 1)[-1],
                mtime=float(mtime) if mtime else None,
            )
        )
    return sorted(out, key=lambda f: f.path)


def list_dirs(folder: str) -> list[Folder]:
    """The subfolders of ``folder``, by path; none when ``folder`` does not exist.

    Files beside the subfolders are left out.
    """
    fs, path = _url_to_fs(folder)
    return _list(fs, path)


def prune_older_than(
    folder: str,
    cutoff: When,
    *,
    time_of: Callable[[Folder], When | None],
    keep: Collection[str] = (),
) -> list[str]:
    """Delete the subfolders of ``folder`` whose time is before ``cutoff``.

    Parameters
    ----------
    folder : str
        A path or fsspec URI; nothing happens when it does not exist.
    cutoff : date or datetime
        A subfolder goes when ``time_of(subfolder) < cutoff``.
    time_of : callable
        The time of one subfolder (a day, a datetime), or None to keep it.
    keep : collection of str
        Names of subfolders never deleted.

    Returns
    -------
    list of str
        The deleted subfolders' paths (without the protocol), sorted.

    Examples
    --------
    A folder of ``date=YYYY-MM-DD`` partitions keeps the days from ``cutoff`` on::

        prune_older_than(folder, dt.date(2026, 3, 1), time_of=lambda f: partition_date(f.name))
    """
    fs, path = _url_to_fs(folder)
    deleted = []
    for sub in _list(fs, path):
        if sub.name in keep:
            continue
        when = time_of(sub)
        if when is not None and when < cutoff:
            fs.rm(sub.path, recursive=True)
            deleted.append(sub.path)
    return deleted
