"""Which rows of the window a check judges: those the version that serves served.

A check judges the version that serves (``--serving-version``, which the operator sets
from ``status.currentVersion``; else the newest version in the window). Its rows are told
apart by the ``model_version`` column the model server logs; without that column, by the
rows since it began serving (``--serving-since``); else every row of the window counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from modelwatch_monitor import contract
from modelwatch_monitor.check.settings import CheckSettings
from modelwatch_monitor.store.dataio import Source

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads


class VersionRows(TypedDict):
    """One entry of the report's ``serving.byVersion``."""

    version: int
    rows: int
    judged: bool


@dataclass(frozen=True)
class Traffic:
    """Which rows of the window a check judges: those the serving version served.

    Attributes
    ----------
    version : int or None
        The version judged: the one that serves (``--serving-version``), else the newest
        version in the window; None when neither is known.
    basis : str
        How its rows are told apart: ``"model_version"`` (the column the model server
        logs), ``"servingSince"`` (the rows since it began serving, for data without that
        column), or ``"window"`` (every row: nothing tells versions apart).
    window_rows : int
        All rows in the window.
    served_rows : int
        The rows the judged version served (all of the window for ``"window"``).
    by_version : dict of int to int
        Rows per ``model_version`` in the window (empty without that column).
    since : datetime or None
        When the judged version began serving, if known.
    """

    version: int | None
    basis: str
    window_rows: int
    served_rows: int
    by_version: dict[int, int]
    since: dt.datetime | None = None

    @property
    def older_rows(self) -> int:
        """Rows in the window that other versions served (or that came before ``since``)."""
        return self.window_rows - self.served_rows

    def history(self) -> list[VersionRows]:
        """Rows per version in the window, the judged one marked, for the report."""
        return [
            {"version": v, "rows": n, "judged": v == self.version}
            for v, n in sorted(self.by_version.items())
        ]

    def awaiting_message(self, min_rows: int) -> str:
        """Why there is no verdict yet, with the row counts."""
        who = f"version {self.version}" if self.version is not None else "the model"
        since = f" since it began serving at {self.since.isoformat()}" if self.since else ""
        if self.basis == "model_version":
            text = f"{who} has served {self.served_rows:,} of the {min_rows:,} rows a verdict needs"
        elif self.basis == "servingSince":
            text = (
                f"{who} has served {self.served_rows:,} of the {min_rows:,} rows a verdict "
                f"needs{since}"
            )
        else:
            text = f"the window holds {self.served_rows:,} of the {min_rows:,} rows a verdict needs"
        text += " (spec.data.current.minRows)"
        older = sorted(v for v in self.by_version if v != self.version)
        if self.older_rows and older:
            text += (
                f"; {self.older_rows:,} rows in the window were served by other versions "
                f"({', '.join(map(str, older))}) and do not count"
            )
        elif self.older_rows:
            text += f"; {self.older_rows:,} rows in the window came before and do not count"
        return text


def rows_by_version(source: Source) -> dict[int, int]:
    """Rows per ``model_version`` in the (windowed) source; empty without that column."""
    if contract.LOG_MODEL_VERSION not in source.columns:
        return {}
    return add_version_counts(source.column(contract.LOG_MODEL_VERSION), {})


def add_version_counts(
    column: pa.Array | pa.ChunkedArray, counts: dict[int, int]
) -> dict[int, int]:
    """Add the rows per ``model_version`` of ``column`` (an Arrow array) to ``counts``."""
    import pyarrow.compute as pc

    for entry in pc.value_counts(column).to_pylist():
        try:
            version = int(entry["values"])
        except (TypeError, ValueError):
            continue  # null or not a version number: served by no known version
        counts[version] = counts.get(version, 0) + int(entry["counts"])
    return counts


def version_filter(source: Source, version: int) -> pads.Expression:
    """The expression that keeps the rows ``version`` served (its ``model_version``)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    col = contract.LOG_MODEL_VERSION
    ftype = source.schema.field(col).type
    if pa.types.is_integer(ftype):
        return ds.field(col) == pa.scalar(version, type=ftype)
    return ds.field(col).cast(pa.string()) == str(version)


def select_traffic(settings: CheckSettings, source: Source, window_rows: int) -> Traffic:
    """Restrict ``source`` to the rows the serving version served; return what was kept.

    With a ``model_version`` column the rows of the judged version are kept; without it,
    the rows since ``settings.serving_since`` (when there is a timestamp column); else all.
    """
    by_version = rows_by_version(source)
    version = settings.serving_version
    if version is None and by_version:
        version = max(by_version)  # no operator to ask: the newest version in the window
    since = settings.serving_since
    if by_version and version is not None:
        source.restrict(version_filter(source, version), [contract.LOG_MODEL_VERSION])
        return Traffic(
            version, "model_version", window_rows, by_version.get(version, 0), by_version, since
        )
    timestamp = settings.roles.timestamp
    if since is not None and timestamp and timestamp in source.columns:
        source.select_since(timestamp, since)
        return Traffic(version, "servingSince", window_rows, source.count_rows(), by_version, since)
    return Traffic(version, "window", window_rows, window_rows, by_version, since)
