"""Sharded checks: N pods each sketch a share of the window; one merges and decides.

A check with ``spec.check.parallelism: N`` runs as an Indexed Job of N pods
(``modelwatch check --config ... --shards N``; Kubernetes sets ``JOB_COMPLETION_INDEX``).
The pod of index 0 is the coordinator::

    index 0:  plan  ->  sketch its share  ->  wait for every shard file  ->  merge, decide
    index i:  wait for the plan  ->  sketch its share  ->  write shard-i.json, exit 0

The **plan** (``plan.json``) fixes, once, what every pod reads: the instant ``now`` the
window ends at, the window's files, each pod's share of their Parquet row groups (balanced
by rows), the judged version and how its rows are told apart, and the feature types. A
pod that is retried reads the same plan, so a retried shard overwrites its own file
(``shard-<i>.json``, written to a temporary name, then renamed) with the same numbers.

A **shard file** holds mergeable summaries of the rows the serving version served in the
pod's share: per numeric feature a KLL sketch (``k = 4000``), the row, null and value
counts, mean and sum of squared deviations; per categorical feature its counts; and the
window's rows per ``model_version``. Merging is exact for the counts and moments, and
keeps the KLL rank-error guarantee for the quantiles, so the verdicts are those of one pod
streaming the window in ``sketch`` mode (:mod:`modelwatch_monitor.check.judge`), within the
bound each drift statistic states. The serving-version filter applies in every shard.

Performance and its estimate need the labels joined by id (not mergeable as sketches):
the coordinator computes them over the window's few columns they read, as one pod does.

A shard that cannot do its job (exit code 1) writes its failure into its shard file; the
coordinator then fails with that shard's reason, so the one result the operator reads
(index 0's termination message) says what went wrong. The files, the waiting and each
pod's part are in :mod:`modelwatch_monitor.check.shard_runs`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from modelwatch_monitor import contract
from modelwatch_monitor.check import outcome
from modelwatch_monitor.check.documents import ColumnState, Parts, PlanDoc, ShardDoc
from modelwatch_monitor.check.drift import Counts, Distribution, FeatureType
from modelwatch_monitor.check.judge import finish_check
from modelwatch_monitor.check.profile import (
    KLL_K,
    CategoricalAccumulator,
    ColumnProfile,
    NumericAccumulator,
    Profile,
    cap_categories,
)
from modelwatch_monitor.check.reference import follow_serving, prepare_check
from modelwatch_monitor.check.settings import CheckSettings, ConfigError, report_id_of
from modelwatch_monitor.check.traffic import (
    Traffic,
    add_version_counts,
    rows_by_version,
    version_filter,
)
from modelwatch_monitor.check.window import NoDataError, check_types, no_rows_error, open_window
from modelwatch_monitor.store.dataio import DataError

if TYPE_CHECKING:
    import pyarrow.dataset as pads

PLAN_KIND: Final = "modelwatch-check-plan"
SHARD_KIND: Final = "modelwatch-check-shard"
SHARD_SCHEMA: Final = 1


class ShardError(RuntimeError):
    """A shard failed, or did not finish in time; ``reason`` is the check's reason (one
    of ``contract.CHECK_FAILURE_REASONS``, else ``CheckFailed``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason if reason in contract.CHECK_FAILURE_REASONS else "CheckFailed"


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What every shard of one check reads (see the module docstring).

    Attributes
    ----------
    run : str
        The check's id shared by its pods (the Job's uid).
    shards : int
        How many pods share the window.
    now : datetime
        The instant the window ends at, the same for every shard.
    files : list of str
        The window's files, listed once.
    parts : list of Parts
        Per shard, the files and row groups it reads.
    basis : str
        How the judged rows are told apart (``Traffic.basis``).
    version : int or None
        The judged version.
    since : datetime or None
        When it began serving.
    types : dict of str to FeatureType
        The features and their types, in order.
    reference_rows : int
        The rows of the configured reference (what one pod reports while awaiting traffic).
    """

    run: str
    shards: int
    now: dt.datetime
    files: list[str]
    parts: list[Parts]
    basis: str
    version: int | None
    since: dt.datetime | None
    types: dict[str, FeatureType]
    reference_rows: int = 0

    def to_dict(self) -> PlanDoc:
        return {
            "kind": PLAN_KIND,
            "schema": SHARD_SCHEMA,
            "run": self.run,
            "shards": self.shards,
            "now": self.now.isoformat(),
            "files": self.files,
            "parts": self.parts,
            "basis": self.basis,
            "version": self.version,
            "since": None if self.since is None else self.since.isoformat(),
            "types": self.types,
            "referenceRows": self.reference_rows,
        }

    @classmethod
    def from_dict(cls, d: PlanDoc) -> Plan:
        if d.get("kind") != PLAN_KIND or d.get("schema") != SHARD_SCHEMA:
            raise DataError("not a modelwatch check plan (kind or schema)")
        since, version = d.get("since"), d.get("version")
        return cls(
            run=str(d["run"]),
            shards=int(d["shards"]),
            now=dt.datetime.fromisoformat(d["now"]),
            files=[str(f) for f in d["files"]],
            parts=[dict(p) for p in d["parts"]],
            basis=str(d["basis"]),
            version=None if version is None else int(version),
            since=None if since is None else dt.datetime.fromisoformat(since),
            types=dict(d["types"]),
            reference_rows=int(d.get("referenceRows", 0)),
        )


def balance(units: Sequence[tuple[str, int]], shards: int) -> list[Parts]:
    """Deal ``(file, rows)`` row groups to ``shards`` shares of about equal rows.

    Each share is a contiguous run of the units in their order (a file's row groups in
    order, then the next file's), cut where the running row count crosses ``k / shards``
    of the total (a unit goes to the share that holds its middle row), so the shares
    differ by at most about one unit. Contiguous runs keep each pod's reads sequential
    and each file in as few pods as possible: dealing row groups in turn made every pod
    read every other row group of every file, and ranged reads from an object store
    (with readahead past the range) were several times slower. Units of unknown size
    (-1, a CSV file) weigh one row group of the median size.

    >>> balance([("a", 10), ("a", 10), ("b", 5), ("c", 5)], 2)
    [{'a': [0]}, {'a': [1], 'b': None, 'c': None}]
    >>> balance([("a", 4), ("a", 4), ("b", 4), ("b", 4)], 2)
    [{'a': None}, {'b': None}]
    """
    if shards < 1:
        raise ValueError(f"The 'shards' parameter must be >= 1. Got {shards!r} instead.")
    known = sorted(r for _, r in units if r >= 0)
    typical = known[len(known) // 2] if known else 1
    groups: dict[str, int] = {}
    indexed = []
    for f, rows in units:
        indexed.append((f, groups.get(f, 0), rows if rows >= 0 else typical))
        groups[f] = groups.get(f, 0) + 1
    total = sum(rows for _, _, rows in indexed)
    chosen: list[dict[str, list[int]]] = [{} for _ in range(shards)]
    done = 0
    for f, g, rows in indexed:
        middle = done + rows / 2
        i = min(shards - 1, int(middle * shards / total)) if total > 0 else 0
        chosen[i].setdefault(f, []).append(g)
        done += rows
    out: list[Parts] = []
    for share in chosen:
        parts: Parts = {}
        for f in sorted(share):
            rgs = sorted(share[f])
            parts[f] = None if len(rgs) == groups[f] else rgs
        out.append(parts)
    return out


def make_plan(settings: CheckSettings, *, shards: int, run: str) -> tuple[Plan, Profile, list[str]]:
    """Plan a sharded check of ``settings``.

    Checks the store, labels and reference as one pod does (saving the reference profile
    when it computes it), lists the window's files, picks the judged version and deals the
    row groups. Returns the plan, the profile that judges the window and its features.

    Raises
    ------
    DataError, ConfigError, NoDataError
        When the check cannot run.
    """
    now = settings.now or dt.datetime.now(dt.UTC)
    profile, features = prepare_check(settings)
    try:
        source = open_window(settings, features, now=now)
    except NoDataError as exc:
        exc.reference_rows = profile.rows
        raise
    version = settings.serving_version
    has_versions = contract.LOG_MODEL_VERSION in source.columns
    if version is None and has_versions:
        # No operator named it: the newest version in the window (one column read).
        by_version = rows_by_version(source)
        version = max(by_version) if by_version else None
    since = settings.serving_since
    timestamp = settings.roles.timestamp
    # One pod decides this from the counts it has read; the plan decides before the shards
    # read: a model_version column (the model server's log) tells versions apart. (A column
    # that is null in every row of the window then judges no rows, where one pod would
    # fall back to servingSince: data the model server did not log has no such column.)
    if has_versions and version is not None:
        basis = "model_version"
    elif since is not None and timestamp and timestamp in source.columns:
        basis = "servingSince"
    else:
        basis = "window"
    reference_rows = profile.rows
    profile, features = follow_serving(settings, profile, features, version)
    source.require(features, "feature column")
    check_types(profile.columns, source, features)
    plan = Plan(
        run=run,
        shards=shards,
        now=now,
        files=list(source.files),
        parts=balance(source.row_groups(), shards),
        basis=basis,
        version=version,
        since=since,
        types={f: profile.columns[f].type for f in features},
        reference_rows=reference_rows,
    )
    return plan, profile, features


# ---------------------------------------------------------------------------
# One shard
# ---------------------------------------------------------------------------


@dataclass
class ShardSummary:
    """The mergeable summary of one shard's rows (the content of ``shard-<i>.json``)."""

    index: int
    window_rows: int = 0
    served_rows: int = 0
    by_version: dict[int, int] = field(default_factory=dict)
    columns: dict[str, ColumnState] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self, run: str, shards: int) -> ShardDoc:
        return {
            "kind": SHARD_KIND,
            "schema": SHARD_SCHEMA,
            "run": run,
            "index": self.index,
            "shards": shards,
            "ok": True,
            "windowRows": self.window_rows,
            "servedRows": self.served_rows,
            "byVersion": {str(k): v for k, v in sorted(self.by_version.items())},
            "columns": self.columns,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, d: ShardDoc) -> ShardSummary:
        return cls(
            index=int(d["index"]),
            window_rows=int(d["windowRows"]),
            served_rows=int(d["servedRows"]),
            by_version={int(k): int(v) for k, v in d["byVersion"].items()},
            columns=dict(d["columns"]),
            seconds=float(d.get("seconds", 0.0)),
        )


