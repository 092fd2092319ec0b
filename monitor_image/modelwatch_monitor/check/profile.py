"""The reference profile: computed once from the reference data, reused by every check.

``modelwatch profile REF --output PROFILE`` writes the JSON document described in
:mod:`modelwatch_monitor.check.profile_format`. This module builds it: the feature
types, the exact or streamed (sketch) mode, the column summaries
(:mod:`~modelwatch_monitor.check.column_summary`, :mod:`~modelwatch_monitor.check.sketches`)
and the reference performance; and it runs the ``profile`` command. The names of those
modules that the check uses are re-exported here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np

from modelwatch_monitor import contract
from modelwatch_monitor.check.column_summary import (
    MAX_CATEGORIES,
    OTHER_CATEGORY,
    cap_categories,
    category_counts,
    infer_type,
    is_numeric_dtype,
    numeric_values,
    profile_column,
)
from modelwatch_monitor.check.documents import ReferencePerformance
from modelwatch_monitor.check.drift import FeatureType
from modelwatch_monitor.check.estimation import reference_calibration
from modelwatch_monitor.check.performance import reference_metrics
from modelwatch_monitor.check.profile_format import (
    DEFAULT_GRID_SIZE,
    PROFILE_KIND,
    PROFILE_SCHEMA,
    ColumnProfile,
    Profile,
    Roles,
    is_profile_uri,
)
from modelwatch_monitor.check.sketches import KLL_K, CategoricalAccumulator, NumericAccumulator
from modelwatch_monitor.store.dataio import DataError, Source, open_source

__all__ = [
    "DEFAULT_GRID_SIZE",
    "DEFAULT_MEMORY_BUDGET",
    "KLL_K",
    "MAX_CATEGORIES",
    "OTHER_CATEGORY",
    "PROFILE_KIND",
    "PROFILE_SCHEMA",
    "CategoricalAccumulator",
    "ColumnProfile",
    "NumericAccumulator",
    "Profile",
    "Roles",
    "add_arguments",
    "add_role_arguments",
    "build_profile",
    "cap_categories",
    "category_counts",
    "choose_mode",
    "feature_types",
    "infer_type",
    "is_numeric_dtype",
    "is_profile_uri",
    "memory_budget",
    "numeric_values",
    "parse_type_overrides",
    "profile_column",
    "roles_from_args",
    "run",
    "summarize",
]

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET: Final = 1 << 30


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


def _reference_performance(
    src: Source, roles: Roles, task: str | None
) -> ReferencePerformance | None:
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
    performance: ReferencePerformance = {
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
