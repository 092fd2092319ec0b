"""Exact summaries of one column: its feature type, its values or category counts.

A numeric column becomes a :class:`~modelwatch_monitor.check.drift.Distribution` on a
quantile grid, a categorical one its :class:`~modelwatch_monitor.check.drift.Counts`
(at most :data:`MAX_CATEGORIES`, the rest folded into :data:`OTHER_CATEGORY`). The
streamed equivalents are in :mod:`modelwatch_monitor.check.sketches`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from modelwatch_monitor.check.drift import Counts, Distribution, FeatureType
from modelwatch_monitor.check.profile_format import ColumnProfile
from modelwatch_monitor.store.dataio import DataError

if TYPE_CHECKING:
    import pyarrow as pa

MAX_CATEGORIES: Final = 10_000
OTHER_CATEGORY: Final = "__other__"


def infer_type(arrow_type: pa.DataType) -> FeatureType | None:
    """Numeric for integers, floats and decimals; categorical for strings, booleans and
    dictionaries; None (not a feature) for timestamps, dates, binary and nested types."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return "categorical"
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    return None


def is_numeric_dtype(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    t = arrow_type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def numeric_values(
    column: pa.ChunkedArray | pa.Array, name: str
) -> tuple[NDArray[np.float64], int]:
    """Return the non-null values as float64, sorted, and the null count (nulls + NaN).

    Raises DataError when the column is not numeric.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not is_numeric_dtype(column.type):
        raise DataError(f"column {name!r} has type {column.type}, expected a numeric column")
    nulls = int(column.null_count)
    if column.type != pa.float64():
        column = pc.cast(column, pa.float64())
    if nulls:
        column = pc.drop_null(column)
    if isinstance(column, pa.ChunkedArray):
        x = (
            column.chunk(0).to_numpy(zero_copy_only=False)
            if column.num_chunks == 1
            else np.concatenate([c.to_numpy(zero_copy_only=False) for c in column.chunks])
            if column.num_chunks
            else np.empty(0)
        )
    else:
        x = column.to_numpy(zero_copy_only=False)
    x = np.sort(x)
    n_nan = int(np.count_nonzero(np.isnan(x[-1:]))) and int(np.count_nonzero(np.isnan(x)))
    if n_nan:
        x = x[: x.shape[0] - n_nan]
    return x, nulls + n_nan


def category_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """Return the counts of the non-null values (as strings) and the null count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = int(column.null_count)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    vc = pc.value_counts(column)
    out: dict[str, int] = {}
    for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
        if v is None:
            continue
        out[str(v).lower() if isinstance(v, bool) else str(v)] = int(c)
    return out, nulls


def cap_categories(counts: Mapping[str, int], limit: int = MAX_CATEGORIES) -> dict[str, int]:
    """Keep the ``limit`` most frequent categories; fold the rest into ``__other__``."""
    if len(counts) <= limit:
        return dict(counts)
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    out = dict(items[:limit])
    out[OTHER_CATEGORY] = out.get(OTHER_CATEGORY, 0) + sum(c for _, c in items[limit:])
    return out


def profile_column(
    column: pa.ChunkedArray, name: str, ftype: FeatureType, *, grid_size: int
) -> ColumnProfile:
    """Summarise one fully read column (exact mode)."""
    rows = len(column)
    if ftype == "numeric":
        x, nulls = numeric_values(column, name)
        if x.shape[0] == 0:
            return ColumnProfile(name, ftype, str(column.type), rows, nulls, None)
        dist, _ = Distribution.from_sorted_grid(x, grid_size=grid_size)
        return ColumnProfile(name, ftype, str(column.type), rows, nulls, dist)
    counts, nulls = category_counts(column)
    return ColumnProfile(
        name,
        ftype,
        str(column.type),
        rows,
        nulls,
        Counts(cap_categories(counts)) if counts else None,
    )
