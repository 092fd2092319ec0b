"""Reading tables from paths and fsspec URIs: Parquet and CSV, a file, a folder or a glob.

Two ways in:

- :func:`read_table` reads everything into one pandas DataFrame (small data).
- :func:`open_source` returns a :class:`Source`, which reads one column at a time
  (:meth:`Source.column`) or streams record batches (:meth:`Source.batches`), with an
  optional timestamp window (:func:`parse_window`) pushed down to the scan. This is
  what the check uses, so that memory stays bounded by one column or one batch.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from modelwatch_monitor import contract
from modelwatch_monitor.store.listing import prune_older_than

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs
    from fsspec import AbstractFileSystem

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")


class DataError(ValueError):
    """The input data cannot be used; the message names the file or the column."""


class DataNotFoundError(DataError):
    """No Parquet or CSV file matches the source."""


_PARTITION_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def partition_date(path: str) -> dt.date | None:
    """The day of a ``date=YYYY-MM-DD`` folder (the last path segment), else None.

    >>> partition_date("/store/iris/predictions/date=2026-03-01")
    datetime.date(2026, 3, 1)
    """
    m = _PARTITION_RE.match(path.rstrip("/").rsplit("/", 1)[-1])
    if not m:
        return None
    try:
        return dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None


def _find(fs: AbstractFileSystem, folder: str, since: dt.date | None) -> list[str]:
    """Every file under ``folder``; with ``since``, ``date=`` partitions older than it are
    skipped without being listed."""
    if since is None:
        return sorted(fs.find(folder))
    files: list[str] = []
    for entry in sorted(fs.ls(folder, detail=True), key=lambda e: str(e["name"])):
        name = str(entry["name"])
        if entry.get("type") == "directory":
            day = partition_date(name)
            if day is not None and day < since:
                continue
            files.extend(sorted(fs.find(name)))
        else:
            files.append(name)
    return files


def _expand(source: str, since: dt.date | None = None) -> tuple[AbstractFileSystem, list[str]]:
    import fsspec

    try:
        fs, _, paths = fsspec.get_fs_token_paths(source)
    except (ValueError, ImportError, OSError) as exc:
        raise DataError(f"cannot open {source!r}: {exc}") from exc
    if not paths:
        raise DataNotFoundError(f"file not found: no file matches {source!r}")
    files: list[str] = []
    for p in paths:
        if fs.isdir(p):
            files.extend(
                f for f in _find(fs, p, since) if f.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
            )
        elif fs.exists(p):
            files.append(p)
    if not files:
        raise DataNotFoundError(f"file not found: {source!r} matches no Parquet or CSV file")
    return fs, files


def prune_partitions(folder: str, *, older_than: dt.date) -> list[str]:
    """Delete the ``date=YYYY-MM-DD`` partitions of ``folder`` before ``older_than``.

    Returns the deleted partitions' paths (none when ``folder`` does not exist). Only
    whole days go: a partition is deleted when its day ends before ``older_than``.
    """
    return prune_older_than(folder, older_than, time_of=lambda f: partition_date(f.name))


def unify_schemas(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema for files written with different ones, every column kept.

    A column that is all null in one file takes its type from the others; integers and
    floats become float64; timestamps become UTC microseconds; any other mix (an id
    that is an integer in one file and a string in another) becomes a string.
    """
    import pyarrow as pa

    types: dict[str, list[pa.DataType]] = {}
    for schema in schemas:
        for f in schema:
            seen = types.setdefault(f.name, [])
            if f.type not in seen:
                seen.append(f.type)
    fields = []
    for name, kinds in types.items():
        known = [t for t in kinds if not pa.types.is_null(t)]
        if not known:
            target: pa.DataType = pa.null()
        elif len(known) == 1:
            target = known[0]
        elif all(pa.types.is_integer(t) for t in known):
            target = pa.int64()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in known):
            target = pa.float64()
        elif all(pa.types.is_timestamp(t) for t in known):
            target = pa.timestamp("us", tz="UTC")
        elif all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in known) or all(
            pa.types.is_dictionary(t) for t in known
        ):
            target = pa.string()
        else:
            target = pa.string()
        fields.append(pa.field(name, target))
    return pa.schema(fields)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Return ``batch`` with exactly ``schema``'s columns: missing ones null, others cast."""
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name in batch.schema.names:
            col = batch.column(f.name)
            columns.append(col if col.type == f.type else col.cast(f.type))
        else:
            columns.append(pa.nulls(batch.num_rows, f.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def local_path(uri: str) -> str | None:
    """The local path of a ``file://`` URI or a plain path; None for other protocols.

    >>> local_path("file:///store/iris"), local_path("/data"), local_path("s3://b/p")
    ('/store/iris', '/data', None)
    """
    if uri.startswith("file://"):
        return uri[len("file://") :] or "/"
    if "://" in uri:
        return None
    return uri


def require_store(store: str) -> None:
    """Raise DataError when a local store is not there (its volume is not mounted).

    A local store must exist, or be creatable (a fresh, empty volume). A store path that
    is neither -- typically ``/store`` on a read-only root filesystem, because the pod has
    no volume there -- means ``spec.store.volume`` is missing or mounted elsewhere.
    """
    path = local_path(store)
    if path is None or os.path.isdir(path):
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"the store {store!r} is not mounted: {path} does not exist in this pod and "
            f"cannot be created ({exc.strerror or exc}); set spec.store.volume.claimName to "
            f"the store's PersistentVolumeClaim, mounted at {path} or a folder above it "
            "(spec.store.volume.mountPath, default /store)"
        ) from None


def read_table(source: str, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read every Parquet or CSV file under ``source`` into one DataFrame.

    Parameters
    ----------
    source : str
        A local path, a folder, a glob, or an fsspec URI (``file://``, ``s3://``...).
    columns : sequence of str, optional
        Read only these columns (Parquet reads skip the others entirely).

    Returns
    -------
    pandas.DataFrame of shape (n_rows, n_columns)
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, files = _expand(source)
    frames = []
    for f in files:
        try:
            with fs.open(f, "rb") as fh:
                if f.endswith(CSV_SUFFIXES):
                    frame = pd.read_csv(
                        fh,
                        usecols=list(columns) if columns else None,
                        compression="gzip" if f.endswith(".gz") else None,
                    )
                else:
                    frame = pq.read_table(
                        fh, columns=list(columns) if columns else None
                    ).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {f!r}: {exc}") from exc
        frames.append(frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def parse_window(window: str) -> dt.timedelta:
    """Parse a window like ``"7d"``, ``"24h"``, ``"30m"`` or ``"90s"`` (the contract's
    one duration parser).

    Raises
    ------
    ValueError
        With the scikit-learn message shape when the text is not a window.
    """
    try:
        return dt.timedelta(seconds=contract.parse_duration(window))
    except contract.ContractError:
        raise ValueError(
            "The 'window' parameter must be a number followed by s, m, h or d "
            f"(e.g. '7d'). Got {window!r} instead."
        ) from None


class Source:
    """A table spread over one or more Parquet or CSV files, read lazily.

    Parameters
    ----------
    source : str
        A path, folder, glob or fsspec URI.
    since : date, optional
        Skip the ``date=YYYY-MM-DD`` partitions before that day.
    files : sequence of str, optional
        Read exactly these files of ``source`` (as listed before, e.g. by a sharded
        check's plan) instead of listing them.
    """

    def __init__(
        self, source: str, *, since: dt.date | None = None, files: Sequence[str] | None = None
    ) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self.uri = source
        if files is None:
            fs, files = _expand(source, since)
        else:
            fs = _filesystem(source)
            files = list(files)
            if not files:
                raise DataNotFoundError(f"file not found: no file of {source!r} to read")
        kinds = {f.endswith(CSV_SUFFIXES) for f in files}
        if len(kinds) > 1:
            raise DataError(f"{source!r} mixes Parquet and CSV files; use one format")
        self.is_csv = kinds == {True}
        self.files = files
        self.fs = fs
        self.filter_columns: list[str] = []
        from pyarrow.fs import LocalFileSystem, PyFileSystem

        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        filesystem: pafs.FileSystem = (
            LocalFileSystem() if protocol in ("file", "local") else PyFileSystem(_handler(fs))
        )
        try:
            schema = None if self.is_csv else self._file_schemas(files, filesystem)
            self.dataset: pads.Dataset = ds.dataset(
                files,
                format="csv" if self.is_csv else "parquet",
                filesystem=filesystem,
                schema=schema,
            )
            self.schema: pa.Schema = self.dataset.schema
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {source!r}: {exc}") from exc
        self.filter: pads.Expression | None = None
        self.window: str | None = None
        self.filesystem = filesystem

    @staticmethod
    def _file_schemas(files: Sequence[str], filesystem: pafs.FileSystem) -> pa.Schema | None:
        """The union of the files' schemas when they differ (files written by different
        model versions, or batches whose column was all null); None when they agree."""
        import pyarrow.parquet as pq

        if len(files) < 2:
            return None
        schemas = []
        for f in files:
            schema = pq.read_schema(f, filesystem=filesystem)
            schemas.append(schema.remove_metadata())
        first = schemas[0]
        if all(s.equals(first) for s in schemas[1:]):
            return None
        return unify_schemas(schemas)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def require(self, columns: Sequence[str], what: str = "column") -> None:
        """Raise DataError naming every column of ``columns`` that is missing."""
        missing = [c for c in columns if c not in self.schema.names]
        if missing:
            raise DataError(
                f"missing {what}{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
                f" in {self.uri!r}"
            )

    def select_window(
        self, timestamp_column: str, window: str, *, now: dt.datetime | None = None
    ) -> None:
        """Keep only rows with ``timestamp_column >= now - window`` (UTC).

        Naive timestamps are taken as UTC. Raises DataError when the column is missing
        or is not a timestamp.
        """
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        cutoff = now - parse_window(window)
        self.filter = self._at_or_after(timestamp_column, cutoff, f"the window {window!r}")
        self.filter_columns = [timestamp_column]
        self.window = window

    def _at_or_after(
        self, timestamp_column: str, cutoff: dt.datetime, what: str
    ) -> pads.Expression:
        """The expression ``timestamp_column >= cutoff``; naive timestamps are UTC."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self.require([timestamp_column], "timestamp column")
        field = self.schema.field(timestamp_column)
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=dt.UTC)
        expr = ds.field(timestamp_column)
        if pa.types.is_timestamp(field.type):
            if field.type.tz is None:
                cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)
            scalar = pa.scalar(cutoff, type=pa.timestamp("us", tz=field.type.tz))
            # safe=False: a column in seconds (e.g. from CSV) truncates the cutoff.
            result: pads.Expression = expr >= pc.cast(scalar, field.type, safe=False)
            return result
        if pa.types.is_date(field.type):
            return expr >= pa.scalar(cutoff.date(), type=field.type)
        raise DataError(
            f"timestamp column {timestamp_column!r} in {self.uri!r} has type "
            f"{field.type}, not a timestamp; cannot select {what}"
        )

    def since_filter(self, timestamp_column: str, since: dt.datetime) -> pads.Expression:
        """The expression ``timestamp_column >= since`` (naive timestamps are UTC)."""
        return self._at_or_after(timestamp_column, since, f"the rows since {since.isoformat()}")

    def select_since(self, timestamp_column: str, since: dt.datetime) -> None:
        """Keep only rows with ``timestamp_column >= since`` as well (on top of a window)."""
        self.restrict(
            self._at_or_after(timestamp_column, since, f"the rows since {since.isoformat()}"),
            [timestamp_column],
        )

    def restrict(self, expr: pads.Expression, columns: Sequence[str]) -> None:
        """Keep only the rows that also match ``expr``, which reads ``columns``."""
        self.filter = expr if self.filter is None else self.filter & expr
        self.filter_columns = list(dict.fromkeys([*self.filter_columns, *columns]))

    def count_rows(self) -> int:
        import pyarrow as pa

        try:
            return int(self.dataset.count_rows(filter=self.filter))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {self.uri!r}: {exc}") from exc

    def table(self, columns: Sequence[str]) -> pa.Table:
        """Read some columns (window applied) into one Arrow table."""
        import pyarrow as pa

        self.require(columns)
        try:
            return self.dataset.to_table(columns=list(columns), filter=self.filter)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {self.uri!r}: {exc}") from exc

    def column(self, name: str) -> pa.ChunkedArray:
        """Read one column (window applied)."""
        return self.table([name]).column(0)

    def row_groups(self) -> list[tuple[str, int]]:
        """Each file's row counts by Parquet row group, ``(file, rows)`` pairs in file
        order; a CSV file is one part (its rows unknown without reading it: -1)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        out: list[tuple[str, int]] = []
        for f in self.files:
            if self.is_csv:
                out.append((f, -1))
                continue
            try:
                meta = pq.read_metadata(f, filesystem=self.filesystem)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise DataError(f"cannot read {f!r}: {exc}") from exc
            out.extend((f, meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
        return out

    def batches(
        self,
        columns: Sequence[str],
        *,
        batch_rows: int = 262_144,
        parts: Mapping[str, Sequence[int] | None] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream record batches of some columns (window applied), bounded in memory.

        Parquet files are read row group by row group without pre-buffering, so the
        peak is about one decoded row group of the requested columns. ``parts`` reads
        only some files, and of each only the given row groups (None: all of it).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.require(columns)
        files = self.files if parts is None else [f for f in self.files if f in parts]
        if not self.is_csv:
            wanted = list(dict.fromkeys([*columns, *self.filter_columns]))
            target = pa.schema([self.schema.field(c) for c in wanted])
            for f in files:
                groups = None if parts is None else parts[f]
                try:
                    with self.fs.open(f, "rb") as fh:
                        pf = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
                        present = [c for c in wanted if c in pf.schema_arrow.names]
                        for raw in pf.iter_batches(
                            batch_size=batch_rows,
                            columns=present,
                            row_groups=None if groups is None else list(groups),
                        ):
                            batch = conform(raw, target)
                            if self.filter is not None:
                                table = pa.Table.from_batches([batch]).filter(self.filter)
                                yield from table.select(list(columns)).to_batches()
                            else:
                                yield batch
                except (pa.ArrowException, OSError, ValueError) as exc:
                    raise DataError(f"cannot read {f!r}: {exc}") from exc
            return
        dataset = self.dataset
        if parts is not None:
            import pyarrow.dataset as ds

            dataset = ds.dataset(
                files, format="csv", filesystem=self.filesystem, schema=self.schema
            )
        try:
            yield from dataset.to_batches(
                columns=list(columns),
                filter=self.filter,
                batch_size=batch_rows,
                batch_readahead=1,
                fragment_readahead=1,
            )
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {self.uri!r}: {exc}") from exc


def _handler(fs: AbstractFileSystem) -> pafs.FSSpecHandler:
    """An Arrow filesystem handler over ``fs`` that opens files without fsspec's cache.

    Arrow reads exact byte ranges (a footer, one column chunk); fsspec's default
    read-ahead cache turns each into a block of 50 MB from an object store, several
    times the data: a 1,000,000 x 20 check on S3 took 6.0 s and 1.2 GB with it, 1.9 s
    and 220 MB without (``bench/bench_store.py``).
    """
    from pyarrow import PythonFile
    from pyarrow.fs import FSSpecHandler

    class RangeReadHandler(FSSpecHandler):  # type: ignore[misc]
        def open_input_file(self, path: str) -> PythonFile:
            if not self.fs.isfile(path):
                raise FileNotFoundError(path)
            return PythonFile(self.fs.open(path, mode="rb", cache_type="none"), mode="r")

    return RangeReadHandler(fs)


def open_source(
    source: str, *, since: dt.date | None = None, files: Sequence[str] | None = None
) -> Source:
    """Open ``source`` for column-wise or streaming reads; raise DataError.

    With ``since``, the ``date=YYYY-MM-DD`` partitions before that day are not listed;
    with ``files``, exactly those files are read (no listing).
    """
    return Source(source, since=since, files=files)


def _filesystem(source: str) -> AbstractFileSystem:
    """The fsspec filesystem of a path or URI; raise DataError."""
    import fsspec

    try:
        fs, _ = fsspec.core.url_to_fs(source)
    except (ValueError, ImportError, OSError) as exc:
        raise DataError(f"cannot open {source!r}: {exc}") from exc
    return fs
