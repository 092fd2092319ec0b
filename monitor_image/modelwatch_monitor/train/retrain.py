"""``modelwatch retrain``: train a challenger with FLAML and compare it with the champion.

Two forms::

    modelwatch retrain --config /etc/modelwatch/config.json --version N
        [--champion-version M] [--trigger-report ID]

    modelwatch retrain --train DATA [--holdout DATA] --target COL
        --task classification|regression --time-budget SECONDS
        --store URI --model NAME --version N [--champion-version M]

Steps: assemble the training data (``spec.retrain.trainingData``: the reference data,
the labeled recent window, or both), hold out the most recent labeled slice (or a given
holdout set), run FLAML, score challenger and champion on the same holdout, write
version N to the registry, and report the contract result: to the termination-message
path and as the last line of stdout.

The challenger is promoted when it beats the champion by at least ``minImprovement``,
an absolute difference in the metric's own units, in the metric's better direction.
With the default metric (``auto``: ROC AUC or R², all greater-is-better and bounded)
0.01 means one point of AUC or R².
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelwatch_monitor import contract
from modelwatch_monitor.store import compat

if TYPE_CHECKING:
    import pandas as pd

    from modelwatch_monitor.train.automl import AutoMLSettings, FittedModel

log = logging.getLogger(__name__)

TRAINING_DATA = ("reference", "recent", "both")
MIN_HOLDOUT_ROWS = 10

# Result reasons (CamelCase, copied verbatim into the operator's conditions).
FIRST_VERSION = contract.PROMOTE_FIRST_VERSION
CHALLENGER_BETTER = contract.PROMOTE_CHALLENGER_BETTER
BELOW_MIN_IMPROVEMENT = contract.PROMOTE_BELOW_MIN_IMPROVEMENT
CHAMPION_UNUSABLE = contract.PROMOTE_CHAMPION_UNUSABLE
NOT_ENOUGH_LABELS = "NotEnoughLabels"
DATA_ERROR = "DataError"
CONFIG_ERROR = "ConfigError"
TRAINING_FAILED = "TrainingFailed"
VERSION_EXISTS = "VersionExists"
LOSS_MODEL_FILE = "loss-model.joblib"  # the regression loss model stored with a version
# The fewest holdout rows the version's reference profile is built from (else: training rows).
PROFILE_MIN_ROWS = 200
STORE_ERROR = "StoreError"
CHAMPION_HASH_MISMATCH = "ChampionHashMismatch"


class RetrainError(Exception):
    """The retrain cannot do its job.

    Parameters
    ----------
    reason : str
        A CamelCase reason from this module (``NotEnoughLabels``, ``DataError``...).
    message : str
        What went wrong, naming the file, column or parameter.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Plan:
    """Everything one retrain needs, validated, from either CLI form."""

    model: str
    store: str
    version: int
    task: str
    target: str
    automl: AutoMLSettings
    champion_version: int | None = None
    champion_sha256: str | None = None
    trigger_report: str = ""
    id_column: str | None = None
    timestamp_column: str | None = None
    prediction_column: str = contract.LOG_PREDICTION
    declared_features: dict[str, str] | None = None
    feature_order: list[str] | None = None
    training_data: str = "both"
    holdout_fraction: float = 0.2
    min_labeled_rows: int = 50
    min_improvement: float = 0.01
    reference_uri: str | None = None
    current_uri: str | None = None
    current_window: str | None = None
    since: dt.datetime | None = None
    labels_uri: str | None = None
    labels_id_column: str | None = None
    train_uri: str | None = None
    holdout_uri: str | None = None
    # The operator's reservation (--config): a version already published for it was written
    # by an earlier run of the same Job, and is reported rather than refused.
    reuse_published: bool = False


