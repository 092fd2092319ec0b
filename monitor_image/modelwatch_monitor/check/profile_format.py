"""The reference profile's model and its JSON form (written and read back unchanged).

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

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Final, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelwatch_monitor.check.documents import ReferencePerformance
from modelwatch_monitor.check.drift import Counts, Distribution, FeatureType
from modelwatch_monitor.store.dataio import DataError

PROFILE_KIND: Final = "modelwatch-profile"
PROFILE_SCHEMA: Final = 1
DEFAULT_GRID_SIZE: Final = 10_000


class ColumnDoc(TypedDict, total=False):
    """One column of the profile's JSON form (the numeric or the categorical keys)."""

    type: FeatureType
    dtype: str
    rows: int
    nulls: int
    nullRate: float
    min: float
    max: float
    mean: float
    std: float
    n: int
    rankError: float
    support: str
    cdf: str
    counts: dict[str, int]


class ProfileDoc(TypedDict, total=False):
    """The profile's JSON form (see the module docstring)."""

    kind: str
    schema: int
    created: str
    source: str
    rows: int
    mode: str
    gridSize: int
    roles: dict[str, str]
    columns: dict[str, ColumnDoc]
    performance: ReferencePerformance | None


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

    def to_dict(self) -> ColumnDoc:
        out: ColumnDoc = {
            "type": self.type,
            "dtype": self.dtype,
            "rows": self.rows,
            "nulls": self.nulls,
            "nullRate": self.null_rate,
        }
        s = self.summary
        if isinstance(s, Distribution):
            out.update(
                {
                    "min": s.min,
                    "max": s.max,
                    "mean": s.mean,
                    "std": s.std,
                    "n": s.n,
                    "rankError": s.rank_error,
                    "support": _b64(s.support),
                    "cdf": _b64(s.cdf_values()),
                }
            )
        elif isinstance(s, Counts):
            out["counts"] = dict(s.counts)
        return out

    @classmethod
    def from_dict(cls, name: str, d: ColumnDoc) -> ColumnProfile:
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
    performance: ReferencePerformance | None = None

    @property
    def features(self) -> list[str]:
        skip = set(self.roles.names())
        return [c for c in self.columns if c not in skip]

    def to_dict(self) -> ProfileDoc:
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
    def from_dict(cls, d: ProfileDoc) -> Profile:
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
                doc: ProfileDoc = json.load(fh)
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


def _b64(a: ArrayLike) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _unb64(s: str) -> NDArray[np.float64]:
    return np.frombuffer(base64.b64decode(s), dtype="<f8").astype(np.float64)


def is_profile_uri(uri: str) -> bool:
    """A reference given as ``*.json`` is a profile; anything else is raw data."""
    return uri.lower().endswith(".json")
