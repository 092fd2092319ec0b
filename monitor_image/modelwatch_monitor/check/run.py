"""``modelwatch check``: drift, data-quality and performance checks of one window.

Two ways to run it:

- ``modelwatch check --config /etc/modelwatch/config.json`` (the operator's contract;
  see :mod:`modelwatch_monitor.contract` for the spec fields);
- ``modelwatch check --reference REF --current CUR [--labels L --id-column C
  --target T] --output DIR`` for users outside Kubernetes.

The check reads the reference profile (computing it once when only raw reference
data exists), reads the current window one column at a time (``exact`` mode) or
streams it in batches into KLL sketches (``sketch`` mode, larger than memory), runs
one registered drift test per feature, lets :mod:`modelwatch_monitor.check.verdicts`
decide, collects data-quality findings, computes performance when labels are
present, writes the report, and prints the compact result as the last stdout line
(and to the termination-message path).

A check judges the version that serves (``--serving-version``, which the operator sets
from ``status.currentVersion``; else the newest version in the window): drift, quality and
performance use only the rows that version served (the ``model_version`` column the model
server logs; without that column, the rows since ``--serving-since``). Rows older versions
served are history in the report, never part of the verdict. Until the serving version has
served ``minRows`` rows in the window, the result has ``reason: AwaitingTraffic`` and no
verdict.

Exit codes: 0 when the check ran (drift or not, or awaiting traffic); 1 when it could not
run (the result then has ``ok: false`` and a ``reason``: ``NoData`` (the window is empty: no
traffic), ``DataError``, ``ConfigError`` or ``CheckFailed``). No report is left behind on failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import Counts, Distribution, DriftResult, DriftTest, get_test
from modelwatch_monitor.check.history import category_shares
from modelwatch_monitor.check.profile import (
    DEFAULT_GRID_SIZE,
    ColumnProfile,
    Profile,
    Roles,
    add_role_arguments,
    build_profile,
    choose_mode,
    is_numeric_dtype,
    is_profile_uri,
    parse_type_overrides,
    profile_column,
    summarize,
)
from modelwatch_monitor.check.sharding import ShardError
from modelwatch_monitor.check.verdicts import DatasetVerdict, DriftSettings, decide
from modelwatch_monitor.store.dataio import (
    DataError,
    DataNotFoundError,
    Source,
    open_source,
    parse_window,
    prune_partitions,
    require_store,
)

log = logging.getLogger(__name__)

EXACT = sys.maxsize  # "grid size" that keeps the exact empirical CDF


class NoDataError(DataError):
    """The current window has no rows: the model got no traffic, or the logs stopped."""


class ConfigError(ValueError):
    """The job config or the command line is not usable."""


@dataclass
class CheckSettings:
    """Everything one check needs, from the job config or the command line."""

    current: str
    output: str
    reference: str | None = None
    profile_path: str | None = None
    labels: str | None = None
    labels_id_column: str | None = None
    window: str | None = None
    roles: Roles = field(default_factory=Roles)
    features: list[str] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)
    metric: str | None = None
    max_degradation: float = 0.1
    min_labeled_rows: int = 50
    baseline: float | None = None
    estimate: bool = True
    store: str | None = None
    model: str = ""
    report_id: str = ""
    mode: str = "auto"
    now: dt.datetime | None = None
    serving_version: int | None = None
    serving_since: dt.datetime | None = None
    min_rows: int = contract.DEFAULT_MIN_ROWS
    retention_seconds: float | None = None  # prune the store's prediction log to this age


def _report_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def settings_from_config(
    config: contract.JobConfig, *, now: dt.datetime | None = None
) -> CheckSettings:
    """Build the settings from a parsed job config (``contract.parse_job_config``)."""
    spec = config.spec
    model = spec.model
    store = spec.store.uri
    name = model.name
    labels = spec.data.labels
    perf = spec.performance
    now = now or dt.datetime.now(dt.UTC)
    try:
        drift = DriftSettings.from_spec(spec.drift)
        report_id = _report_id(now)
        return CheckSettings(
            current=spec.data.current.uri or contract.predictions_dir(store, name),
            output=contract.report_dir(store, name, report_id),
            reference=spec.data.reference.uri,
            profile_path=contract.reference_profile_path(store, name),
            labels=None if labels is None else labels.uri,
            labels_id_column=spec.labels_id_column,
            window=spec.data.current.window,
            roles=Roles(
                id=model.id_column,
                timestamp=model.timestamp_column,
                prediction=model.prediction_column,
                target=model.target,
            ),
            features=[f.name for f in model.features] or None,
            overrides={f.name: f.type for f in model.features},
            task=model.task,
            drift=drift,
            metric=perf.metric,
            max_degradation=perf.max_degradation,
            min_labeled_rows=perf.min_labeled_rows,
            baseline=perf.baseline,
            estimate=perf.estimate.enabled,
            store=store,
            model=name,
            report_id=report_id,
            now=now,
            min_rows=spec.data.current.min_rows,
            retention_seconds=None
            if spec.data.current.uri
            else spec.data.current.retention_seconds,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid job config: {exc}") from exc


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------


def load_reference(settings: CheckSettings) -> Profile:
    """The reference profile: given, reused from the store, or computed and saved."""
    ref = settings.reference
    if ref and is_profile_uri(ref):
        return Profile.load(ref)
    path = settings.profile_path
    if path:
        try:
            profile = Profile.load(path)
        except DataError:
            profile = None
        # Reuse it only if it was made with the same roles: a profile computed with a
        # wrong target would otherwise keep the real target column as a feature.
        if (
            profile is not None
            and (not ref or profile.source in ("", ref))
            and (not ref or profile.roles.target == settings.roles.target)
        ):
            log.info("reusing the reference profile %s", path)
            return profile
    if not ref:
        raise ConfigError(
            "no reference: set spec.data.reference.uri (or --reference), "
            "or store a profile at " + (path or "the store")
        )
    log.info("computing the reference profile of %s", ref)
    profile = build_profile(
        ref,
        roles=settings.roles,
        features=settings.features,
        overrides=settings.overrides,
        task=settings.task,
        mode=settings.mode,
    )
    _attach_loss_model(settings, profile, ref, path)
    if path:
        profile.save(path)
    return profile


def _attach_loss_model(
    settings: CheckSettings, profile: Profile, reference: str, path: str | None
) -> None:
    """A regression reference trains the loss model of estimated error, saved beside the
    profile (in memory for a check outside the store)."""
    if not settings.estimate or (profile.performance or {}).get("task") != "regression":
        return
    import uuid

    from modelwatch_monitor.check import loss_estimation

    folder = path.rsplit("/", 1)[0] if path and "/" in path else None
    uri = (
        f"{folder}/{loss_estimation.LOSS_MODEL_FILE}"
        if folder
        else f"memory://modelwatch/{uuid.uuid4().hex}/{loss_estimation.LOSS_MODEL_FILE}"
    )
    loss_estimation.attach(
        profile,
        open_source(reference),
        target=settings.roles.target,
        prediction=settings.roles.prediction,
        uri=uri,
    )


def parse_since(text: str) -> dt.datetime:
    """Parse ``--serving-since`` (RFC 3339; naive times are UTC).

    >>> parse_since("2026-11-29T12:00:00Z").isoformat()
    '2026-11-29T12:00:00+00:00'
    """
    try:
        return contract.parse_timestamp(text, contract.ARG_SERVING_SINCE)
    except contract.ContractError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class Traffic:
    """Which rows of the window a check judges: those the serving version served.

    Attributes
    ----------
    version : int or None
        The version judged: the one that serves (``--serving-version``), else the newest
        version in the window; None when neither is known.
    basis : str
        How its rows are told apart: ``"model_version"`` (the column the model server
        logs), ``"servingSince"`` (the rows since it began serving, for data without that
        column), or ``"window"`` (every row: nothing tells versions apart).
    window_rows : int
        All rows in the window.
    served_rows : int
        The rows the judged version served (all of the window for ``"window"``).
    by_version : dict of int to int
        Rows per ``model_version`` in the window (empty without that column).
    since : datetime or None
        When the judged version began serving, if known.
    """

    version: int | None
    basis: str
    window_rows: int
    served_rows: int
    by_version: dict[int, int]
    since: dt.datetime | None = None

    @property
    def older_rows(self) -> int:
        """Rows in the window that other versions served (or that came before ``since``)."""
        return self.window_rows - self.served_rows

    def history(self) -> list[dict[str, Any]]:
        """Rows per version in the window, the judged one marked, for the report."""
        return [
            {"version": v, "rows": n, "judged": v == self.version}
            for v, n in sorted(self.by_version.items())
        ]

    def awaiting_message(self, min_rows: int) -> str:
        """Why there is no verdict yet, with the row counts."""
        who = f"version {self.version}" if self.version is not None else "the model"
        since = f" since it began serving at {self.since.isoformat()}" if self.since else ""
        if self.basis == "model_version":
            text = f"{who} has served {self.served_rows:,} of the {min_rows:,} rows a verdict needs"
        elif self.basis == "servingSince":
            text = (
                f"{who} has served {self.served_rows:,} of the {min_rows:,} rows a verdict "
                f"needs{since}"
            )
        else:
            text = f"the window holds {self.served_rows:,} of the {min_rows:,} rows a verdict needs"
        text += " (spec.data.current.minRows)"
        older = sorted(v for v in self.by_version if v != self.version)
        if self.older_rows and older:
            text += (
                f"; {self.older_rows:,} rows in the window were served by other versions "
                f"({', '.join(map(str, older))}) and do not count"
            )
        elif self.older_rows:
            text += f"; {self.older_rows:,} rows in the window came before and do not count"
        return text


def _rows_by_version(source: Source) -> dict[int, int]:
    """Rows per ``model_version`` in the (windowed) source; empty without that column."""
    if contract.LOG_MODEL_VERSION not in source.columns:
        return {}
    import pyarrow.compute as pc

    counts: dict[int, int] = {}
    for entry in pc.value_counts(source.column(contract.LOG_MODEL_VERSION)).to_pylist():
        try:
            version = int(entry["values"])
        except (TypeError, ValueError):
            continue  # null or not a version number: served by no known version
        counts[version] = counts.get(version, 0) + int(entry["counts"])
    return counts


def version_filter(source: Source, version: int) -> Any:
    """The expression that keeps the rows ``version`` served (its ``model_version``)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    col = contract.LOG_MODEL_VERSION
    ftype = source.schema.field(col).type
    if pa.types.is_integer(ftype):
        return ds.field(col) == pa.scalar(version, type=ftype)
    return ds.field(col).cast(pa.string()) == str(version)