@dataclass
class Dataset:
    """The assembled training and holdout tables, with provenance."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    features: list[str]
    training_info: dict[str, Any] = field(default_factory=dict)
    holdout_info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``retrain`` options to ``parser``."""
    parser.add_argument("--config", help="job config JSON (the operator mounts it)")
    parser.add_argument(
        "--version", dest="model_version", type=int, required=True, help="version to write"
    )
    parser.add_argument("--champion-version", type=int, help="default: highest version below N")
    parser.add_argument(
        "--champion-sha256",
        help="the champion artifact's sha256 as the operator recorded it; a champion whose "
        "artifact differs fails the retrain",
    )
    parser.add_argument("--trigger-report", default="", help="id of the report behind this")
    parser.add_argument(
        "--since",
        help="RFC 3339 time the violations began: recent training data starts there (when it "
        "holds enough labeled rows; else the whole window)",
    )
    parser.add_argument(
        "--termination-log",
        default=contract.TERMINATION_MESSAGE_PATH,
        help="where to write the result (default: %(default)s)",
    )
    flags = parser.add_argument_group("without --config")
    flags.add_argument("--train", help="training data (Parquet/CSV file, folder, glob or URI)")
    flags.add_argument("--holdout", help="holdout data; default: the last rows of --train")
    flags.add_argument("--target", help="target column")
    flags.add_argument("--task", choices=["classification", "regression"])
    flags.add_argument("--time-budget", type=float, help="FLAML time budget in seconds")
    flags.add_argument("--store", help="model store path or URI")
    flags.add_argument("--model", help="model name")
    flags.add_argument("--metric", default="auto")
    flags.add_argument("--estimators", default="lgbm,rf,extra_tree", help="comma-separated")
    flags.add_argument("--seed", type=int, default=0)
    flags.add_argument("--min-improvement", type=float, default=0.01)
    flags.add_argument("--holdout-fraction", type=float, default=0.2)
    flags.add_argument("--id-column")
    flags.add_argument("--timestamp-column")
    flags.add_argument("--features", help="comma-separated feature columns (default: all)")
    parser.add_argument("--n-jobs", type=int, help="default: the container's CPU limit")


def run(args: argparse.Namespace) -> int:
    """Run one retrain; print and write the result; return the exit code."""
    start = time.perf_counter()
    version = int(args.model_version)
    trigger = str(args.trigger_report or "")
    try:
        plan = plan_from_config(args) if args.config else plan_from_flags(args)
        trigger = plan.trigger_report
        result = retrain(plan)
    except RetrainError as exc:
        log.error("retrain failed: %s: %s", exc.reason, exc.message)
        result = _failure(version, trigger, exc.reason, exc.message)
    except Exception as exc:  # a bug or an unforeseen library error: still report it
        log.exception("retrain failed unexpectedly")
        result = _failure(version, trigger, TRAINING_FAILED, f"{type(exc).__name__}: {exc}")
    result["seconds"] = round(time.perf_counter() - start, 2)
    text = contract.write_result(result, args.termination_log)
    print(text, flush=True)
    return 0 if result["ok"] else 1


def _failure(version: int, trigger: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "retrain",
        "ok": False,
        "version": version,
        "reason": reason,
        "message": message,
        "reportId": trigger,
    }


def _automl_settings(
    *, time_budget: Any, metric: Any, estimators: Any, seed: Any, n_jobs: int | None
) -> AutoMLSettings:
    from modelwatch_monitor.train.automl import AutoMLSettings, cpu_limit

    if isinstance(estimators, str):
        estimators = [e.strip() for e in estimators.split(",") if e.strip()]
    if not isinstance(estimators, list | tuple):
        raise RetrainError(
            CONFIG_ERROR,
            f"The 'estimators' parameter must be a list of names. Got {estimators!r} instead.",
        )
    if isinstance(time_budget, bool) or not isinstance(time_budget, int | float):
        raise RetrainError(
            CONFIG_ERROR,
            f"The 'timeBudgetSeconds' parameter must be a number > 0. Got {time_budget!r} instead.",
        )
    try:
        return AutoMLSettings(
            time_budget=float(time_budget),
            metric=str(metric),
            estimators=tuple(str(e) for e in estimators),
            seed=seed,
            n_jobs=n_jobs or cpu_limit(),
        )
    except ValueError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc


