"""The feature schema of a trained model: column names, kinds and categories.

The schema is fixed at training time, stored in the version's ``metadata.json`` and
applied twice: by :func:`coerce_frame` to every table a model is trained or scored on, and
by :func:`frame_from_records` to every ``/predict`` request. Both produce the same
dtypes, so a model never sees a column typed differently from its training data.

Kinds
-----
``numeric``
    Cast to ``float64``; missing values become NaN.
``boolean``
    ``True``/``False`` cast to ``float64`` (1.0/0.0).
``categorical``
    Values as strings in a ``pandas.Categorical`` whose categories are the ones seen in
    training, in sorted order; an unseen value becomes missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

Kind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean")


class FeatureDoc(TypedDict):
    """The JSON form of a :class:`Feature` (an entry of ``metadata.json`` ``features``)."""

    name: str
    type: Kind
    dtype: NotRequired[str]
    categories: NotRequired[list[str]]


class SchemaError(ValueError):
    """A table or a request does not fit the schema; ``column`` names the culprit.

    Parameters
    ----------
    column : str
        The offending column.
    message : str
        What is wrong, in a sentence a user can act on.
    """

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Feature:
    """One input column of a model.

    Parameters
    ----------
    name : str
        Column name.
    kind : {"numeric", "categorical", "boolean"}
        How values are typed (see the module docstring).
    categories : tuple of str, optional
        The categories seen in training (categorical features only).
    dtype : str, optional
        The column's dtype in the training data, for the record (``int64``, ``str``...).
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] | None = None
    dtype: str | None = None

    def to_json(self) -> FeatureDoc:
        """Return the JSON form stored in ``metadata.json``."""
        doc: FeatureDoc = {"name": self.name, "type": self.kind}
        if self.dtype is not None:
            doc["dtype"] = self.dtype
        if self.categories is not None:
            doc["categories"] = list(self.categories)
        return doc

    @classmethod
    def from_json(cls, doc: FeatureDoc) -> Feature:
        """Read a feature back from its JSON form (parsed, not yet checked)."""
        kind = doc.get("type", "numeric")
        if kind not in KINDS:
            raise SchemaError(str(doc.get("name")), f"unknown feature type {kind!r}")
        cats = doc.get("categories")
        return cls(
            name=str(doc["name"]),
            kind=kind,
            categories=None if cats is None else tuple(str(c) for c in cats),
            dtype=doc.get("dtype"),
        )


def schema_to_json(schema: Sequence[Feature]) -> list[FeatureDoc]:
    """Return the JSON list form of a schema."""
    return [f.to_json() for f in schema]


def schema_from_json(docs: Iterable[FeatureDoc]) -> list[Feature]:
    """Read a schema from its JSON list form."""
    return [Feature.from_json(d) for d in docs]


