"""The model server's prediction log: batched Parquet files in the store.

Each ``/predict`` call hands one batch (its input table, predictions, request id and
time) to :meth:`PredictionLogger.offer`, which never blocks: it appends to a bounded
in-memory buffer, or drops the batch and counts it when the buffer is full. A
background thread writes the buffer out when it holds ``flush_rows`` rows or
``flush_seconds`` have passed, one Parquet file per day partition::

    <store>/<model>/predictions/date=YYYY-MM-DD/<uuid>.parquet

Files are written under a temp name that no reader picks up (``.<uuid>.parquet.tmp``)
and renamed, so the check engine never reads half a file. :meth:`PredictionLogger.close`
drains the buffer; the server calls it on SIGTERM, so a graceful shutdown loses nothing.

Columns: the feature columns, the model's id column when requests carry it,
``prediction``, ``proba_<class>`` for classifiers, ``request_id``, ``timestamp``
(UTC) and ``model_version`` (see :data:`modelwatch_monitor.contract.LOG_META_COLUMNS`).

Every file a server writes has one Arrow schema, :func:`log_schema`, made from the
feature schema its model version was trained on: numeric features are float64,
categorical ones strings, the id a string (clients send integers or strings), times
UTC microseconds. A batch whose column is all null, or whose ids are integers, is cast
to it, so files of one version never disagree; files of different versions may (a
column a new version adds), and readers unify them (``dataio.unify_schemas``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelwatch_monitor import contract

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedBatch:
    """One request's worth of rows.

    Parameters
    ----------
    features : mapping of str to array of shape (n_rows,)
        The raw model input by column (plus the id column when present): Arrow arrays
        (see :func:`to_arrow`) or anything :func:`to_arrow` takes.
    predictions : Arrow or numpy array of shape (n_rows,)
    proba : numpy.ndarray of shape (n_rows, n_classes) or None
    request_id : str
    timestamp : datetime
        When the request arrived, timezone-aware UTC.
    """

    features: Mapping[str, Any]
    predictions: Any
    proba: npt.NDArray[np.float64] | None
    request_id: str
    timestamp: datetime

    @property
    def rows(self) -> int:
        """Number of rows in the batch."""
        return len(self.predictions)


class PredictionLogger:
    """Write prediction batches to the store from a background thread.

    Parameters
    ----------
    store : str
        Store URI.
    model : str
        Model name.
    version : int
        The served version, written in every row.
    classes : sequence, optional
        Class labels, in the column order of the probabilities.
    prediction_column : str
        Name of the prediction column.
    max_rows : int
        Rows the buffer may hold; a batch that does not fit is dropped.
    flush_rows : int
        Write a file once this many rows are buffered.
    flush_seconds : float
        Write whatever is buffered at least this often.
    on_write : callable, optional
        Called with ``(rows, seconds)`` after each file.
    schema : pyarrow.Schema, optional
        The version's log schema (:func:`log_schema`); every file gets it.
    """

    def __init__(
        self,
        *,
        store: str,
        model: str,
        version: int,
        classes: Sequence[Any] | None = None,
        prediction_column: str = contract.LOG_PREDICTION,
        max_rows: int = 200_000,
        flush_rows: int = 20_000,
        flush_seconds: float = 10.0,
        on_write: Callable[[int, float], None] | None = None,
        schema: pa.Schema | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.version = int(version)
        self.classes = list(classes) if classes is not None else None
        self.prediction_column = prediction_column
        self.max_rows = max_rows
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.on_write = on_write
        self.schema = schema
        self._buffer: deque[LoggedBatch] = deque()
        self._buffered_rows = 0
        self._cond = threading.Condition()
        self._closing = False
        self._flush_now = False
        self._writing = False
        self.dropped_batches = 0
        self.dropped_rows = 0
        self.written_rows = 0
        self.written_files = 0
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    # -- request side --------------------------------------------------------

    def offer(self, batch: LoggedBatch) -> bool:
        """Queue a batch without blocking; return False (and count it) when dropped."""
        with self._cond:
            if self._closing or self._buffered_rows + batch.rows > self.max_rows:
                self.dropped_batches += 1
                self.dropped_rows += batch.rows
                return False
            self._buffer.append(batch)
            self._buffered_rows += batch.rows
            if self._buffered_rows >= self.flush_rows:
                self._cond.notify_all()
            return True

    @property
    def buffered_rows(self) -> int:
        """Rows waiting to be written."""
        return self._buffered_rows

    # -- writer side ---------------------------------------------------------

    def _take(self) -> list[LoggedBatch]:
        batches = list(self._buffer)
        self._buffer.clear()
        self._buffered_rows = 0
        return batches

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_seconds
        while True:
            with self._cond:
                while (
                    not self._closing
                    and not self._flush_now
                    and self._buffered_rows < self.flush_rows
                    and time.monotonic() < deadline
                ):
                    self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
                batches = self._take()
                closing = self._closing
                self._flush_now = False
                self._writing = bool(batches)
                if not batches:
                    self._cond.notify_all()
            if batches:
                try:
                    self._write(batches)
                finally:
                    with self._cond:
                        self._writing = False
                        self._cond.notify_all()
            deadline = time.monotonic() + self.flush_seconds
            if closing:
                with self._cond:
                    batches = self._take()
                if batches:
                    self._write(batches)
                return

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything buffered now; return True once it is written."""
        end = time.monotonic() + timeout
        with self._cond:
            self._flush_now = True
            self._cond.notify_all()
            while self._buffered_rows or self._writing or self._flush_now:
                remaining = end - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking batches, write the buffer out and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log: writer did not finish within %.0fs", timeout)
        log.info(
            "prediction log closed: %d rows in %d files, %d rows dropped, %d write errors",
            self.written_rows,
            self.written_files,
            self.dropped_rows,
            self.write_errors,
        )

    def _write(self, batches: list[LoggedBatch]) -> None:
        start = time.perf_counter()
        by_day: dict[str, list[LoggedBatch]] = {}
        for b in batches:
            by_day.setdefault(b.timestamp.strftime("%Y-%m-%d"), []).append(b)
        for day, group in by_day.items():
            rows = sum(b.rows for b in group)
            try:
                uri = write_batches(
                    group,
                    store=self.store,
                    model=self.model,
                    day=day,
                    version=self.version,
                    classes=self.classes,
                    prediction_column=self.prediction_column,
                    schema=self.schema,
                )
            except Exception:  # keep serving; the count shows up in /metrics
                log.exception("prediction log: cannot write %d rows for %s", rows, day)
                with self._cond:
                    self.write_errors += 1
                    self.dropped_rows += rows
                continue
            seconds = time.perf_counter() - start
            with self._cond:
                self.written_rows += rows
                self.written_files += 1
            log.debug("prediction log: %d rows -> %s in %.3fs", rows, uri, seconds)
            if self.on_write is not None:
                self.on_write(rows, seconds)