def select_traffic(settings: CheckSettings, source: Source, window_rows: int) -> Traffic:
    """Restrict ``source`` to the rows the serving version served; return what was kept.

    With a ``model_version`` column the rows of the judged version are kept; without it,
    the rows since ``settings.serving_since`` (when there is a timestamp column); else all.
    """
    by_version = _rows_by_version(source)
    version = settings.serving_version
    if version is None and by_version:
        version = max(by_version)  # no operator to ask: the newest version in the window
    since = settings.serving_since
    if by_version and version is not None:
        source.restrict(version_filter(source, version), [contract.LOG_MODEL_VERSION])
        return Traffic(
            version, "model_version", window_rows, by_version.get(version, 0), by_version, since
        )
    timestamp = settings.roles.timestamp
    if since is not None and timestamp and timestamp in source.columns:
        source.select_since(timestamp, since)
        return Traffic(version, "servingSince", window_rows, source.count_rows(), by_version, since)
    return Traffic(version, "window", window_rows, window_rows, by_version, since)


def _serving_version_profile(settings: CheckSettings, version: int | None) -> Profile | None:
    """The training profile of the version that served most of the window, if any.

    After a promotion the reference moves with the model: live data is compared with
    the data the serving version was trained on (``versions/N/profile.json``), so a
    retrain on the new normal is not flagged again at the next check. Without a
    ``model_version`` column (data not logged by the model server), a stored profile,
    or a store, the configured reference stays.
    """
    if version is None or not settings.store or not settings.model:
        return None
    path = contract.version_profile_path(settings.store, settings.model, version)
    try:
        profile = Profile.load(path)
    except (DataError, OSError):
        return None  # trained before profiles were stored, or not by a retrain Job
    log.info("comparing with the training data of version %d (%s)", version, path)
    profile.source = f"training data of version {version}"
    return profile