def _as_strings(series: pd.Series) -> pd.Series:
    """Return ``series`` as nullable strings, keeping missing values missing."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    return series.astype("string")


def categorical(values: Sequence[object], categories: Sequence[str]) -> pd.Categorical:
    """Return ``values`` as a Categorical over ``categories``; other values become missing.

    Parameters
    ----------
    values : sequence of str or None, of length n_rows
    categories : sequence of str

    Returns
    -------
    pandas.Categorical of length n_rows
    """
    import numpy as np
    import pandas as pd

    lookup: dict[object, int] = {c: i for i, c in enumerate(categories)}
    codes = np.fromiter((lookup.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    return pd.Categorical.from_codes(codes, categories=list(categories))


def infer_schema(
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    declared: Mapping[str, str] | None = None,
) -> list[Feature]:
    """Infer the schema of ``names`` from a training table.

    Parameters
    ----------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
        The training table; every name in ``names`` must be a column.
    names : sequence of str
        The feature columns, in model order.
    declared : mapping of str to {"numeric", "categorical"}, optional
        Kinds the user declared (``spec.model.features``); the others are inferred:
        bool columns are boolean, numeric columns numeric, everything else categorical.

    Returns
    -------
    list of Feature
    """
    import pandas as pd

    declared = dict(declared or {})
    schema: list[Feature] = []
    for name in names:
        if name not in frame.columns:
            raise SchemaError(name, f"feature column {name!r} is missing from the training data")
        col = frame[name]
        kind = declared.get(name)
        if kind is None:
            if pd.api.types.is_bool_dtype(col.dtype):
                kind = "boolean"
            elif pd.api.types.is_numeric_dtype(col.dtype):
                kind = "numeric"
            else:
                kind = "categorical"
        if kind not in KINDS:
            raise SchemaError(
                name,
                f"The type of feature {name!r} must be one of {list(KINDS)}. Got {kind!r} instead.",
            )
        cats: tuple[str, ...] | None = None
        if kind == "categorical":
            values = _as_strings(col).dropna().unique()
            cats = tuple(sorted(str(v) for v in values))
        schema.append(
            Feature(name=name, kind=kind, categories=cats, dtype=str(col.dtype))  # type: ignore[arg-type]
        )
    return schema


def coerce_frame(frame: pd.DataFrame, schema: Sequence[Feature]) -> pd.DataFrame:
    """Return the feature columns of ``frame`` typed as the schema says.

    Parameters
    ----------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
    schema : sequence of Feature

    Returns
    -------
    pandas.DataFrame of shape (n_rows, len(schema))

    Raises
    ------
    SchemaError
        A column is missing or cannot be converted; the message names it.
    """
    import pandas as pd

    out: dict[str, pd.Categorical | pd.Series] = {}
    for feat in schema:
        if feat.name not in frame.columns:
            raise SchemaError(feat.name, f"column {feat.name!r} is missing")
        col = frame[feat.name]
        if feat.kind == "categorical":
            out[feat.name] = categorical(
                _as_strings(col).astype(object).where(col.notna(), None).tolist(),
                feat.categories or (),
            )
        else:
            try:
                if feat.kind == "boolean" and not pd.api.types.is_numeric_dtype(col.dtype):
                    col = col.astype("boolean")
                out[feat.name] = pd.to_numeric(col, errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise SchemaError(
                    feat.name, f"column {feat.name!r} must be {feat.kind}: {exc}"
                ) from exc
    return pd.DataFrame(out, index=frame.index)


_NUMERIC_TYPES = (int, float)


def frame_from_records(
    records: Sequence[Mapping[str, object]], schema: Sequence[Feature]
) -> pd.DataFrame:
    """Validate JSON records against the schema and return the model's input table.

    See :func:`frames_from_records`, of which this is the first table.
    """
    return frames_from_records(records, schema)[0]


def frames_from_records(
    records: Sequence[Mapping[str, object]], schema: Sequence[Feature]
) -> tuple[pd.DataFrame, dict[str, npt.NDArray[np.generic]]]:
    """Validate JSON records against the schema; return the model input and raw columns.

    Parameters
    ----------
    records : sequence of mapping
        One mapping per row, as decoded from a JSON request. Extra keys are ignored.
        ``null`` is a missing value; a categorical value never seen in training becomes
        missing as well.
    schema : sequence of Feature

    Returns
    -------
    model_input : pandas.DataFrame of shape (len(records), len(schema))
        Typed for the model: unseen categories are missing.
    raw : dict of str to numpy.ndarray of shape (len(records),)
        The same values by column, categorical ones as strings (object arrays, None for
        missing) with unseen values kept: what the prediction log stores, so the next
        check sees new categories.

    Raises
    ------
    SchemaError
        A column is missing from a record, a value has the wrong JSON type, or a number
        is not finite (``NaN``, ``Infinity``, ``1e999``). The message names the column
        and the row.
    """
    import numpy as np
    import pandas as pd

    out: dict[str, pd.Categorical | npt.NDArray[np.float64]] = {}
    raw: dict[str, npt.NDArray[np.generic]] = {}
    for feat in schema:
        name = feat.name
        try:
            values = [r[name] for r in records]
        except KeyError:
            row = next(i for i, r in enumerate(records) if name not in r)
            raise SchemaError(name, f"missing column {name!r} in record {row}") from None
        if feat.kind == "categorical":
            for i, v in enumerate(values):
                t = type(v)
                if t is str or v is None:
                    continue
                if t is int or t is bool:
                    values[i] = str(v)
                    continue
                raise SchemaError(
                    name,
                    f"column {name!r} must be a string (categorical); "
                    f"got {type(v).__name__} in record {i}",
                )
            out[name] = categorical(values, feat.categories or ())
            raw[name] = np.asarray(values, dtype=object)
        else:
            for i, v in enumerate(values):
                t = type(v)
                if v is None:
                    values[i] = math.nan
                elif t is bool:
                    if feat.kind != "boolean":
                        raise SchemaError(
                            name, f"column {name!r} must be a number; got bool in record {i}"
                        )
                elif t not in _NUMERIC_TYPES:
                    expected = "true/false" if feat.kind == "boolean" else "a number"
                    raise SchemaError(
                        name,
                        f"column {name!r} must be {expected}; got {type(v).__name__} in record {i}",
                    )
                elif isinstance(v, float) and not math.isfinite(v):  # t is int or float
                    raise SchemaError(
                        name,
                        f"column {name!r} must be a finite number; got {v!r} in record {i} "
                        "(NaN, Infinity and numbers beyond 1.8e308 are refused; send null for "
                        "a missing value)",
                    )
            try:
                out[name] = raw[name] = np.asarray(values, dtype=np.float64)
            except OverflowError:
                raise SchemaError(name, f"column {name!r} holds a number out of range") from None
    return pd.DataFrame(out), raw
