"""The reference profile: computed once from the reference data, reused by every check.

``modelwatch profile REF --output PROFILE`` writes a JSON document::

    {"kind": "modelwatch-profile", "schema": 1, "created": "...", "source": "...",
     "rows": 1000000, "mode": "exact" | "sketch", "gridSize": 10000,
     "roles": {"id": ..., "timestamp": ..., "prediction": ..., "target": ...},
     "columns": {
        "<name>": {"type": "numeric", "dtype": "double", "rows": n, "nulls": k,
                   "nullRate": k / n, "min": ..., "max": ..., "mean": ..., "std": ...,
                   "support": "<base64 float64>", "cdf": "<base64 float64>",
                   "rankError": e},
        "<name>": {"type": "categorical", "dtype": "string", "rows": n, "nulls": k,
                   "nullRate": ..., "counts": {"a": 10, ...}}},
     "performance": {"task": ..., "metrics": {"accuracy": ..., "roc_auc": ...},
                     "calibration": {...}}  (when the reference has the target and the
                                             prediction; roc_auc, log_loss and the
                                             calibration of estimated performance
                                             need proba_<class> columns too)}

A numeric column is stored as its exact empirical CDF when it has at most
``gridSize + 1`` distinct values, else as the ``gridSize + 1`` quantiles ``j / G`` with
their exact CDF values; ``rankError`` bounds ``|F_profile(x) - F_reference(x)|``
(the largest reference mass between two grid points, about ``1 / G``). In sketch mode
(larger than memory, streamed) the quantiles come from a KLL sketch (``k = 4000``)
and ``rankError`` is its documented normalised rank error (about 0.0007 at 99%
confidence).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import Counts, Distribution, FeatureType
from modelwatch_monitor.check.estimation import reference_calibration
from modelwatch_monitor.check.performance import reference_metrics
from modelwatch_monitor.store.dataio import DataError, Source, open_source

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

PROFILE_KIND: Final = "modelwatch-profile"
PROFILE_SCHEMA: Final = 1
DEFAULT_GRID_SIZE: Final = 10_000
KLL_K: Final = 4000
MAX_CATEGORIES: Final = 10_000
OTHER_CATEGORY: Final = "__other__"
DEFAULT_MEMORY_BUDGET: Final = 1 << 30


@dataclass(frozen=True)
class Roles:
    """Which columns are not features."""

    id: str | None = None
    timestamp: str | None = None
    prediction: str | None = None
    target: str | None = None

    def names(self) -> list[str]:
        return [c for c in (self.id, self.timestamp, self.prediction, self.target) if c]


@dataclass(frozen=True)
class ColumnProfile:
    """One column's summary: dtype, null counts and the distribution of its values."""

    name: str
    type: FeatureType
    dtype: str
    rows: int
    nulls: int
    summary: Distribution | Counts | None

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "dtype": self.dtype,
            "rows": self.rows,
            "nulls": self.nulls,
            "nullRate": self.null_rate,
        }
        s = self.summary
        if isinstance(s, Distribution):
            out.update(
                min=s.min,
                max=s.max,
                mean=s.mean,
                std=s.std,
                n=s.n,
                rankError=s.rank_error,
                support=_b64(s.support),
                cdf=_b64(s.cdf_values()),
            )
        elif isinstance(s, Counts):
            out["counts"] = dict(s.counts)
        return out

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> ColumnProfile:
        summary: Distribution | Counts | None = None
        if d["type"] == "numeric" and "support" in d:
            summary = Distribution(
                support=_unb64(d["support"]),
                cdf=_unb64(d["cdf"]),
                n=int(d["n"]),
                mean=float(d["mean"]),
                std=float(d["std"]),
                rank_error=float(d.get("rankError", 0.0)),
            )
        elif d["type"] == "categorical" and "counts" in d:
            summary = Counts({str(k): int(v) for k, v in d["counts"].items()})
        return cls(name, d["type"], d["dtype"], int(d["rows"]), int(d["nulls"]), summary)