def _numeric_state(acc: NumericAccumulator) -> ColumnState:
    n = int(acc.sketch.n)
    mean = m2 = 0.0
    if n:
        mean = (acc.shift or 0.0) + acc.s1 / n
        m2 = max(acc.s2 - acc.s1 * acc.s1 / n, 0.0)
    return {
        "type": "numeric",
        "dtype": acc.dtype,
        "rows": acc.rows,
        "nulls": acc.nulls,
        "n": n,
        "mean": mean,
        "m2": m2,
        "sketch": base64.b64encode(acc.sketch.serialize()).decode("ascii"),
    }


def _categorical_state(acc: CategoricalAccumulator) -> ColumnState:
    return {
        "type": "categorical",
        "dtype": acc.dtype,
        "rows": acc.rows,
        "nulls": acc.nulls,
        "counts": acc.counts,
    }


def run_shard(
    settings: CheckSettings, plan: Plan, index: int, *, batch_rows: int = 262_144
) -> ShardSummary:
    """Sketch shard ``index``'s share of the window: only the rows the judged version
    served, counted by ``model_version`` before that filter (as one pod counts them).

    Raises
    ------
    DataError, ConfigError
        When the share cannot be read.
    """
    import pyarrow as pa

    if not 0 <= index < plan.shards:
        raise ConfigError(f"The shard index must be in [0, {plan.shards}). Got {index!r} instead.")
    started = time.perf_counter()
    features = list(plan.types)
    source = open_window(settings, features, now=plan.now, files=plan.files)
    has_versions = contract.LOG_MODEL_VERSION in source.columns
    extra: list[str] = []
    traffic_expr: pads.Expression | None = None
    if plan.basis == "model_version" and plan.version is not None:
        traffic_expr = version_filter(source, plan.version)
    elif plan.basis == "servingSince" and plan.since is not None:
        assert settings.roles.timestamp
        traffic_expr = source.since_filter(settings.roles.timestamp, plan.since)
        extra.append(settings.roles.timestamp)
    if has_versions:
        extra.append(contract.LOG_MODEL_VERSION)
    columns = list(dict.fromkeys([*features, *extra]))
    accs: dict[str, NumericAccumulator | CategoricalAccumulator] = {}
    for n, t in plan.types.items():
        dtype = str(source.schema.field(n).type)
        accs[n] = (
            NumericAccumulator(n, dtype) if t == "numeric" else CategoricalAccumulator(n, dtype)
        )
    summary = ShardSummary(index=index)
    for batch in source.batches(columns, batch_rows=batch_rows, parts=plan.parts[index]):
        summary.window_rows += batch.num_rows
        if has_versions:
            column = batch.column(columns.index(contract.LOG_MODEL_VERSION))
            add_version_counts(column, summary.by_version)
        served = [batch]
        if traffic_expr is not None:
            table = pa.Table.from_batches([batch]).filter(traffic_expr)
            served = table.to_batches() if table.num_rows else []
        for part in served:
            summary.served_rows += part.num_rows
            for i, n in enumerate(features):
                accs[n].update(part.column(i))
    for n, acc in accs.items():
        summary.columns[n] = (
            _numeric_state(acc) if isinstance(acc, NumericAccumulator) else _categorical_state(acc)
        )
    summary.seconds = time.perf_counter() - started
    return summary