def _check_common(plan: Plan) -> Plan:
    if plan.version < 1:
        raise RetrainError(
            CONFIG_ERROR, f"The 'version' parameter must be >= 1. Got {plan.version} instead."
        )
    if plan.champion_version is not None and not 1 <= plan.champion_version < plan.version:
        raise RetrainError(
            CONFIG_ERROR,
            f"The 'champion-version' parameter must be between 1 and {plan.version - 1}. "
            f"Got {plan.champion_version} instead.",
        )
    if plan.training_data not in TRAINING_DATA:
        raise RetrainError(
            CONFIG_ERROR,
            f"The 'trainingData' parameter of spec.retrain must be one of {list(TRAINING_DATA)}."
            f" Got {plan.training_data!r} instead.",
        )
    if not 0.0 < plan.holdout_fraction < 1.0:
        raise RetrainError(
            CONFIG_ERROR,
            "The 'holdoutFraction' parameter must be in (0, 1). "
            f"Got {plan.holdout_fraction!r} instead.",
        )
    if plan.min_labeled_rows < 0:
        raise RetrainError(
            CONFIG_ERROR,
            f"The 'minLabeledRows' parameter must be >= 0. Got {plan.min_labeled_rows} instead.",
        )
    if not -1.0 <= plan.min_improvement <= 1.0:
        raise RetrainError(
            CONFIG_ERROR,
            "The 'minImprovement' parameter must be in [-1, 1]. "
            f"Got {plan.min_improvement} instead.",
        )
    return plan


def plan_from_config(args: argparse.Namespace) -> Plan:
    """Build a plan from the mounted job config (``--config``)."""
    try:
        with open(args.config, encoding="utf-8") as fh:
            config = contract.parse_job_config(fh.read())
    except OSError as exc:
        raise RetrainError(CONFIG_ERROR, f"cannot read job config {args.config}: {exc}") from exc
    except contract.ContractError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc
    spec = config.spec
    model = spec.model
    retrain_spec = spec.retrain
    automl_spec = retrain_spec.automl
    store = spec.store.uri
    features = model.features
    labels = spec.data.labels
    plan = Plan(
        model=model.name,
        store=store,
        version=int(args.model_version),
        task=model.task,
        target=model.target,
        automl=_automl_settings(
            time_budget=automl_spec.time_budget_seconds,
            metric=automl_spec.metric,
            estimators=list(automl_spec.estimators),
            seed=automl_spec.seed,
            n_jobs=args.n_jobs,
        ),
        champion_version=args.champion_version,
        champion_sha256=getattr(args, "champion_sha256", None) or None,
        trigger_report=str(args.trigger_report or ""),
        id_column=model.id_column,
        timestamp_column=model.timestamp_column,
        prediction_column=model.prediction_column,
        declared_features={f.name: f.type for f in features} if features else None,
        feature_order=[f.name for f in features] if features else None,
        training_data=retrain_spec.training_data,
        holdout_fraction=retrain_spec.holdout_fraction,
        min_labeled_rows=retrain_spec.min_labeled_rows,
        min_improvement=retrain_spec.min_improvement,
        reference_uri=spec.data.reference.uri,
        current_uri=spec.data.current.uri or contract.predictions_dir(store, model.name),
        current_window=spec.data.current.window,
        labels_uri=None if labels is None else labels.uri,
        labels_id_column=spec.labels_id_column,
        since=_parse_since(getattr(args, "since", None)),
        reuse_published=True,
    )
    return _check_common(plan)


def _parse_since(text: str | None) -> dt.datetime | None:
    """Parse ``--since`` (RFC 3339; a naive time is UTC)."""
    if not text:
        return None
    try:
        return contract.parse_timestamp(text, "--since")
    except contract.ContractError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from None


def plan_from_flags(args: argparse.Namespace) -> Plan:
    """Build a plan from the convenience flags (no ``--config``)."""
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("train", "target", "task", "time_budget", "store", "model")
        if getattr(args, name) in (None, "")
    ]
    if missing:
        raise RetrainError(CONFIG_ERROR, f"without --config, retrain needs {', '.join(missing)}")
    features = [f.strip() for f in args.features.split(",")] if args.features else None
    plan = Plan(
        model=args.model,
        store=args.store,
        version=int(args.model_version),
        task=args.task,
        target=args.target,
        automl=_automl_settings(
            time_budget=args.time_budget,
            metric=args.metric,
            estimators=args.estimators,
            seed=args.seed,
            n_jobs=args.n_jobs,
        ),
        champion_version=args.champion_version,
        champion_sha256=getattr(args, "champion_sha256", None) or None,
        trigger_report=str(args.trigger_report or ""),
        id_column=args.id_column,
        timestamp_column=args.timestamp_column,
        feature_order=features,
        training_data="reference",
        holdout_fraction=args.holdout_fraction,
        min_labeled_rows=0,
        min_improvement=args.min_improvement,
        train_uri=args.train,
        holdout_uri=args.holdout,
    )
    return _check_common(plan)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _read(uri: str, what: str) -> pd.DataFrame:
    from modelwatch_monitor.store.dataio import DataError, read_table

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
    import pandas as pd

    if column is None:
        return frame.reset_index(drop=True)
    out = frame.copy()
    out[column] = pd.to_datetime(out[column], utc=True, errors="coerce")
    return out.sort_values(column, kind="stable").reset_index(drop=True)


