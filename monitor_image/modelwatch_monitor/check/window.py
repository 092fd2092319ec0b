"""Reading the current window: the data a check judges, and the prediction log's upkeep.

The window is the last ``spec.data.current.window`` of the current data (only its day
partitions are listed), restricted by the timestamp the model server logs. Its columns are
read one at a time (``exact`` mode) or streamed in batches into KLL sketches (``sketch``
mode, larger than memory). An empty window is :class:`NoDataError`: no traffic, which is
an outcome of the check, not a failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterable, Mapping

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import FeatureType
from modelwatch_monitor.check.profile import (
    ColumnProfile,
    is_numeric_dtype,
    profile_column,
    summarize,
)
from modelwatch_monitor.check.settings import CheckSettings, ConfigError
from modelwatch_monitor.store.dataio import (
    DataError,
    DataNotFoundError,
    Source,
    open_source,
    parse_window,
    prune_partitions,
)

log = logging.getLogger(__name__)

EXACT = sys.maxsize  # "grid size" that keeps the exact empirical CDF


class NoDataError(DataError):
    """The current window has no rows: the model got no traffic, or the logs stopped.

    ``reference_rows`` is the reference's row count when the check had read it.
    """

    def __init__(self, message: str, *, reference_rows: int | None = None) -> None:
        super().__init__(message)
        self.reference_rows = reference_rows


def open_window(
    settings: CheckSettings,
    features: list[str],
    *,
    now: dt.datetime,
    files: list[str] | None = None,
) -> Source:
    """Open the current data, restricted to the window; raise NoDataError without data.

    ``files`` fixes the files read (a sharded check reads the ones its plan listed).
    """
    since = (now - parse_window(settings.window)).date() if settings.window else None
    try:  # only the window's partitions
        source = open_source(settings.current, since=since, files=files)
    except DataNotFoundError as exc:
        store, model = settings.store, settings.model
        default = contract.predictions_dir(store, model) if store and model else None
        if settings.current == default:
            raise NoDataError(
                f"no predictions logged yet under {default!r}: the model server has had "
                "no traffic, or is not logging to the store"
            ) from exc
        raise
    try:
        source.require(features, "feature column")
    except DataError as exc:
        if settings.features:
            hint = ""
        elif settings.store:  # the operator's job config: name the spec fields
            hint = (
                " (the reference has it, so it was taken for a feature; if it is the target,"
                f" the id or the prediction, set spec.model.target (now {settings.roles.target!r}),"
                " idColumn, predictionColumn or timestampColumn to it, or list the features in"
                " spec.model.features)"
            )
        else:
            hint = (
                " (the reference has it; name non-feature columns with --target, --id-column, "
                "--prediction-column or list the features)"
            )
        raise DataError(f"{exc}{hint}") from None
    if settings.window:
        if not settings.roles.timestamp:
            raise ConfigError("a window needs a timestamp column (--timestamp-column)")
        column = settings.roles.timestamp
        if column not in source.columns and contract.LOG_TIMESTAMP in source.columns:
            column = contract.LOG_TIMESTAMP  # the model server's log: when it served the row
        source.select_window(column, settings.window, now=now)
    return source


def no_rows_error(settings: CheckSettings) -> NoDataError:
    """The error of a window without rows."""
    where = f" in the window {settings.window!r}" if settings.window else ""
    return NoDataError(
        f"the current data {settings.current!r} has no rows{where}: no predictions "
        "were logged (no traffic, or the model server is not logging to the store)"
    )


def check_types(
    reference: Mapping[str, ColumnProfile], source: Source, features: list[str]
) -> None:
    for name in features:
        ref = reference[name]
        cur_type = source.schema.field(name).type
        if ref.type == "numeric" and not is_numeric_dtype(cur_type):
            raise DataError(
                f"feature column {name!r} has type {cur_type} in the current data, "
                f"but {ref.dtype} (numeric) in the reference"
            )


def current_columns(
    source: Source, types: Mapping[str, FeatureType], mode: str
) -> Iterable[ColumnProfile]:
    """The window's summaries of the features ``types`` names: read one column at a time
    (``exact``, a generator: one full column in memory at a time) or streamed into
    sketches (``sketch``)."""
    if mode == "exact":
        return (profile_column(source.column(n), n, t, grid_size=EXACT) for n, t in types.items())
    return summarize(source, types, mode=mode).values()


def prune_log(settings: CheckSettings) -> list[str]:
    """Delete the prediction log's day partitions older than the retention.

    Only the store's own log (``spec.data.current.uri`` unset) is pruned; a failure is
    logged, never the check's. Returns the deleted partitions.
    """
    if settings.retention_seconds is None or not settings.store or not settings.model:
        return []
    now = settings.now or dt.datetime.now(dt.UTC)
    cutoff = (now - dt.timedelta(seconds=settings.retention_seconds)).date()
    try:
        deleted = prune_partitions(
            contract.predictions_dir(settings.store, settings.model), older_than=cutoff
        )
    except OSError as exc:
        log.warning("cannot prune the prediction log: %s", exc)
        return []
    if deleted:
        log.info("pruned %d prediction log partitions before %s", len(deleted), cutoff)
    return deleted