def log_schema(
    features: Sequence[Any],
    *,
    version: int,
    classes: Sequence[Any] | None = None,
    task: str = "classification",
    prediction_column: str = contract.LOG_PREDICTION,
    id_column: str | None = None,
    timestamp_column: str | None = None,
) -> pa.Schema:
    """The one Arrow schema of the prediction log files of one model version.

    Parameters
    ----------
    features : sequence of Feature
        The model's input schema (``name`` and ``kind``).
    version : int
        Written into the schema metadata as ``modelwatch.model_version``.
    classes : sequence, optional
        A classifier's classes: they give the prediction's type and the probability
        columns.
    """
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="UTC")
    fields: list[pa.Field] = []
    for f in features:
        fields.append(pa.field(f.name, pa.string() if f.kind == "categorical" else pa.float64()))
    names = {f.name for f in fields}
    if id_column and id_column not in names:
        fields.append(pa.field(id_column, pa.string()))
    if timestamp_column and timestamp_column not in names | {contract.LOG_TIMESTAMP}:
        fields.append(pa.field(timestamp_column, stamp))
    fields.append(pa.field(prediction_column, _prediction_type(classes, task)))
    for cls in classes if classes is not None and task == "classification" else ():
        fields.append(pa.field(f"{contract.LOG_PROBA_PREFIX}{cls}", pa.float64()))
    fields += [
        pa.field(contract.LOG_REQUEST_ID, pa.string()),
        pa.field(contract.LOG_TIMESTAMP, stamp),
        pa.field(contract.LOG_MODEL_VERSION, pa.int64()),
    ]
    return pa.schema(fields, metadata={"modelwatch.model_version": str(int(version))})


def _prediction_type(classes: Sequence[Any] | None, task: str) -> pa.DataType:
    import pyarrow as pa

    if task != "classification" or not classes:
        return pa.float64()
    if all(isinstance(c, bool) for c in classes):
        return pa.bool_()
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return pa.int64()
    return pa.string()


def _id_text(values: pa.Array) -> pa.Array:
    """Ids as strings: integral floats without ``.0``, so ``7`` and ``7.0`` agree."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(values.type):
        finite = pc.fill_null(pc.equal(pc.floor(values), values), True)
        if pc.all(finite).as_py():
            values = values.cast(pa.int64(), safe=False)
    return values.cast(pa.string())


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast ``table`` to ``schema``: missing columns null, extra columns kept after it."""
    import pyarrow as pa

    columns, fields = [], []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type:
                col = (
                    _id_text(col.combine_chunks())
                    if pa.types.is_string(f.type)
                    else col.cast(f.type)
                )
            columns.append(col)
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in schema.names:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.metadata))