def require_labels(settings: CheckSettings) -> None:
    """Raise DataError when the labels lack the target or the id column, naming the spec
    field and the columns the labels do have."""
    target = settings.roles.target
    if not settings.labels or not target:
        return
    labels = open_source(settings.labels)
    have = ", ".join(map(repr, labels.columns))
    if target not in labels.columns:
        raise DataError(
            f"the target column {target!r} (spec.model.target) is not in the labels "
            f"{settings.labels!r}; their columns: {have}"
        )
    id_col = settings.labels_id_column
    if id_col and id_col not in labels.columns:
        raise DataError(
            f"the id column {id_col!r} (spec.data.labels.idColumn, default spec.model.idColumn)"
            f" is not in the labels {settings.labels!r}; their columns: {have}"
        )


def _check_types(
    reference: Mapping[str, ColumnProfile], source: Source, features: list[str]
) -> None:
    for name in features:
        ref = reference[name]
        cur_type = source.schema.field(name).type
        if ref.type == "numeric" and not is_numeric_dtype(cur_type):
            raise DataError(
                f"feature column {name!r} has type {cur_type} in the current data, "
                f"but {ref.dtype} (numeric) in the reference"
            )


def run_drift(
    reference: Mapping[str, ColumnProfile],
    current: Iterable[ColumnProfile],
    settings: DriftSettings,
    *,
    keep_grid: int = DEFAULT_GRID_SIZE,
) -> tuple[DatasetVerdict, dict[str, ColumnProfile]]:
    """Run the configured test on every feature and decide.

    ``current`` may be a generator that reads one column at a time: each exact
    summary is tested, then shrunk to a ``keep_grid`` quantile grid for the
    data-quality rules and the plots, so memory holds one full column at a time.

    Returns
    -------
    verdict : DatasetVerdict
    current : dict of feature name to its (compacted) ColumnProfile
    """
    results: list[tuple[str, str, DriftTest, DriftResult]] = []
    kept: dict[str, ColumnProfile] = {}
    for cur in current:
        name = cur.name
        ref = reference[name]
        if cur.summary is None:
            raise DataError(f"feature column {name!r} has no non-null value in the current data")
        assert ref.summary is not None
        test_name = settings.numeric_test if ref.type == "numeric" else settings.categorical_test
        test = get_test(test_name, ref.type)
        results.append((name, ref.type, test, test(ref.summary, cur.summary)))
        if isinstance(cur.summary, Distribution):
            cur = replace(cur, summary=cur.summary.compact(keep_grid))
        kept[name] = cur
    return decide(results, settings), kept


