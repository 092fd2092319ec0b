"""The training and holdout data of a retrain, from the reference, recent and labels data.

:func:`assemble` reads and joins the data the plan names and holds out its most recent
labeled slice (or a given holdout set); :func:`prepare` checks there is enough of it and
types it with the feature schema both models are scored with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pandas as pd

from modelwatch_monitor import contract
from modelwatch_monitor.store.dataio import DataError, read_table
from modelwatch_monitor.store.feature_schema import Feature, SchemaError, coerce_frame, infer_schema
from modelwatch_monitor.train.plan import Plan
from modelwatch_monitor.train.reasons import (
    CONFIG_ERROR,
    DATA_ERROR,
    NOT_ENOUGH_LABELS,
    RetrainError,
)

log = logging.getLogger(__name__)

MIN_HOLDOUT_ROWS = 10  # the fewest holdout (and training) rows a retrain works with


class Window(TypedDict):
    """The first and last time of a table's rows (ISO 8601)."""

    start: str
    end: str


class TrainingInfo(TypedDict):
    """Where the training rows came from (recorded under ``metadata.json`` ``training``)."""

    trainingData: str
    sources: dict[str, int]
    window: Window | None
    recentNote: NotRequired[str]


class HoldoutInfo(TypedDict):
    """Where the holdout rows came from (recorded under ``metadata.json`` ``holdout``)."""

    source: str
    fraction: NotRequired[float]
    window: NotRequired[Window | None]