def to_arrow(values: Any) -> pa.Array:
    """Return one column of a batch as an Arrow array.

    The server calls this in the request handler, so the writer thread, which shares
    the GIL with the handlers, only concatenates Arrow arrays and writes Parquet: C++
    work that mostly runs without the GIL. Datetimes become UTC timestamps; object
    arrays of mixed JSON types become strings.
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.Array):
        return values
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return pa.array(arr.astype("datetime64[us]"), type=pa.timestamp("us", tz="UTC"))
    try:
        return pa.array(arr, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else str(v) for v in arr], type=pa.string())


def _concat(parts: Sequence[pa.Array]) -> pa.Array:
    """Concatenate the per-batch arrays of one column; differing types become strings."""
    import pyarrow as pa

    types = {p.type for p in parts}
    if len(types) > 1:
        non_null = {t for t in types if t != pa.null()}
        target = non_null.pop() if len(non_null) == 1 else pa.string()
        parts = [p.cast(target) for p in parts]
    return pa.concat_arrays(list(parts))


def build_arrow_table(
    batches: Sequence[LoggedBatch],
    *,
    version: int,
    classes: Sequence[Any] | None,
    prediction_column: str = contract.LOG_PREDICTION,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """Return the log rows of ``batches`` as one Arrow table (see the module docstring).

    Column by column with Arrow's own kernels: no DataFrame and no Python object per
    row, since the writer thread's GIL time is what logging costs the handlers. With
    ``schema`` (:func:`log_schema`) the table has exactly that schema.
    """
    import numpy as np
    import pyarrow as pa

    names: dict[str, None] = {}
    for b in batches:
        names.update(dict.fromkeys(b.features))
    counts = np.array([b.rows for b in batches], dtype=np.int64)
    # Row i of the file comes from batch owner[i]: per-batch constants are a take().
    owner = pa.array(np.repeat(np.arange(len(batches), dtype=np.int64), counts))
    columns: dict[str, pa.Array] = {}
    for name in names:
        parts = [to_arrow(b.features[name]) if name in b.features else None for b in batches]
        typed = next(p.type for p in parts if p is not None)
        columns[name] = _concat(
            [
                p if p is not None else pa.nulls(b.rows, typed)
                for p, b in zip(parts, batches, strict=True)
            ]
        )
    columns[prediction_column] = _concat([to_arrow(b.predictions) for b in batches])
    if classes is not None and all(b.proba is not None for b in batches):
        proba = np.vstack([b.proba for b in batches if b.proba is not None])
        for j, cls in enumerate(classes):
            columns[f"{contract.LOG_PROBA_PREFIX}{cls}"] = pa.array(proba[:, j])
    rids = pa.array([b.request_id for b in batches], type=pa.string())
    columns[contract.LOG_REQUEST_ID] = rids.take(owner)
    stamps = pa.array(
        [b.timestamp.astimezone(UTC) for b in batches], type=pa.timestamp("us", tz="UTC")
    )
    columns[contract.LOG_TIMESTAMP] = stamps.take(owner)
    columns[contract.LOG_MODEL_VERSION] = pa.array(
        np.full(int(counts.sum()), version, dtype=np.int64)
    )
    table = pa.table(columns)
    return table if schema is None else conform_table(table, schema)


def write_batches(
    batches: Sequence[LoggedBatch],
    *,
    store: str,
    model: str,
    day: str,
    version: int,
    classes: Sequence[Any] | None,
    prediction_column: str = contract.LOG_PREDICTION,
    schema: pa.Schema | None = None,
) -> str:
    """Write one Parquet file for ``batches`` into the day's partition; return its URI."""
    import fsspec
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    arrow = build_arrow_table(
        batches,
        version=version,
        classes=classes,
        prediction_column=prediction_column,
        schema=schema,
    )
    folder = contract.predictions_partition(store, model, day)
    fs, path = fsspec.core.url_to_fs(folder)
    name = f"{uuid.uuid4().hex}.parquet"
    final = f"{path.rstrip('/')}/{name}"
    if isinstance(fs, LocalFileSystem):
        import os

        os.makedirs(path, exist_ok=True)
        tmp = f"{path.rstrip('/')}/.{name}.tmp"
        try:
            pq.write_table(arrow, tmp, compression="snappy")
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        # An object-store PUT is atomic: readers see the whole object or none.
        with fs.open(final, "wb") as fh:
            pq.write_table(arrow, fh, compression="snappy")
    return f"{folder}/{name}"