def _join_key(ids: pd.Series) -> pd.Series:
    """Return ids as strings, integral floats as integers (CSV reads ``7`` as ``7.0``)."""
    import pandas as pd

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
    import pandas as pd

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
    import pandas as pd

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


def _window(frame: pd.DataFrame, tcol: str | None) -> dict[str, str] | None:
    if tcol is None or tcol not in frame.columns or frame.empty:
        return None
    col = frame[tcol].dropna()
    if col.empty:
        return None
    return {"start": col.min().isoformat(), "end": col.max().isoformat()}


def fingerprint(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """Return a sha256 over the values and names of ``columns`` (row order matters)."""
    import hashlib

    import pandas as pd

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
    import pandas as pd

    parts: list[pd.DataFrame] = []
    sources: dict[str, int] = {}
    if use_recent_holdout:
        assert recent is not None
        recent_train, holdout = _holdout_split(recent, plan.holdout_fraction)
        holdout_info: dict[str, Any] = {
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
    training_info = {
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
    import pandas as pd

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
        hinfo: dict[str, Any] = {"source": plan.holdout_uri, "window": _window(holdout, tcol)}
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


# ---------------------------------------------------------------------------
# Train, compare, publish
# ---------------------------------------------------------------------------


def _target(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    y = frame[plan.target]
    if plan.task == "regression":
        import pandas as pd

        try:
            return pd.to_numeric(y, errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise RetrainError(
                DATA_ERROR, f"target column {plan.target!r} must be numeric: {exc}"
            ) from exc
    if y.dtype.kind == "f" and (y.dropna() % 1 == 0).all():
        return y.astype("int64")
    return y


def _secondary_metrics(task: str, primary: str) -> list[str]:
    extra = ["accuracy", "log_loss"] if task == "classification" else ["rmse", "mae"]
    return [primary, *[m for m in extra if m != primary]]


def _score_all(
    model: Any, X: pd.DataFrame, y: pd.Series, metrics: Sequence[str]
) -> dict[str, float]:
    from modelwatch_monitor.train.automl import score

    out: dict[str, float] = {}
    for name in metrics:
        try:
            out[name] = round(score(model, X, y, name), 6)
        except ValueError as exc:
            if name == metrics[0]:
                raise
            log.debug("metric %s undefined: %s", name, exc)
    return out


def retrain(plan: Plan) -> dict[str, Any]:
    """Run one retrain end to end and return the contract result (``ok: true``).

    Raises
    ------
    RetrainError
        Whenever no version can be written; nothing is written then.
    """
    from modelwatch_monitor.store.dataio import DataError, require_store
    from modelwatch_monitor.store.feature_schema import SchemaError, coerce_frame, infer_schema
    from modelwatch_monitor.store.registry import (
        IntegrityError,
        Registry,
        RegistryError,
        VersionExistsError,
    )
    from modelwatch_monitor.train import automl

    try:
        require_store(plan.store)
    except DataError as exc:
        raise RetrainError(STORE_ERROR, str(exc)) from None
    registry = Registry(plan.store, plan.model)
    try:
        if registry.exists(plan.version):
            published = _published_result(registry, plan) if plan.reuse_published else None
            if published is not None:
                return published
            raise RetrainError(
                VERSION_EXISTS,
                f"version {plan.version} of {plan.model!r} already exists; versions are immutable",
            )
    except OSError as exc:
        raise RetrainError(STORE_ERROR, f"cannot read the store {plan.store}: {exc}") from exc

    data = assemble(plan)
    y_train = _target(data.train, plan)
    y_hold = _target(data.holdout, plan)
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
    try:
        metric = automl.resolve_metric(plan.automl.metric, plan.task, n_classes)
    except ValueError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc
    log.info(
        "retrain %s v%d: %d training rows (%s), %d holdout rows (%s), %d features, metric %s",
        plan.model,
        plan.version,
        len(X_train),
        data.training_info["sources"],
        len(data.holdout),
        data.holdout_info["source"],
        len(schema),
        metric,
    )

    # Champion first: a missing or corrupt champion is known before spending the budget.
    champion_version = plan.champion_version
    if champion_version is None:
        champion_version = registry.latest(below=plan.version)
    champion_model: FittedModel | None = None
    champion_problem = ""
    if champion_version is not None:
        try:
            champion_model = registry.load(
                champion_version, expected_sha256=plan.champion_sha256
            ).model
        except IntegrityError as exc:
            if plan.champion_sha256:
                # The artifact is not the one the operator promoted: stop, do not compare.
                raise RetrainError(
                    CHAMPION_HASH_MISMATCH,
                    f"champion v{champion_version}: {exc} (the operator recorded sha256 "
                    f"{plan.champion_sha256} for it in status.versions)",
                ) from exc
            champion_problem = str(exc)
            log.error("champion v%d is unusable: %s", champion_version, exc)
        except RegistryError as exc:
            champion_problem = str(exc)
            log.error("champion v%d is unusable: %s", champion_version, exc)

    try:
        fitted = automl.fit(
            X_train, y_train, schema=schema, task=plan.task, metric=metric, settings=plan.automl
        )
    except automl.TrainingError as exc:
        raise RetrainError(TRAINING_FAILED, str(exc)) from exc

    metric_names = _secondary_metrics(plan.task, metric)
    try:
        challenger_scores = _score_all(fitted.model, data.holdout, y_hold, metric_names)
    except ValueError as exc:
        raise RetrainError(NOT_ENOUGH_LABELS, f"cannot score the holdout: {exc}") from exc
    champion_scores: dict[str, float] | None = None
    if champion_model is not None:
        try:
            champion_scores = _score_all(champion_model, data.holdout, y_hold, metric_names)
        except (ValueError, SchemaError, KeyError, TypeError) as exc:
            champion_problem = f"champion v{champion_version} cannot score the holdout: {exc}"
            log.error("%s", champion_problem)

    gib = contract.greater_is_better(metric)
    challenger_score = challenger_scores[metric]
    champion_score = None if champion_scores is None else champion_scores[metric]
    promote, reason, message, improvement = contract.decide_promotion(
        version=plan.version,
        metric=metric,
        challenger_score=challenger_score,
        champion_version=champion_version,
        champion_score=champion_score,
        min_improvement=plan.min_improvement,
        champion_problem=champion_problem,
    )
    log.info("decision: promote=%s (%s) %s", promote, reason, message)

    metadata = {
        "task": plan.task,
        "target": plan.target,
        "idColumn": plan.id_column,
        "timestampColumn": plan.timestamp_column,
        "predictionColumn": plan.prediction_column,
        "features": [f.to_json() for f in schema],
        "classes": None
        if fitted.model.classes_ is None
        else [_json_scalar(c) for c in fitted.model.classes_],
        "metric": metric,
        "greaterIsBetter": gib,
        "metrics": {"challenger": challenger_scores, "champion": champion_scores},
        "champion": None
        if champion_version is None
        else {
            "version": champion_version,
            "score": champion_score,
            "problem": champion_problem or None,
        },
        "promote": promote,
        "reason": reason,
        "message": message,
        "minImprovement": plan.min_improvement,
        "flaml": {
            "bestEstimator": fitted.best_estimator,
            "bestConfig": fitted.best_config,
            "bestLoss": fitted.best_loss,
            "trials": fitted.trials,
            "seconds": round(fitted.seconds, 2),
            "timeBudgetSeconds": plan.automl.time_budget,
            "estimators": list(plan.automl.estimators),
            "seed": plan.automl.seed,
            "nJobs": plan.automl.n_jobs,
        },
        "training": {
            "rows": len(X_train),
            "window": data.training_info.get("window"),
            "fingerprint": fingerprint(data.train, [*data.features, plan.target]),
            **{k: v for k, v in data.training_info.items() if k != "window"},
        },
        "holdout": {
            "rows": len(data.holdout),
            "fingerprint": fingerprint(data.holdout, [*data.features, plan.target]),
            **data.holdout_info,
        },
        "triggerReport": plan.trigger_report or None,
        "libraries": compat.library_versions(),
    }
    try:
        swept = registry.remove_stale_temps()
        if swept:
            log.info("removed temp folders of crashed retrains: %s", ", ".join(swept))
    except OSError as exc:  # housekeeping only
        log.warning("cannot sweep temp folders: %s", exc)
    extra_files: dict[str, bytes] = {}
    profile_bytes = _training_profile(data, plan, fitted.model, extra_files)
    if profile_bytes is not None:
        extra_files[contract.PROFILE_FILE] = profile_bytes
    try:
        meta = registry.publish(plan.version, fitted.model, metadata, extra_files=extra_files)
    except VersionExistsError as exc:
        published = _published_result(registry, plan) if plan.reuse_published else None
        if published is not None:
            return published  # another run of this reservation published it first
        raise RetrainError(VERSION_EXISTS, str(exc)) from exc
    except (OSError, RegistryError) as exc:
        raise RetrainError(STORE_ERROR, f"cannot write version {plan.version}: {exc}") from exc
    return {
        "kind": "retrain",
        "ok": True,
        "version": plan.version,
        "sha256": meta["sha256"],
        "metric": metric,
        "greaterIsBetter": gib,
        "challenger": {"score": challenger_score},
        "champion": None
        if champion_version is None
        else {"version": champion_version, "score": champion_score},
        "improvement": None if improvement is None else round(improvement, 6),
        "minImprovement": plan.min_improvement,
        "promote": promote,
        "reason": reason,
        "message": message,
        "reportId": plan.trigger_report,
        "bestEstimator": fitted.best_estimator,
        "rows": {"train": len(X_train), "holdout": len(data.holdout)},
        "uri": registry.uri(plan.version),
        "libraries": meta["libraries"],
    }


def _published_result(registry: Any, plan: Plan) -> dict[str, Any] | None:
    """The result of the run that already published ``plan.version``, from its metadata.

    The operator hands out version numbers and reserves each for one retrain Job, so a
    published version N found by the Job for N was written by an earlier run of that same
    Job: its pod was restarted, or the Job recreated after the operator lost track of it,
    after the write. Training again could only fail on the immutable version; reporting the
    published one keeps the work and the loop going. None when the metadata is not one a
    retrain writes (then the version is refused as before).
    """
    try:
        meta = registry.metadata(plan.version)
    except Exception as exc:  # unreadable: refuse as before
        log.warning("version %d exists but its metadata is unreadable: %s", plan.version, exc)
        return None
    needed = ("sha256", "metric", "promote", "reason", "metrics")
    if any(meta.get(key) is None for key in needed):
        return None
    metric = str(meta["metric"])
    challenger = (meta.get("metrics") or {}).get("challenger") or {}
    champion = meta.get("champion") or None
    log.info(
        "version %d was already published by an earlier run of this retrain (sha256 %s); "
        "reporting it instead of training again",
        plan.version,
        meta["sha256"],
    )
    return {
        "kind": "retrain",
        "ok": True,
        "version": plan.version,
        "sha256": meta["sha256"],
        "metric": metric,
        "greaterIsBetter": bool(meta.get("greaterIsBetter", True)),
        "challenger": {"score": challenger.get(metric)},
        "champion": None
        if not champion
        else {"version": champion.get("version"), "score": champion.get("score")},
        "minImprovement": meta.get("minImprovement"),
        "promote": bool(meta["promote"]),
        "reason": meta["reason"],
        "message": f"{meta.get('message') or ''} (published by an earlier run of this Job)",
        "reportId": plan.trigger_report or meta.get("triggerReport") or "",
        "bestEstimator": (meta.get("flaml") or {}).get("bestEstimator"),
        "rows": {
            "train": (meta.get("training") or {}).get("rows"),
            "holdout": (meta.get("holdout") or {}).get("rows"),
        },
        "uri": registry.uri(plan.version),
        "libraries": meta.get("libraries"),
        "reused": True,
    }


def _json_scalar(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _training_profile(
    data: Dataset, plan: Any, model: Any = None, extra_files: dict[str, bytes] | None = None
) -> bytes | None:
    """The reference profile of the version's data, stored with the version.

    Once this version serves, checks compare live data with the data it was trained
    on, not with the original reference: the newest of it, the holdout (the latest rows
    by time), when it holds at least :data:`PROFILE_MIN_ROWS` rows. A retrain starts at
    the first violating check, so its training window still holds some traffic from
    before the change; the newest rows are the new normal that the version's own traffic
    will look like. For a classifier, the profile also carries
    the calibration of this model's probabilities on the holdout (the model is at
    hand here), for estimated performance before labels arrive. A failure here only
    loses that refinement.
    """
    import tempfile

    from modelwatch_monitor.check.profile import Roles, build_profile

    newest = len(data.holdout) >= PROFILE_MIN_ROWS
    frame = data.holdout if newest else data.train
    columns = [c for c in [*data.features, plan.target] if c in frame.columns]
    try:
        with tempfile.TemporaryDirectory(prefix="mw-profile-") as tmp:
            path = os.path.join(tmp, "train.parquet")
            frame[columns].to_parquet(path, index=False)
            profile = build_profile(
                path, roles=Roles(target=plan.target), features=data.features, task=plan.task
            )
        profile.source = (
            f"the newest {len(frame)} rows of the training data" if newest else "training data"
        )
        calibration = _holdout_calibration(data, plan, model)
        if calibration is not None:
            profile.performance = {"task": plan.task, "metrics": {}, **(profile.performance or {})}
            profile.performance["calibration"] = calibration
        loss = _holdout_loss_model(data, plan, model, profile)
        if loss is not None and extra_files is not None:
            payload, entry = loss
            extra_files[LOSS_MODEL_FILE] = payload
            profile.performance = {"task": plan.task, "metrics": {}, **(profile.performance or {})}
            profile.performance["lossModel"] = entry
        return json.dumps(profile.to_dict(), separators=(",", ":")).encode()
    except Exception as exc:  # never fail a retrain over its profile
        log.warning("could not profile the training data: %s", exc)
        return None


def _holdout_loss_model(
    data: Dataset, plan: Any, model: Any, profile: Any
) -> tuple[bytes, dict[str, Any]] | None:
    """For a regressor, the loss model of its error fitted on the holdout (features and
    this model's predictions), stored with the version: once it serves, checks estimate
    its error before labels arrive. None for classifiers or a holdout too small."""
    if model is None or plan.task != "regression":
        return None
    import hashlib

    from modelwatch_monitor.check import loss_estimation

    features = [f for f in data.features if f in data.holdout.columns]
    categorical = [
        f for f in features if f in profile.columns and profile.columns[f].type == "categorical"
    ]
    try:
        fitted = loss_estimation.fit_loss_model(
            data.holdout[features],
            data.holdout[plan.target].to_numpy(dtype=float),
            model.predict(data.holdout),
            categorical=categorical,
        )
    except (ValueError, TypeError) as exc:
        log.info("no loss model with this version: %s", exc)
        return None
    payload = loss_estimation.dump(fitted)
    uri = f"{contract.version_dir(plan.store, plan.model, plan.version)}/{LOSS_MODEL_FILE}"
    entry = {
        "uri": uri,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "rows": len(data.holdout),
    }
    return payload, entry


def _holdout_calibration(data: Dataset, plan: Any, model: Any) -> dict[str, Any] | None:
    """The calibration of ``model``'s probabilities on the holdout, as the profile
    stores it; None for regression or when the holdout cannot calibrate."""
    if model is None or plan.task != "classification" or getattr(model, "classes_", None) is None:
        return None
    from modelwatch_monitor.check.estimation import reference_calibration

    proba = model.predict_proba(data.holdout)
    columns = {str(c): proba[:, j] for j, c in enumerate(model.classes_)}
    return reference_calibration(data.holdout[plan.target].to_numpy(), columns)