@dataclass
class Profile:
    """A reference profile (see the module docstring for its JSON form)."""

    rows: int
    columns: dict[str, ColumnProfile]
    roles: Roles = field(default_factory=Roles)
    source: str = ""
    mode: str = "exact"
    grid_size: int = DEFAULT_GRID_SIZE
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    performance: dict[str, Any] | None = None

    @property
    def features(self) -> list[str]:
        skip = set(self.roles.names())
        return [c for c in self.columns if c not in skip]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PROFILE_KIND,
            "schema": PROFILE_SCHEMA,
            "created": self.created,
            "source": self.source,
            "rows": self.rows,
            "mode": self.mode,
            "gridSize": self.grid_size,
            "roles": {k: v for k, v in vars(self.roles).items() if v},
            "columns": {n: c.to_dict() for n, c in self.columns.items()},
            "performance": self.performance,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        if d.get("kind") != PROFILE_KIND:
            raise DataError("not a modelwatch profile: 'kind' is not 'modelwatch-profile'")
        if d.get("schema") != PROFILE_SCHEMA:
            raise DataError(f"profile schema {d.get('schema')!r} is not supported")
        return cls(
            rows=int(d["rows"]),
            columns={n: ColumnProfile.from_dict(n, c) for n, c in d["columns"].items()},
            roles=Roles(**d.get("roles", {})),
            source=str(d.get("source", "")),
            mode=str(d.get("mode", "exact")),
            grid_size=int(d.get("gridSize", DEFAULT_GRID_SIZE)),
            created=str(d.get("created", "")),
            performance=d.get("performance"),
        )

    def save(self, uri: str) -> None:
        """Write the profile as JSON to a path or fsspec URI (temp name, then rename)."""
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        fs, path = fsspec.core.url_to_fs(uri)
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        if not isinstance(fs, LocalFileSystem):
            # An object-store PUT is atomic: readers see the whole profile or the old one.
            fs.pipe_file(path, text.encode())
            return
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with fs.open(tmp, "w") as fh:
            fh.write(text)
        fs.mv(tmp, path)

    @classmethod
    def load(cls, uri: str) -> Profile:
        """Read a profile JSON; raise DataError when it is not one."""
        import fsspec

        try:
            with fsspec.open(uri, "r") as fh:
                doc = json.load(fh)
        except FileNotFoundError as exc:
            raise DataError(f"file not found: profile {uri!r}") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read profile {uri!r}: {exc}") from exc
        if not isinstance(doc, dict):
            raise DataError(f"{uri!r} is not a modelwatch profile")
        try:
            return cls.from_dict(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{uri!r} is not a valid modelwatch profile: {exc}") from exc


def _b64(a: np.ndarray[Any, Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _unb64(s: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.frombuffer(base64.b64decode(s), dtype="<f8").astype(np.float64)


def is_profile_uri(uri: str) -> bool:
    """A reference given as ``*.json`` is a profile; anything else is raw data."""
    return uri.lower().endswith(".json")


# ---------------------------------------------------------------------------
# Column types and summaries
# ---------------------------------------------------------------------------


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
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
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


def feature_types(
    source: Source,
    roles: Roles,
    *,
    features: Sequence[str] | None = None,
    overrides: Mapping[str, FeatureType] | None = None,
) -> dict[str, FeatureType]:
    """Map each feature column to its type: the override, else the inferred type.

    Parameters
    ----------
    features : sequence of str, optional
        The feature columns; default every column that has no role and a usable type.
    overrides : mapping, optional
        ``{column: "numeric" | "categorical"}``.
    """
    overrides = dict(overrides or {})
    skip = set(roles.names())
    names = (
        list(features)
        if features
        else [c for c in source.columns if c not in skip and not contract.is_log_meta_column(c)]
    )
    source.require(names, "feature column")
    out: dict[str, FeatureType] = {}
    for n in names:
        t = overrides.get(n) or infer_type(source.schema.field(n).type)
        if t is None:
            if features:
                raise DataError(
                    f"feature column {n!r} has type {source.schema.field(n).type}, "
                    "which is neither numeric nor categorical"
                )
            continue
        out[n] = t
    return out


def memory_budget() -> int:
    """Bytes the exact mode may hold: ``MODELWATCH_MEMORY_BUDGET``, else half the cgroup
    memory limit, else 1 GiB."""
    env = os.environ.get("MODELWATCH_MEMORY_BUDGET")
    if env:
        return int(float(env))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
            if text != "max" and int(text) < (1 << 50):
                return int(text) // 2
        except (OSError, ValueError):
            continue
    return DEFAULT_MEMORY_BUDGET


def choose_mode(rows: int, n_columns: int, mode: str = "auto", budget: int | None = None) -> str:
    """``exact`` when the columns fit the memory budget as float64, else ``sketch``."""
    if mode in ("exact", "sketch"):
        return mode
    if mode != "auto":
        raise ValueError(
            f"The 'mode' parameter must be 'auto', 'exact' or 'sketch'. Got {mode!r} instead."
        )
    budget = memory_budget() if budget is None else budget
    return "exact" if rows * max(n_columns, 1) * 8 <= budget else "sketch"


def summarize(
    source: Source,
    types: Mapping[str, FeatureType],
    *,
    mode: str,
    grid_size: int = DEFAULT_GRID_SIZE,
    batch_rows: int = 262_144,
) -> dict[str, ColumnProfile]:
    """Summarise every typed column of ``source``, column by column or streaming."""
    if mode == "exact":
        return {
            n: profile_column(source.column(n), n, t, grid_size=grid_size) for n, t in types.items()
        }
    accs: dict[str, NumericAccumulator | CategoricalAccumulator] = {}
    for n, t in types.items():
        dtype = str(source.schema.field(n).type)
        accs[n] = (
            NumericAccumulator(n, dtype) if t == "numeric" else CategoricalAccumulator(n, dtype)
        )
    for batch in source.batches(list(types), batch_rows=batch_rows):
        for i, n in enumerate(types):
            accs[n].update(batch.column(i))
    return {n: a.result() for n, a in accs.items()}


def build_profile(
    source: Source | str,
    *,
    roles: Roles | None = None,
    features: Sequence[str] | None = None,
    overrides: Mapping[str, FeatureType] | None = None,
    task: str | None = None,
    mode: str = "auto",
    grid_size: int = DEFAULT_GRID_SIZE,
) -> Profile:
    """Compute the reference profile of ``source``.

    When the reference carries both the target and the prediction column and
    ``task`` is given, the profile also records the reference metrics (the
    performance baseline).
    """
    src = open_source(source) if isinstance(source, str) else source
    roles = roles or Roles()
    types = feature_types(src, roles, features=features, overrides=overrides)
    rows = src.count_rows()
    if rows == 0:
        raise DataError(f"the reference {src.uri!r} has no rows")
    chosen = choose_mode(rows, len(types), mode)
    columns = summarize(src, types, mode=chosen, grid_size=grid_size)
    for n, c in columns.items():
        if c.summary is None:
            raise DataError(
                f"feature column {n!r} in the reference {src.uri!r} has no non-null value"
            )
    performance = _reference_performance(src, roles, task)
    return Profile(
        rows=rows,
        columns=columns,
        roles=roles,
        source=src.uri,
        mode=chosen,
        grid_size=grid_size,
        performance=performance,
    )


def _reference_performance(src: Source, roles: Roles, task: str | None) -> dict[str, Any] | None:
    """The reference metrics (baselines) and, for a classifier that logged its
    probabilities, the calibration behind estimated performance."""
    if not task or not roles.target or roles.target not in src.columns:
        return None
    proba_cols = [c for c in src.columns if c.startswith(contract.LOG_PROBA_PREFIX)]
    if task != "classification":
        proba_cols = []
    has_pred = bool(roles.prediction and roles.prediction in src.columns)
    if not has_pred and not proba_cols:
        return None
    names = [roles.target, *([roles.prediction] if has_pred else []), *proba_cols]
    table = src.table([n for n in names if n])
    target = table.column(0).to_numpy(zero_copy_only=False)
    proba = {
        c[len(contract.LOG_PROBA_PREFIX) :]: table.column(c).to_numpy(zero_copy_only=False)
        for c in proba_cols
    }
    if has_pred:
        prediction = table.column(1).to_numpy(zero_copy_only=False)
    else:  # no prediction column: the most probable class is the prediction
        classes = sorted(proba)
        stacked = np.column_stack([np.nan_to_num(proba[c].astype(np.float64)) for c in classes])
        if len(classes) == 1:  # one column: the positive class of a binary model
            stacked = np.column_stack([1.0 - stacked[:, 0], stacked[:, 0]])
        labels = np.asarray(classes if len(classes) > 1 else ["0", classes[0]], dtype=object)
        prediction = labels[stacked.argmax(axis=1)]
    performance: dict[str, Any] = {
        "task": task,
        "metrics": reference_metrics(target, prediction, task, proba=proba or None),
    }
    if proba:
        calibration = reference_calibration(target, proba)
        if calibration is not None:
            performance["calibration"] = calibration
    return performance


def parse_type_overrides(
    numeric: Iterable[str] = (), categorical: Iterable[str] = ()
) -> dict[str, FeatureType]:
    out: dict[str, FeatureType] = {}
    for group, t in ((numeric, "numeric"), (categorical, "categorical")):
        for item in group:
            for name in item.split(","):
                if name.strip():
                    out[name.strip()] = t  # type: ignore[assignment]
    return out


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def add_role_arguments(parser: argparse.ArgumentParser) -> None:
    """Column role and type options shared by ``profile`` and ``check``."""
    parser.add_argument("--id-column", help="the id column (joins labels to predictions)")
    parser.add_argument("--timestamp-column", help="the timestamp column")
    parser.add_argument("--prediction-column", help="the prediction column")
    parser.add_argument("--target", help="the target (label) column")
    parser.add_argument(
        "--features", help="comma-separated feature columns (default: every other column)"
    )
    parser.add_argument(
        "--numeric", action="append", default=[], help="treat these columns as numeric"
    )
    parser.add_argument(
        "--categorical", action="append", default=[], help="treat these columns as categorical"
    )
    parser.add_argument("--task", choices=["classification", "regression"], help="the model's task")
    parser.add_argument(
        "--mode",
        choices=["auto", "exact", "sketch"],
        default="auto",
        help="exact (column by column in memory) or sketch (streamed, KLL); "
        "auto picks exact when the data fits MODELWATCH_MEMORY_BUDGET",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="reference data: Parquet/CSV file, folder, glob or URI")
    parser.add_argument("--output", "-o", required=True, help="where to write the profile JSON")
    parser.add_argument(
        "--grid-size", type=int, default=DEFAULT_GRID_SIZE, help="quantile grid steps"
    )
    add_role_arguments(parser)


def roles_from_args(args: argparse.Namespace) -> Roles:
    return Roles(
        id=args.id_column,
        timestamp=args.timestamp_column,
        prediction=args.prediction_column,
        target=args.target,
    )


def run(args: argparse.Namespace) -> int:
    try:
        profile = build_profile(
            args.reference,
            roles=roles_from_args(args),
            features=[f for f in args.features.split(",") if f] if args.features else None,
            overrides=parse_type_overrides(args.numeric, args.categorical),
            task=args.task,
            mode=args.mode,
            grid_size=args.grid_size,
        )
        profile.save(args.output)
    except (DataError, ValueError) as exc:
        print(json.dumps({"ok": False, "reason": "DataError", "message": str(exc)}))
        return 2
    print(
        json.dumps(
            {
                "ok": True,
                "profile": args.output,
                "rows": profile.rows,
                "features": len(profile.features),
                "mode": profile.mode,
            }
        )
    )
    return 0
