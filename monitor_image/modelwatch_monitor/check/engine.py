"""The check's computations over one window: drift, data quality and performance.

Each is a function of the reference profile, the window (restricted to the judged
traffic) and the settings; none writes anything. :mod:`modelwatch_monitor.check.outcome`
turns what they return into the report and the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from modelwatch_monitor import contract
from modelwatch_monitor.check import estimation, loss_estimation, quality
from modelwatch_monitor.check import performance as perf
from modelwatch_monitor.check.documents import EstimateEntry, MetricEntry, PerformanceSection
from modelwatch_monitor.check.drift import Distribution, DriftResult, DriftTest, get_test
from modelwatch_monitor.check.profile import DEFAULT_GRID_SIZE, ColumnProfile, Profile
from modelwatch_monitor.check.settings import CheckSettings, ConfigError
from modelwatch_monitor.check.verdicts import DatasetVerdict, DriftSettings, decide
from modelwatch_monitor.store.dataio import DataError, Source, open_source

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Judgement:
    """What a check found in the window (the judged traffic only).

    Attributes
    ----------
    verdict : DatasetVerdict
        The drift verdicts, per feature and for the dataset.
    current : dict of str to ColumnProfile
        The window's (compacted) summary of each feature.
    findings : list of Finding
        The data-quality findings.
    performance : dict or None
        The report's performance section (None without a target or labels).
    metric : dict or None
        The chosen metric's evaluation, for the result.
    labeled : int
        The rows joined with a label.
    estimated : dict or None
        The estimated metric (None when estimation is off).
    """

    verdict: DatasetVerdict
    current: dict[str, ColumnProfile]
    findings: list[quality.Finding]
    performance: PerformanceSection | None
    metric: MetricEntry | None
    labeled: int
    estimated: EstimateEntry | None


def judge(
    settings: CheckSettings,
    profile: Profile,
    source: Source,
    *,
    version: int | None,
    features: list[str],
    columns: Iterable[ColumnProfile],
) -> Judgement:
    """Test drift, collect data-quality findings, compute and estimate performance.

    ``source`` is the window restricted to the traffic of ``version``; ``columns`` the
    current summaries of ``features``.
    """
    verdict, current = run_drift(profile.columns, columns, settings.drift)
    findings = quality_findings(settings, profile, source, current, features)
    section, metric, labeled = performance(settings, profile, source, version)
    estimated = estimate(settings, profile, source, metric, version)
    return Judgement(verdict, current, findings, section, metric, labeled, estimated)


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


def quality_findings(
    settings: CheckSettings,
    profile: Profile,
    source: Source,
    current: Mapping[str, ColumnProfile],
    features: list[str],
) -> list[quality.Finding]:
    """The data-quality findings: the window's schema against the reference's (role and
    log columns aside), then each feature's values."""
    role_cols = {*settings.roles.names(), *profile.roles.names()}
    role_cols |= {c for c in source.columns if contract.is_log_meta_column(c)}
    findings = quality.schema_findings(
        {n: c.dtype for n, c in profile.columns.items()},
        {n: str(source.schema.field(n).type) for n in source.columns},
        ignore=role_cols,
    )
    for name in features:
        findings.extend(quality.column_findings(profile.columns[name], current[name]))
    return findings


def task_of(settings: CheckSettings, profile: Profile) -> str:
    """The model's task: the settings', else the reference profile's, else classification."""
    task = settings.task or (profile.performance or {}).get("task") or "classification"
    return str(task)


def performance(
    settings: CheckSettings, profile: Profile, source: Source, serving: int | None = None
) -> tuple[PerformanceSection | None, MetricEntry | None, int]:
    """Join labels, compute metrics; return (report section, result metric, labelled rows)."""
    roles = settings.roles
    target = roles.target
    if not target:
        return None, None, 0
    task = task_of(settings, profile)
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

    results: dict[str, MetricEntry] = {}
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
    section: PerformanceSection = {
        "task": task,
        "labeled_rows": n,
        "metric": result,
        "metrics": results,
    }
    return section, result, n


def baseline_of(
    settings: CheckSettings, profile: Profile, name: str, serving: int | None
) -> tuple[float | None, str | None]:
    """The baseline of metric ``name`` and its source: the spec's (chosen metric only),
    else the reference profile's, else the serving (else latest) version's holdout
    score ``metrics.challenger.<name>``."""
    task = task_of(settings, profile)
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


def estimate(
    settings: CheckSettings,
    profile: Profile,
    source: Source,
    realized: MetricEntry | None,
    serving: int | None,
) -> EstimateEntry | None:
    """The estimated metric of the window: from calibrated probabilities (classification)
    or the loss model (regression); None when estimation is off."""

    task = task_of(settings, profile)
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
    settings: CheckSettings,
    preds: pd.DataFrame,
    labels: pd.DataFrame,
    id_col: str,
    lab_id: str,
    matched: int,
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