@dataclass
class Dataset:
    """The assembled training and holdout tables, with provenance."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    features: list[str]
    training_info: TrainingInfo
    holdout_info: HoldoutInfo


@dataclass
class TrainingSet:
    """The assembled data, checked and typed: what the search and the comparison use."""

    data: Dataset
    schema: list[Feature]
    X_train: pd.DataFrame
    y_train: pd.Series
    y_holdout: pd.Series
    n_classes: int


def _read(uri: str, what: str) -> pd.DataFrame:
    try:
        frame = read_table(uri)
    except DataError as exc:
        raise RetrainError(DATA_ERROR, f"{what}: {exc}") from exc
    log.info("read %s: %d rows, %d columns from %s", what, len(frame), frame.shape[1], uri)
    return frame


def _time_column(plan: Plan, frame: pd.DataFrame) -> str | None:
    for name in (plan.timestamp_column, contract.LOG_TIMESTAMP):
        if name and name in frame.columns:
            return name
    return None


def _sort_by_time(frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
    if column is None:
        return frame.reset_index(drop=True)
    out = frame.copy()
    out[column] = pd.to_datetime(out[column], utc=True, errors="coerce")
    return out.sort_values(column, kind="stable").reset_index(drop=True)


def _join_key(ids: pd.Series) -> pd.Series:
    """Return ids as strings, integral floats as integers (CSV reads ``7`` as ``7.0``)."""
    if pd.api.types.is_float_dtype(ids.dtype):
        finite = ids.dropna()
        if (finite % 1 == 0).all():
            ids = ids.astype("Int64")
    return ids.astype("string")


def load_recent(plan: Plan) -> tuple[pd.DataFrame, str | None, str]:
    """Return the labeled recent rows, sorted by time, their time column, and a note.

    The current data (by default the server's prediction logs) is joined with the labels
    on the id column; when no labels are configured, current rows that carry the target
    are used as they are.
    """
    assert plan.current_uri is not None
    current = _read(plan.current_uri, "current data")
    tcol = _time_column(plan, current)
    current = _sort_by_time(current, tcol)
    if plan.current_window and tcol is not None and len(current):
        try:
            seconds = contract.parse_duration(plan.current_window)
        except contract.ContractError as exc:
            raise RetrainError(CONFIG_ERROR, f"spec.data.current.window: {exc}") from exc
        newest = current[tcol].max()
        current = current[current[tcol] >= newest - pd.Timedelta(seconds=seconds)]
    if plan.labels_uri:
        labels = _read(plan.labels_uri, "labels")
        lid = plan.labels_id_column or plan.id_column
        if not lid:
            raise RetrainError(
                CONFIG_ERROR, "spec.model.idColumn (or spec.data.labels.idColumn) is required"
            )
        if lid not in labels.columns:
            raise RetrainError(
                DATA_ERROR,
                f"labels {plan.labels_uri} have no id column {lid!r} "
                f"(columns: {', '.join(map(str, labels.columns[:20]))})",
            )
        if plan.target not in labels.columns:
            raise RetrainError(
                DATA_ERROR, f"labels {plan.labels_uri} have no target column {plan.target!r}"
            )
        cid = plan.id_column or lid
        if cid not in current.columns:
            raise RetrainError(
                DATA_ERROR,
                f"current data {plan.current_uri} has no id column {cid!r}: requests to the "
                "model server must carry it so that labels can be joined",
            )
        lab = labels[[lid, plan.target]].dropna(subset=[plan.target])
        lab = lab.assign(_mw_key=_join_key(lab[lid])).drop_duplicates("_mw_key", keep="last")
        cur = current.drop(columns=[plan.target], errors="ignore")
        cur = cur.assign(_mw_key=_join_key(cur[cid])).drop_duplicates("_mw_key", keep="last")
        joined = cur.merge(lab[["_mw_key", plan.target]], on="_mw_key", how="inner")
        joined = joined.drop(columns=["_mw_key"])
        note = f"{len(joined)} of {len(current)} current rows joined with labels on {cid!r}"
    elif plan.target in current.columns:
        joined = current.dropna(subset=[plan.target])
        note = f"{len(joined)} current rows carry the target {plan.target!r}"
    else:
        joined = current.iloc[0:0]
        note = (
            "no labels: spec.data.labels.uri is not set and the current data has no "
            f"target column {plan.target!r}"
        )
    joined = _sort_by_time(joined, tcol)
    if plan.since is not None and tcol is not None and len(joined):
        joined, note = _since_onset(joined, tcol, plan, note)
    return joined, tcol, note


def _since_onset(
    joined: pd.DataFrame, tcol: str, plan: Plan, note: str
) -> tuple[pd.DataFrame, str]:
    """Keep the rows logged since the violations began, when they are enough to train on.

    The traffic before the change is the old normal: a challenger trained on a mix of both
    would be judged against that mix once it serves, and drift again on its own traffic.
    """
    assert plan.since is not None
    times = pd.to_datetime(joined[tcol], utc=True, errors="coerce")
    since = pd.Timestamp(plan.since)
    recent = joined[(times >= since).to_numpy()]
    when = plan.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(recent) >= max(plan.min_labeled_rows, 1):
        return recent, f"{note}; {len(recent)} of them since the violations began at {when}"
    log.warning(
        "only %d labeled rows since the violations began at %s (minLabeledRows %d): "
        "training on the whole window",
        len(recent),
        when,
        plan.min_labeled_rows,
    )
    return joined, f"{note}; only {len(recent)} since {when}, so the whole window is used"


def _feature_names(plan: Plan, frames: Sequence[pd.DataFrame]) -> list[str]:
    if plan.feature_order:
        return list(plan.feature_order)
    excluded = {
        plan.target,
        plan.id_column,
        plan.timestamp_column,
        plan.prediction_column,
        plan.labels_id_column,
    }
    base = frames[0]
    names = [
        str(c)
        for c in base.columns
        if c not in excluded and not contract.is_log_meta_column(str(c))
    ]
    for other in frames[1:]:
        names = [n for n in names if n in other.columns]
    if not names:
        raise RetrainError(DATA_ERROR, "no feature columns left after removing target and ids")
    return names


def _window(frame: pd.DataFrame, tcol: str | None) -> Window | None:
    if tcol is None or tcol not in frame.columns or frame.empty:
        return None
    col = frame[tcol].dropna()
    if col.empty:
        return None
    return {"start": col.min().isoformat(), "end": col.max().isoformat()}


def fingerprint(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """Return a sha256 over the values and names of ``columns`` (row order matters)."""
    h = hashlib.sha256(json.dumps([str(c) for c in columns]).encode())
    if len(frame):
        sub = frame[list(columns)].copy()
        for c in sub.columns:
            if isinstance(sub[c].dtype, pd.CategoricalDtype):
                sub[c] = sub[c].astype("string")
        h.update(pd.util.hash_pandas_object(sub, index=False).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()


def _holdout_split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_hold = max(1, math.ceil(fraction * len(frame)))
    return frame.iloc[: len(frame) - n_hold], frame.iloc[len(frame) - n_hold :]


def assemble(plan: Plan) -> Dataset:
    """Assemble training and holdout tables as the plan says.

    Raises
    ------
    RetrainError
        ``DataError`` for unreadable data or missing columns, ``NotEnoughLabels`` when
        the recent window holds fewer labeled rows than ``minLabeledRows``.
    """
    if plan.train_uri:
        return _assemble_files(plan)
    need_recent = plan.training_data in ("recent", "both")
    reference = None
    if plan.reference_uri and not plan.reference_uri.endswith(".json"):
        reference = _read(plan.reference_uri, "reference data")
        if plan.target not in reference.columns:
            raise RetrainError(
                DATA_ERROR,
                f"reference data {plan.reference_uri} has no target column {plan.target!r}",
            )
        reference = reference.dropna(subset=[plan.target]).reset_index(drop=True)
    elif plan.training_data == "reference":
        raise RetrainError(
            CONFIG_ERROR,
            "spec.retrain.trainingData is 'reference' but spec.data.reference.uri is "
            f"{plan.reference_uri!r}, not raw data with the target (a profile cannot train)",
        )
    if reference is None:
        need_recent = True
    recent = None
    tcol: str | None = None
    note = ""
    if need_recent or plan.labels_uri:
        try:
            recent, tcol, note = load_recent(plan)
        except RetrainError as exc:
            if need_recent:
                if exc.reason == DATA_ERROR and "no file matches" in exc.message:
                    raise RetrainError(
                        NOT_ENOUGH_LABELS,
                        f"no recent data to train on yet: {exc.message}",
                    ) from exc
                raise
            log.warning("not using recent data for the holdout: %s", exc.message)
            recent = None
        if recent is not None:
            log.info("recent labeled data: %s", note)
    n_recent = 0 if recent is None else len(recent)
    if need_recent and n_recent < max(plan.min_labeled_rows, 1):
        raise RetrainError(
            NOT_ENOUGH_LABELS,
            f"{n_recent} labeled recent rows, fewer than minLabeledRows "
            f"{plan.min_labeled_rows}" + (f" ({note})" if note else ""),
        )
    use_recent_holdout = recent is not None and n_recent >= max(plan.min_labeled_rows, 1)
    frames = [f for f in (reference, recent) if f is not None]
    features = _feature_names(plan, frames)
    for frame, what in ((reference, "reference data"), (recent, "recent data")):
        if frame is not None and (use_recent_holdout or frame is reference):
            missing = [c for c in features if c not in frame.columns]
            if missing:
                raise RetrainError(DATA_ERROR, f"{what} has no feature column {missing[0]!r}")
    parts: list[pd.DataFrame] = []
    sources: dict[str, int] = {}
    if use_recent_holdout:
        assert recent is not None
        recent_train, holdout = _holdout_split(recent, plan.holdout_fraction)
        holdout_info: HoldoutInfo = {
            "source": "recent",
            "fraction": plan.holdout_fraction,
            "window": _window(holdout, tcol),
        }
        if plan.training_data in ("recent", "both"):
            parts.append(recent_train)
            sources["recent"] = len(recent_train)
        if plan.training_data in ("reference", "both") and reference is not None:
            parts.insert(0, reference)
            sources["reference"] = len(reference)
    else:
        assert reference is not None
        rtcol = _time_column(plan, reference)
        ref_sorted = _sort_by_time(reference, rtcol)
        ref_train, holdout = _holdout_split(ref_sorted, plan.holdout_fraction)
        parts.append(ref_train)
        sources["reference"] = len(ref_train)
        holdout_info = {
            "source": "reference",
            "fraction": plan.holdout_fraction,
            "window": _window(holdout, rtcol),
        }
    cols = [*features, plan.target]
    train = pd.concat([p[cols] for p in parts], ignore_index=True)
    training_info: TrainingInfo = {
        "trainingData": plan.training_data,
        "sources": sources,
        "window": _window(recent_train, tcol) if "recent" in sources else None,
        "recentNote": note,
    }
    return Dataset(
        train=train,
        holdout=holdout.reset_index(drop=True),
        features=features,
        training_info=training_info,
        holdout_info=holdout_info,
    )


def _assemble_files(plan: Plan) -> Dataset:
    assert plan.train_uri is not None
    train = _read(plan.train_uri, "training data")
    if plan.target not in train.columns:
        raise RetrainError(DATA_ERROR, f"training data has no target column {plan.target!r}")
    train = train.dropna(subset=[plan.target])
    tcol = _time_column(plan, train)
    train = _sort_by_time(train, tcol)
    if plan.holdout_uri:
        holdout = _read(plan.holdout_uri, "holdout data")
        if plan.target not in holdout.columns:
            raise RetrainError(DATA_ERROR, f"holdout data has no target column {plan.target!r}")
        holdout = holdout.dropna(subset=[plan.target]).reset_index(drop=True)
        hinfo: HoldoutInfo = {"source": plan.holdout_uri, "window": _window(holdout, tcol)}
    else:
        train, holdout = _holdout_split(train, plan.holdout_fraction)
        hinfo = {"source": "train", "fraction": plan.holdout_fraction}
    features = _feature_names(plan, [train, holdout])
    for frame, what in ((train, "training data"), (holdout, "holdout data")):
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise RetrainError(DATA_ERROR, f"{what} has no feature column {missing[0]!r}")
    cols = [*features, plan.target]
    return Dataset(
        train=pd.DataFrame(train[cols]).reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
        features=features,
        training_info={
            "trainingData": "file",
            "sources": {"train": len(train)},
            "window": _window(train, tcol),
        },
        holdout_info=hinfo,
    )


def _target(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    y = frame[plan.target]
    if plan.task == "regression":
        try:
            return pd.to_numeric(y, errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise RetrainError(
                DATA_ERROR, f"target column {plan.target!r} must be numeric: {exc}"
            ) from exc
    if y.dtype.kind == "f" and (y.dropna() % 1 == 0).all():
        return y.astype("int64")
    return y


def prepare(plan: Plan) -> TrainingSet:
    """Assemble the data and check it can train and score a model; type it with its schema.

    Raises
    ------
    RetrainError
        ``NotEnoughLabels`` for too few rows or a single class, ``DataError`` for a
        target or feature column the schema cannot type.
    """
    data = assemble(plan)
    y_train = _target(data.train, plan)
    y_holdout = _target(data.holdout, plan)
    if len(data.holdout) < MIN_HOLDOUT_ROWS:
        raise RetrainError(
            NOT_ENOUGH_LABELS,
            f"the holdout has {len(data.holdout)} rows, fewer than {MIN_HOLDOUT_ROWS}",
        )
    if len(data.train) < MIN_HOLDOUT_ROWS:
        raise RetrainError(
            NOT_ENOUGH_LABELS, f"{len(data.train)} training rows are too few to train on"
        )
    n_classes = 0
    if plan.task == "classification":
        n_classes = int(y_train.nunique())
        if n_classes < 2:
            raise RetrainError(
                NOT_ENOUGH_LABELS, f"the training rows hold {n_classes} class(es); need 2"
            )
    try:
        schema = infer_schema(data.train, data.features, declared=plan.declared_features)
        X_train = coerce_frame(data.train, schema)
        coerce_frame(data.holdout, schema)
    except SchemaError as exc:
        raise RetrainError(DATA_ERROR, str(exc)) from exc
    return TrainingSet(
        data=data,
        schema=list(schema),
        X_train=X_train,
        y_train=y_train,
        y_holdout=y_holdout,
        n_classes=n_classes,
    )