# ---------------------------------------------------------------------------
# Merge
# ---------------------------------------------------------------------------


def merge_columns(
    summaries: Sequence[ShardSummary], types: Mapping[str, FeatureType], *, grid_size: int = 4096
) -> dict[str, ColumnProfile]:
    """Merge the shards' summaries into one ColumnProfile per feature (as one pod's
    ``sketch`` mode makes them): sketches merged, counts summed, moments combined."""
    from datasketches import kll_doubles_sketch

    out: dict[str, ColumnProfile] = {}
    for name, ftype in types.items():
        states = [s.columns[name] for s in summaries]
        rows = sum(int(s["rows"]) for s in states)
        nulls = sum(int(s["nulls"]) for s in states)
        dtype = str(states[0]["dtype"]) if states else ""
        summary: Distribution | Counts | None = None
        if ftype == "numeric":
            sketch = kll_doubles_sketch(KLL_K)
            n, mean, m2 = 0, 0.0, 0.0
            for s in states:
                k = int(s["n"])
                if not k:
                    continue
                sketch.merge(kll_doubles_sketch.deserialize(base64.b64decode(s["sketch"])))
                delta = float(s["mean"]) - mean
                total = n + k
                mean += delta * k / total
                m2 += float(s["m2"]) + delta * delta * n * k / total
                n = total
            if n:
                std = float(np.sqrt(max(m2 / n, 0.0)))
                summary = Distribution.from_kll(sketch, mean=mean, std=std, grid_size=grid_size)
        else:
            counts: dict[str, int] = {}
            for s in states:
                for c, v in s["counts"].items():
                    counts[c] = counts.get(c, 0) + int(v)
            summary = Counts(cap_categories(counts)) if counts else None
        out[name] = ColumnProfile(name, ftype, dtype, rows, nulls, summary)
    return out