def _performance(
    settings: CheckSettings, profile: Profile, source: Source, serving: int | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
    """Join labels, compute metrics; return (report section, result metric, labelled rows)."""
    from modelwatch_monitor.check import performance as perf

    roles = settings.roles
    target = roles.target
    if not target:
        return None, None, 0
    task = settings.task or (profile.performance or {}).get("task") or "classification"
    pred_col = roles.prediction or "prediction"
    proba_cols = [c for c in source.columns if c.startswith(contract.LOG_PROBA_PREFIX)]
    if settings.labels:
        id_col = roles.id or contract.LOG_REQUEST_ID
        if id_col not in source.columns and contract.LOG_REQUEST_ID in source.columns:
            id_col = contract.LOG_REQUEST_ID
        lab_id = settings.labels_id_column or id_col
        source.require([id_col, pred_col], "column")
        preds = source.table([id_col, pred_col, *proba_cols]).to_pandas()
        labels_src = open_source(settings.labels)
        labels_src.require([lab_id, target], "labels column")
        labels = labels_src.table([lab_id, target]).to_pandas()
        labels = labels.drop_duplicates(subset=[lab_id], keep="last")
        # Ids may be logged as strings and labelled as integers: join on text.
        preds[id_col] = preds[id_col].astype(str)
        labels[lab_id] = labels[lab_id].astype(str)
        joined = preds.merge(
            labels, left_on=id_col, right_on=lab_id, how="inner", suffixes=("", "_label")
        )
        tcol = target if target in joined.columns and target != pred_col else f"{target}_label"
        join_note = _join_note(settings, preds, labels, id_col, lab_id, len(joined))
    elif target in source.columns and pred_col in source.columns:
        joined = source.table([pred_col, target, *proba_cols]).to_pandas()
        tcol = target
        join_note = None
    else:
        return None, None, 0
    joined = joined[joined[tcol].notna() & joined[pred_col].notna()]
    n = len(joined)
    proba = {c[len(contract.LOG_PROBA_PREFIX) :]: joined[c].to_numpy() for c in proba_cols}
    metrics = perf.compute_metrics(
        joined[tcol].to_numpy(), joined[pred_col].to_numpy(), task, proba=proba or None
    )
    metric = settings.metric or perf.DEFAULT_METRIC[task]

    results = {}
    for name in metrics:
        baseline, source_of = baseline_of(settings, profile, name, serving)
        results[name] = perf.evaluate(
            metrics,
            name,
            baseline=baseline,
            baseline_source=source_of,
            max_degradation=settings.max_degradation,
            labeled_rows=n,
            min_labeled_rows=settings.min_labeled_rows,
        )
    if join_note and n < settings.min_labeled_rows:
        for entry in results.values():
            if entry["value"] is None:
                entry["undefinedReason"] = join_note(entry["undefinedReason"])
    if metric not in results:
        raise ConfigError(
            f"The 'metric' parameter must be one of {sorted(results)} for {task}. "
            f"Got {metric!r} instead."
        )
    result = results[metric]
    section = {"task": task, "labeled_rows": n, "metric": result, "metrics": results}
    return section, result, n


def baseline_of(
    settings: CheckSettings, profile: Profile, name: str, serving: int | None
) -> tuple[float | None, str | None]:
    """The baseline of metric ``name`` and its source: the spec's (chosen metric only),
    else the reference profile's, else the serving (else latest) version's holdout
    score ``metrics.challenger.<name>``."""
    from modelwatch_monitor.check import performance as perf

    task = settings.task or (profile.performance or {}).get("task") or "classification"
    if name == (settings.metric or perf.DEFAULT_METRIC[task]) and settings.baseline is not None:
        return settings.baseline, "spec"
    value = (profile.performance or {}).get("metrics", {}).get(name)
    if value is not None:
        return float(value), "reference"
    if settings.store and settings.model:
        value = perf.version_metric(settings.store, settings.model, name, version=serving)
        if value is not None:
            return value, "holdout"
    return None, None


def _estimate(
    settings: CheckSettings,
    profile: Profile,
    source: Source,
    realized: Mapping[str, Any] | None,
    serving: int | None,
) -> dict[str, Any] | None:
    """The estimated metric of the window: from calibrated probabilities (classification)
    or the loss model (regression); None when estimation is off."""
    from modelwatch_monitor.check import estimation, loss_estimation
    from modelwatch_monitor.check import performance as perf

    task = settings.task or (profile.performance or {}).get("task") or "classification"
    if not settings.estimate:
        return None
    metric = settings.metric or perf.DEFAULT_METRIC[task]
    baseline, source_of = baseline_of(settings, profile, metric, serving)
    estimator = (
        estimation.estimate_window if task == "classification" else loss_estimation.estimate_window
    )
    terms = estimation.EstimateTerms(
        metric,
        baseline=baseline,
        baseline_source=source_of,
        max_degradation=settings.max_degradation,
        realized=realized,
    )
    return estimator(
        source,
        profile.performance,
        terms,
        prediction_column=settings.roles.prediction or contract.LOG_PREDICTION,
    )


def _join_note(
    settings: CheckSettings, preds: Any, labels: Any, id_col: str, lab_id: str, matched: int
) -> Callable[[str | None], str]:
    """How to explain an undefined metric after the labels join (pandas frames in)."""
    if matched == 0 and len(preds) and len(labels):
        reason = (
            f"the labels join matched 0 of {len(preds)} predictions: no {id_col!r} of the "
            f"current data (e.g. {str(preds[id_col].iloc[0])!r}) is an {lab_id!r} of the labels"
            f" {settings.labels!r} (e.g. {str(labels[lab_id].iloc[0])!r}); check "
            "spec.model.idColumn and spec.data.labels.idColumn"
        )
        return lambda _: reason
    if not len(labels):
        return lambda _: f"the labels {settings.labels!r} have no rows"

    def note(reason: str | None) -> str:
        detail = f"the labels join matched {matched} of {len(preds)} predictions"
        return f"{reason} ({detail})" if reason else detail

    return note


def prepare_check(settings: CheckSettings) -> tuple[Profile, list[str]]:
    """Check the store and the labels, load the reference; return it and the features.

    Raises
    ------
    DataError, ConfigError
        When the check cannot run.
    """
    if settings.store:
        require_store(settings.store)
    require_labels(settings)
    profile = load_reference(settings)
    features = settings.features or profile.features
    missing_ref = [f for f in features if f not in profile.columns]
    if missing_ref:
        raise DataError(f"feature column {missing_ref[0]!r} is not in the reference profile")
    return profile, features


def open_window(
    settings: CheckSettings,
    features: list[str],
    *,
    now: dt.datetime,
    files: list[str] | None = None,
) -> Source:
    """Open the current data, restricted to the window; raise NoDataError without data.

    ``files`` fixes the files read (a sharded check reads the ones its plan listed).
    """
    since = (now - parse_window(settings.window)).date() if settings.window else None
    try:  # only the window's partitions
        source = open_source(settings.current, since=since, files=files)
    except DataNotFoundError as exc:
        store, model = settings.store, settings.model
        default = contract.predictions_dir(store, model) if store and model else None
        if settings.current == default:
            raise NoDataError(
                f"no predictions logged yet under {default!r}: the model server has had "
                "no traffic, or is not logging to the store"
            ) from exc
        raise
    try:
        source.require(features, "feature column")
    except DataError as exc:
        if settings.features:
            hint = ""
        elif settings.store:  # the operator's job config: name the spec fields
            hint = (
                " (the reference has it, so it was taken for a feature; if it is the target,"
                f" the id or the prediction, set spec.model.target (now {settings.roles.target!r}),"
                " idColumn, predictionColumn or timestampColumn to it, or list the features in"
                " spec.model.features)"
            )
        else:
            hint = (
                " (the reference has it; name non-feature columns with --target, --id-column, "
                "--prediction-column or list the features)"
            )
        raise DataError(f"{exc}{hint}") from None
    if settings.window:
        if not settings.roles.timestamp:
            raise ConfigError("a window needs a timestamp column (--timestamp-column)")
        column = settings.roles.timestamp
        if column not in source.columns and contract.LOG_TIMESTAMP in source.columns:
            column = contract.LOG_TIMESTAMP  # the model server's log: when it served the row
        source.select_window(column, settings.window, now=now)
    return source


def no_rows_error(settings: CheckSettings) -> NoDataError:
    """The error of a window without rows."""
    where = f" in the window {settings.window!r}" if settings.window else ""
    return NoDataError(
        f"the current data {settings.current!r} has no rows{where}: no predictions "
        "were logged (no traffic, or the model server is not logging to the store)"
    )


def follow_serving(
    settings: CheckSettings, profile: Profile, features: list[str], version: int | None
) -> tuple[Profile, list[str]]:
    """The profile and features to judge ``version`` with: its training profile when the
    store has one (the reference moves with the model), else the reference."""
    followed = _serving_version_profile(settings, version)
    if followed is None:
        return profile, features
    return followed, settings.features or followed.features


def run_check(settings: CheckSettings) -> dict[str, Any]:
    """Run one check and write its report; return the compact result (ok = true).

    Raises
    ------
    DataError, ConfigError
        When the check cannot run; nothing is written then.
    """
    started = time.perf_counter()
    now = settings.now or dt.datetime.now(dt.UTC)
    profile, features = prepare_check(settings)
    source = open_window(settings, features, now=now)
    rows = source.count_rows()
    if rows == 0:
        raise no_rows_error(settings)
    traffic = select_traffic(settings, source, rows)
    if traffic.served_rows < settings.min_rows:
        return _awaiting_traffic(settings, traffic, reference_rows=profile.rows, now=now)
    profile, features = follow_serving(settings, profile, features, traffic.version)
    source.require(features, "feature column")
    _check_types(profile.columns, source, features)
    types = {f: profile.columns[f].type for f in features}
    mode = choose_mode(rows, len(types), settings.mode)
    columns: Iterable[ColumnProfile]
    if mode == "exact":
        columns = (
            profile_column(source.column(n), n, t, grid_size=EXACT) for n, t in types.items()
        )
    else:
        columns = summarize(source, types, mode=mode).values()
    return finish_check(
        settings,
        profile=profile,
        source=source,
        traffic=traffic,
        features=features,
        columns=columns,
        rows=rows,
        mode=mode,
        now=now,
        started=started,
    )


def finish_check(
    settings: CheckSettings,
    *,
    profile: Profile,
    source: Source,
    traffic: Traffic,
    features: list[str],
    columns: Iterable[ColumnProfile],
    rows: int,
    mode: str,
    now: dt.datetime,
    started: float,
    shards: int | None = None,
) -> dict[str, Any]:
    """Test, decide and report, once the window's columns are summarised.

    ``source`` is the window restricted to the judged traffic (read for the schema, the
    performance and the estimate); ``columns`` the current summaries of ``features``;
    ``shards`` how many pods sketched them (a sharded check).
    """
    from modelwatch_monitor.check import quality
    from modelwatch_monitor.check.report import write_report

    serving = traffic.version
    verdict, current = run_drift(profile.columns, columns, settings.drift)

    role_cols = {*settings.roles.names(), *profile.roles.names()}
    role_cols |= {c for c in source.columns if contract.is_log_meta_column(c)}
    findings = quality.schema_findings(
        {n: c.dtype for n, c in profile.columns.items()},
        {n: str(source.schema.field(n).type) for n in source.columns},
        ignore=role_cols,
    )
    for name in features:
        findings.extend(quality.column_findings(profile.columns[name], current[name]))

    perf_section, metric, labeled = _performance(settings, profile, source, serving)
    estimated = _estimate(settings, profile, source, metric, serving)

    report_id = settings.report_id or _report_id(now)
    d = settings.drift
    report: dict[str, Any] = {
        "schema": 1,
        "kind": "modelwatch-check-report",
        "report_id": report_id,
        "model": settings.model,
        "created": now.isoformat(),
        "reference": profile.source,
        "current": settings.current,
        "window": settings.window,
        "mode": mode,
        **({"shards": shards} if shards else {}),
        "rows": {
            "reference": profile.rows,
            "current": traffic.served_rows,
            "window": rows,
            "labeled": labeled,
        },
        "serving": {
            "version": traffic.version,
            "since": traffic.since.isoformat() if traffic.since else None,
            "basis": traffic.basis,
            "rows": traffic.served_rows,
            "minRows": settings.min_rows,
            "olderRows": traffic.older_rows,
            "byVersion": traffic.history(),
        },
        "settings": {
            "numericTest": d.numeric_test,
            "categoricalTest": d.categorical_test,
            "pValueThreshold": d.p_value_threshold,
            "correction": d.correction,
            "minEffectSize": d.min_effect_size,
            "driftShareThreshold": d.drift_share_threshold,
            "statisticThreshold": d.statistic_threshold,
        },
        "dataset_drift": verdict.dataset_drift,
        "drift_share": verdict.drift_share,
        "n_drifted": verdict.n_drifted,
        "n_features": verdict.n_features,
        "features": [v._asdict() for v in verdict.features],
        "quality": list(findings),
        "performance": perf_section,
        "estimated": estimated,
        "serving_version": serving,
        "categories": category_shares({n: c.summary for n, c in current.items()}),
    }
    summaries: dict[str, tuple[Distribution | Counts, Distribution | Counts]] = {}
    for v in verdict.features:
        r, c = profile.columns[v.name].summary, current[v.name].summary
        if v.drift and r is not None and c is not None:
            summaries[v.name] = (r, c)
    write_report(settings.output, report, summaries, history_html=_history(settings, report))

    drifted = [v for v in verdict.features if v.drift]
    message = (
        f"{verdict.n_drifted} of {verdict.n_features} features drifted"
        + (
            f" ({', '.join(v.name for v in drifted[:3])}{', ...' if len(drifted) > 3 else ''})"
            if drifted
            else ""
        )
        + f"; dataset drift: {'yes' if verdict.dataset_drift else 'no'}"
        + f"; {len(findings)} data-quality findings"
    )
    if metric:
        if metric["value"] is None:
            message += f"; {metric['name']} undefined: {metric['undefinedReason']}"
        else:
            message += f"; {metric['name']} = {metric['value']:.4g}"
            if metric["degraded"]:
                message += " (degraded)"
            elif metric["degraded"] is None:
                message += " (no baseline)"
    if estimated and estimated["value"] is not None:
        message += (
            f"; estimated {estimated['name']} ~ {estimated['value']:.4g} "
            f"[{estimated['lower']:.4g}, {estimated['upper']:.4g}]"
        )
        if estimated["degraded"] and not estimated["overridden"]:
            message += " (degraded)"
    log.info("check done in %.2fs: %s", time.perf_counter() - started, message)
    return {
        "kind": "check",
        "ok": True,
        "reportId": report_id,
        "reportUri": settings.output,
        "datasetDrift": verdict.dataset_drift,
        "driftShare": round(verdict.drift_share, 6),
        "nDrifted": verdict.n_drifted,
        "nFeatures": verdict.n_features,
        "topFeatures": [
            {
                "name": v.name,
                "test": v.test,
                "statistic": round(v.statistic, 6),
                "pValue": None if v.p_value is None else float(f"{v.p_value:.4g}"),
            }
            for v in verdict.features[:5]
        ],
        "qualityFindings": len(findings),
        "quality": [f["message"][:200] for f in findings[:5]],
        "metric": metric,
        "estimatedMetric": _compact_estimate(estimated),
        "servingVersion": traffic.version,
        "rows": {
            "reference": profile.rows,
            "current": traffic.served_rows,
            "window": rows,
            "labeled": labeled,
        },
        "message": message,
    }


def _awaiting_traffic(
    settings: CheckSettings, traffic: Traffic, *, reference_rows: int, now: dt.datetime
) -> dict[str, Any]:
    """The result of a check whose serving version has too little traffic for a verdict.

    Not a failure: the check ran and says so (``ok``, reason ``AwaitingTraffic``). No
    report is written, and no verdict is made from what older versions served.
    """
    message = traffic.awaiting_message(settings.min_rows)
    log.info("no verdict: %s", message)
    return {
        "kind": "check",
        "ok": True,
        "reason": contract.REASON_AWAITING_TRAFFIC,
        "message": message,
        "servingVersion": traffic.version,
        "rows": {
            "reference": reference_rows,
            "current": traffic.served_rows,
            "window": traffic.window_rows,
            "needed": settings.min_rows,
        },
    }


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="the job config JSON (the operator's contract)")
    parser.add_argument("--reference", help="reference data or a profile JSON")
    parser.add_argument("--current", help="current data: Parquet/CSV file, folder, glob or URI")
    parser.add_argument("--labels", help="labels (ground truth) joined to predictions by id")
    parser.add_argument(
        "--labels-id-column", help="the id column of the labels (default: --id-column)"
    )
    parser.add_argument("--window", help="only the last WINDOW of the current data, e.g. 7d")
    parser.add_argument("--output", help="the report folder")
    drift, perf = contract.DriftSpec(), contract.PerformanceSpec()  # the one set of defaults
    parser.add_argument("--numeric-test", default=drift.numeric_test)
    parser.add_argument("--categorical-test", default=drift.categorical_test)
    parser.add_argument("--p-value-threshold", type=float, default=drift.p_value_threshold)
    parser.add_argument(
        "--correction",
        choices=[*contract.CORRECTIONS, *contract.CORRECTION_ALIASES],
        default=drift.correction,
    )
    parser.add_argument("--min-effect-size", type=float, default=drift.min_effect_size)
    parser.add_argument("--drift-share-threshold", type=float, default=drift.drift_share_threshold)
    parser.add_argument("--metric", help="the performance metric (default: accuracy / rmse)")
    parser.add_argument("--baseline", type=float, help="the performance baseline")
    parser.add_argument("--max-degradation", type=float, default=perf.max_degradation)
    parser.add_argument("--min-labeled-rows", type=int, default=perf.min_labeled_rows)
    parser.add_argument(
        "--min-rows",
        type=int,
        help="the fewest rows of the judged version a verdict needs "
        f"(default: spec.data.current.minRows, else {contract.DEFAULT_MIN_ROWS})",
    )
    parser.add_argument(
        contract.ARG_SERVING_VERSION,
        dest="serving_version",
        type=int,
        help="the model version that serves: judge only the rows it served "
        "(default: the newest model_version in the window)",
    )
    parser.add_argument(
        contract.ARG_SERVING_SINCE,
        dest="serving_since",
        help="when that version began serving (RFC 3339): for data without a model_version "
        "column, only later rows count",
    )
    parser.add_argument(
        contract.ARG_SHARDS,
        dest="shards",
        type=int,
        help="split the check across this many processes (the pods of an Indexed Job): "
        "each sketches its share of the window, shard 0 merges and carries the result",
    )
    parser.add_argument(
        "--shard-index",
        type=int,
        help=f"this process's share, 0 to SHARDS-1 (default: ${contract.ENV_SHARD_INDEX})",
    )
    parser.add_argument(
        "--shard-run",
        help="the id the shards of one check share (default: "
        f"${contract.ENV_SHARD_RUN}, which the operator sets to the Job's uid)",
    )
    parser.add_argument(
        "--shard-dir",
        help="where the shards write their plan and sketches (default: "
        "<store>/<model>/shards/<run>)",
    )
    parser.add_argument(
        "--shard-timeout",
        type=float,
        default=3600.0,
        help="seconds a shard waits for the plan, and shard 0 for the others",
    )
    parser.add_argument(
        "--result-path",
        default=contract.TERMINATION_MESSAGE_PATH,
        help="where to write the compact result (default: the termination-message path, "
        "when it exists or with --config)",
    )
    add_role_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> CheckSettings:
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as fh:
                doc = contract.parse_job_config(fh.read())
        except OSError as exc:
            raise ConfigError(f"cannot read the job config {args.config!r}: {exc}") from exc
        except contract.ContractError as exc:
            raise ConfigError(str(exc)) from exc
        settings = settings_from_config(doc)
        if args.mode != "auto":
            settings.mode = args.mode
        return _with_serving(settings, args)
    missing = [o for o in ("reference", "current", "output") if not getattr(args, o)]
    if missing:
        raise ConfigError(
            "modelwatch check needs --config, or --reference, --current and --output; "
            f"missing {', '.join('--' + m for m in missing)}"
        )
    try:
        drift = DriftSettings(
            numeric_test=args.numeric_test,
            categorical_test=args.categorical_test,
            p_value_threshold=args.p_value_threshold,
            correction=args.correction,
            min_effect_size=args.min_effect_size,
            drift_share_threshold=args.drift_share_threshold,
        )
        get_test(drift.numeric_test, "numeric")
        get_test(drift.categorical_test, "categorical")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    now = dt.datetime.now(dt.UTC)
    settings = CheckSettings(
        current=args.current,
        output=args.output,
        reference=args.reference,
        labels=args.labels,
        labels_id_column=args.labels_id_column,
        window=args.window,
        roles=Roles(
            id=args.id_column,
            timestamp=args.timestamp_column or ("timestamp" if args.window else None),
            prediction=args.prediction_column,
            target=args.target,
        ),
        features=[f for f in args.features.split(",") if f] if args.features else None,
        overrides=parse_type_overrides(args.numeric, args.categorical),
        task=args.task,
        drift=drift,
        metric=args.metric,
        baseline=args.baseline,
        max_degradation=args.max_degradation,
        min_labeled_rows=args.min_labeled_rows,
        report_id=_report_id(now),
        mode=args.mode,
        now=now,
    )
    return _with_serving(settings, args)


