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
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from modelwatch_monitor import contract

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")


class DataError(ValueError):
    """The input data cannot be used; the message names the file or the column."""


class DataNotFoundError(DataError):
    """No Parquet or CSV file matches the source."""


def _expand(source: str) -> tuple[Any, list[str]]:
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
                f for f in sorted(fs.find(p)) if f.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
            )
        elif fs.exists(p):
            files.append(p)
    if not files:
        raise DataNotFoundError(f"file not found: {source!r} matches no Parquet or CSV file")
    return fs, files


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
    """

    def __init__(self, source: str) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self.uri = source
        fs, files = _expand(source)
        kinds = {f.endswith(CSV_SUFFIXES) for f in files}
        if len(kinds) > 1:
            raise DataError(f"{source!r} mixes Parquet and CSV files; use one format")
        self.is_csv = kinds == {True}
        self.files = files
        self.fs = fs
        self.filter_columns: list[str] = []
        from pyarrow.fs import FSSpecHandler, LocalFileSystem, PyFileSystem

        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        filesystem: Any = (
            LocalFileSystem() if protocol in ("file", "local") else PyFileSystem(FSSpecHandler(fs))
        )
        try:
            self.dataset: pads.Dataset = ds.dataset(
                files, format="csv" if self.is_csv else "parquet", filesystem=filesystem
            )
            self.schema: pa.Schema = self.dataset.schema
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {source!r}: {exc}") from exc
        self.filter: pads.Expression | None = None
        self.window: str | None = None

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
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self.require([timestamp_column], "timestamp column")
        field = self.schema.field(timestamp_column)
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        cutoff = now - parse_window(window)
        expr = ds.field(timestamp_column)
        if pa.types.is_timestamp(field.type):
            if field.type.tz is None:
                cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)
            scalar = pa.scalar(cutoff, type=pa.timestamp("us", tz=field.type.tz))
            # safe=False: a column in seconds (e.g. from CSV) truncates the cutoff.
            self.filter = expr >= pc.cast(scalar, field.type, safe=False)
        elif pa.types.is_date(field.type):
            self.filter = expr >= pa.scalar(cutoff.date(), type=field.type)
        else:
            raise DataError(
                f"timestamp column {timestamp_column!r} in {self.uri!r} has type "
                f"{field.type}, not a timestamp; cannot select the window {window!r}"
            )
        self.filter_columns = [timestamp_column]
        self.window = window

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

    def batches(
        self, columns: Sequence[str], *, batch_rows: int = 262_144
    ) -> Iterator[pa.RecordBatch]:
        """Stream record batches of some columns (window applied), bounded in memory.

        Parquet files are read row group by row group without pre-buffering, so the
        peak is about one decoded row group of the requested columns.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.require(columns)
        if not self.is_csv:
            wanted = list(dict.fromkeys([*columns, *self.filter_columns]))
            for f in self.files:
                try:
                    with self.fs.open(f, "rb") as fh:
                        pf = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
                        for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
                            if self.filter is not None:
                                table = pa.Table.from_batches([batch]).filter(self.filter)
                                yield from table.select(list(columns)).to_batches()
                            else:
                                yield batch
                except (pa.ArrowException, OSError, ValueError) as exc:
                    raise DataError(f"cannot read {f!r}: {exc}") from exc
            return
        try:
            yield from self.dataset.to_batches(
                columns=list(columns),
                filter=self.filter,
                batch_size=batch_rows,
                batch_readahead=1,
                fragment_readahead=1,
            )
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot read {self.uri!r}: {exc}") from exc


def open_source(source: str) -> Source:
    """Open ``source`` for column-wise or streaming reads; raise DataError."""
    return Source(source)
