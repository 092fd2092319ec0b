"""Reading tables from paths and fsspec URIs: Parquet and CSV, a file, a folder or a glob."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class DataError(ValueError):
    """The input data cannot be used; the message names the file or the column."""


def _expand(source: str) -> tuple[object, list[str]]:
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(source)
    if not paths:
        raise DataError(f"no file matches {source!r}")
    files: list[str] = []
    for p in paths:
        if fs.isdir(p):
            files.extend(
                f
                for f in sorted(fs.find(p))
                if f.endswith((".parquet", ".pq", ".csv", ".csv.gz"))
            )
        elif fs.exists(p):
            files.append(p)
    if not files:
        raise DataError(f"file not found: {source!r} matches no Parquet or CSV file")
    return fs, files


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
            with fs.open(f, "rb") as fh:  # type: ignore[attr-defined]
                if f.endswith((".csv", ".csv.gz")):
                    frame = pd.read_csv(
                        fh, usecols=list(columns) if columns else None,
                        compression="gzip" if f.endswith(".gz") else None,
                    )
                else:
                    frame = pq.read_table(fh, columns=list(columns) if columns else None).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read {f!r}: {exc}") from exc
        except ValueError as exc:
            raise DataError(f"cannot read {f!r}: {exc}") from exc
        frames.append(frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)