def _with_serving(settings: CheckSettings, args: argparse.Namespace) -> CheckSettings:
    """Apply ``--serving-version``, ``--serving-since`` and ``--min-rows``."""
    version = getattr(args, "serving_version", None)
    if version is not None:
        if version < 1:
            raise ConfigError(
                f"The '{contract.ARG_SERVING_VERSION}' parameter must be a version >= 1. "
                f"Got {version!r} instead."
            )
        settings.serving_version = version
    since = getattr(args, "serving_since", None)
    if since:
        settings.serving_since = parse_since(since)
    min_rows = getattr(args, "min_rows", None)
    if min_rows is not None:
        try:
            settings.min_rows = contract.parse_field(
                contract.CurrentSpec, "min_rows", min_rows, "--min-rows"
            )
        except contract.ContractError as exc:
            raise ConfigError(str(exc)) from None
    return settings


def _shard_options(args: argparse.Namespace, settings: CheckSettings) -> dict[str, Any]:
    """The sharding options of ``run_sharded`` from the arguments and the environment."""
    shards = int(args.shards)
    if not 1 <= shards <= contract.MAX_PARALLELISM:
        raise ConfigError(
            f"The '{contract.ARG_SHARDS}' parameter must be in [1, {contract.MAX_PARALLELISM}]. "
            f"Got {shards!r} instead."
        )
    index = args.shard_index
    if index is None:
        raw = os.environ.get(contract.ENV_SHARD_INDEX, "0" if shards == 1 else "")
        try:
            index = int(raw)
        except ValueError:
            raise ConfigError(
                f"The '--shard-index' parameter (or ${contract.ENV_SHARD_INDEX}) must be an "
                f"integer. Got {raw!r} instead."
            ) from None
    run_id = args.shard_run or os.environ.get(contract.ENV_SHARD_RUN) or ""
    if not run_id:
        raise ConfigError(
            f"a sharded check needs --shard-run (or ${contract.ENV_SHARD_RUN}): the id its "
            "shards share"
        )
    prune = None
    folder = args.shard_dir
    if not folder:
        if not settings.store or not settings.model:
            raise ConfigError("a sharded check needs --shard-dir, or a store (--config)")
        folder = contract.shards_dir(settings.store, settings.model, run_id)
        prune = contract.shards_dir(settings.store, settings.model)
    return {
        "shards": shards,
        "index": index,
        "run": run_id,
        "folder": folder,
        "timeout": float(args.shard_timeout),
        "prune": prune,
    }


