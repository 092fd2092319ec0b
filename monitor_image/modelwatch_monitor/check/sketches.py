"""Streaming summaries of one column, batch by batch, for data larger than memory.

A numeric column is summarised by a KLL sketch (``k =`` :data:`KLL_K`) with its null
count, mean and standard deviation; a categorical one by its running category counts.
Both end as the same :class:`~modelwatch_monitor.check.profile_format.ColumnProfile` as
the exact summaries of :mod:`modelwatch_monitor.check.column_summary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from modelwatch_monitor.check.column_summary import (
    cap_categories,
    category_counts,
    is_numeric_dtype,
)
from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.profile_format import ColumnProfile
from modelwatch_monitor.store.dataio import DataError

if TYPE_CHECKING:
    import pyarrow as pa

KLL_K: Final = 4000


class NumericAccumulator:
    """Streaming summary of one numeric column: KLL sketch, nulls, mean and std."""

    def __init__(self, name: str, dtype: str, k: int = KLL_K) -> None:
        from datasketches import kll_doubles_sketch

        self.name, self.dtype = name, dtype
        self.sketch = kll_doubles_sketch(k)
        self.rows = self.nulls = 0
        self.shift: float | None = None
        self.s1 = self.s2 = 0.0

    def update(self, column: pa.Array) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not is_numeric_dtype(column.type):
            raise DataError(
                f"column {self.name!r} has type {column.type}, expected a numeric column"
            )
        self.rows += len(column)
        self.nulls += column.null_count
        if column.null_count:
            column = pc.drop_null(column)
        x = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        nan = np.isnan(x)
        if nan.any():
            self.nulls += int(nan.sum())
            x = x[~nan]
        if x.shape[0] == 0:
            return
        if not x.flags.writeable:  # the sketch binding refuses read-only Arrow buffers
            x = x.copy()
        self.sketch.update(x)
        if self.shift is None:
            self.shift = float(x[0])
        d = x - self.shift
        self.s1 += float(d.sum())
        self.s2 += float(np.square(d).sum())

    def result(self, grid_size: int = 4096) -> ColumnProfile:
        n = int(self.sketch.n)
        summary = None
        if n:
            mean_d = self.s1 / n
            std = float(np.sqrt(max(self.s2 / n - mean_d**2, 0.0)))
            summary = Distribution.from_kll(
                self.sketch, mean=(self.shift or 0.0) + mean_d, std=std, grid_size=grid_size
            )
        return ColumnProfile(self.name, "numeric", self.dtype, self.rows, self.nulls, summary)


class CategoricalAccumulator:
    """Streaming category counts of one column."""

    def __init__(self, name: str, dtype: str) -> None:
        self.name, self.dtype = name, dtype
        self.rows = self.nulls = 0
        self.counts: dict[str, int] = {}

    def update(self, column: pa.Array) -> None:
        counts, nulls = category_counts(column)
        self.rows += len(column)
        self.nulls += nulls
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def result(self) -> ColumnProfile:
        summary = Counts(cap_categories(self.counts)) if self.counts else None
        return ColumnProfile(self.name, "categorical", self.dtype, self.rows, self.nulls, summary)