def merge_check(
    settings: CheckSettings,
    plan: Plan,
    summaries: Sequence[ShardSummary],
    *,
    profile: Profile | None = None,
    features: list[str] | None = None,
    started: float | None = None,
) -> outcome.Result:
    """Merge the shards of ``plan`` and finish the check as one pod would: the same
    ``NoData`` and ``AwaitingTraffic`` outcomes, the same report and result.

    ``profile`` and ``features`` are the planner's (recomputed when not given).
    """
    started = time.perf_counter() if started is None else started
    indexes = sorted(s.index for s in summaries)
    if indexes != list(range(plan.shards)):
        raise ShardError(
            "CheckFailed", f"the merge needs shards 0..{plan.shards - 1}; got {indexes}"
        )
    report_id = report_id_of(plan.now)  # the same id when the coordinator is retried
    output = settings.output
    store, model = settings.store, settings.model
    if store and model and output == contract.report_dir(store, model, settings.report_id):
        output = contract.report_dir(store, model, report_id)
    settings = dataclasses.replace(settings, now=plan.now, report_id=report_id, output=output)
    window_rows = sum(s.window_rows for s in summaries)
    served = sum(s.served_rows for s in summaries)
    by_version: dict[int, int] = {}
    for s in summaries:
        for v, k in s.by_version.items():
            by_version[v] = by_version.get(v, 0) + k
    if profile is None or features is None:
        profile, features = prepare_check(settings)
        profile, features = follow_serving(settings, profile, features, plan.version)
    if list(plan.types) != list(features):
        raise ConfigError(
            "the job config changed during the check: the plan's features "
            f"{list(plan.types)} are not {features}"
        )
    if window_rows == 0:
        message = str(no_rows_error(settings))
        return outcome.no_data(settings, message, reference_rows=plan.reference_rows)
    traffic = Traffic(plan.version, plan.basis, window_rows, served, by_version, plan.since)
    if served < settings.min_rows:
        return outcome.awaiting_traffic(settings, traffic, reference_rows=plan.reference_rows)
    source = open_window(settings, features, now=plan.now, files=plan.files)
    if plan.basis == "model_version" and plan.version is not None:
        source.restrict(version_filter(source, plan.version), [contract.LOG_MODEL_VERSION])
    elif plan.basis == "servingSince" and plan.since is not None:
        assert settings.roles.timestamp
        source.select_since(settings.roles.timestamp, plan.since)
    columns = merge_columns(summaries, plan.types)
    return finish_check(
        settings,
        profile=profile,
        source=source,
        traffic=traffic,
        features=features,
        columns=list(columns.values()),
        rows=window_rows,
        mode="sketch",
        now=plan.now,
        started=started,
        shards=plan.shards,
    )