def _log_peak_memory() -> None:
    """Log this process's peak resident memory (a pod's figure, for sizing its limits)."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    log.info("peak RSS %.0f MiB", peak_kib / 1024)


def run(args: argparse.Namespace) -> int:
    result_path = getattr(args, "result_path", contract.TERMINATION_MESSAGE_PATH)
    index = 0
    try:
        settings = settings_from_args(args)
        get_test(settings.drift.numeric_test, "numeric")
        get_test(settings.drift.categorical_test, "categorical")
        if getattr(args, "shards", None) is None:
            result = run_check(settings)
        else:
            from modelwatch_monitor.check.shard_runs import run_sharded

            options = _shard_options(args, settings)
            index = options["index"]
            merged = run_sharded(settings, **options)
            if merged is None:  # a shard's share is in the store; shard 0 has the result
                _log_peak_memory()
                return 0
            result = merged
        code = 0
    except ConfigError as exc:
        result, code = _failure("ConfigError", str(exc)), 1
    except NoDataError as exc:
        result, code = _failure(contract.REASON_NO_DATA, str(exc)), 1
    except DataError as exc:
        result, code = _failure("DataError", str(exc)), 1
    except ValueError as exc:
        result, code = _failure("ConfigError", str(exc)), 1
    except ShardError as exc:  # a shard failed (its reason), or never finished
        result, code = _failure(exc.reason, str(exc)), 1
    except Exception as exc:  # the operator must always get a result
        log.exception("the check failed")
        result, code = _failure("CheckFailed", f"{type(exc).__name__}: {exc}"), 1
    _log_peak_memory()
    if index == 0 and (code == 0 or result.get("reason") == contract.REASON_NO_DATA):
        prune_log(settings)
    explicit = result_path != contract.TERMINATION_MESSAGE_PATH
    if explicit or getattr(args, "config", None) or os.path.exists(result_path):
        text = contract.write_result(result, result_path)
    else:  # a user's machine: no termination-message file to write
        text = contract.encode_result(result)
    if code:
        log.error("%s", result["message"])
    print(text, flush=True)
    return code


def prune_log(settings: CheckSettings) -> list[str]:
    """Delete the prediction log's day partitions older than the retention.

    Only the store's own log (``spec.data.current.uri`` unset) is pruned; a failure is
    logged, never the check's. Returns the deleted partitions.
    """
    if settings.retention_seconds is None or not settings.store or not settings.model:
        return []
    now = settings.now or dt.datetime.now(dt.UTC)
    cutoff = (now - dt.timedelta(seconds=settings.retention_seconds)).date()
    try:
        deleted = prune_partitions(
            contract.predictions_dir(settings.store, settings.model), older_than=cutoff
        )
    except OSError as exc:
        log.warning("cannot prune the prediction log: %s", exc)
        return []
    if deleted:
        log.info("pruned %d prediction log partitions before %s", len(deleted), cutoff)
    return deleted


def _history(settings: CheckSettings, report: Mapping[str, Any]) -> str:
    """The report's history section: the past checks in the store, then this one."""
    if not settings.store or not settings.model:
        return ""
    from modelwatch_monitor.check import history
    from modelwatch_monitor.check.report import clean

    try:
        past = history.load_history(
            settings.store,
            settings.model,
            limit=history.MAX_CHECKS - 1,
            exclude=str(report.get("report_id")),
        )
        points = [*past, history.point_of(clean(report))]
        retrains = history.retrain_times(settings.store, settings.model)
        return history.render_history(points, retrains)
    except Exception as exc:  # a view of the past never fails a check
        log.warning("no history in the report: %s", exc)
        return ""


def _compact_estimate(estimated: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``estimatedMetric`` of the compact result: rounded, reason cut short."""
    if not estimated:
        return None
    out = {
        k: round(v, 6) if isinstance(v, float) else v
        for k, v in estimated.items()
        if k != "undefinedReason"
    }
    reason = estimated.get("undefinedReason")
    out["undefinedReason"] = None if reason is None else str(reason)[:200]
    return out


def _failure(reason: str, message: str) -> dict[str, Any]:
    return {"kind": "check", "ok": False, "reason": reason, "message": message}
