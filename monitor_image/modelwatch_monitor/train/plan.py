"""What one retrain trains: the validated plan, from the job config or the command line.

Both forms go through the contract's spec parser: ``--config`` mounts the job config
(:func:`modelwatch_monitor.contract.parse_job_config`); without it, the convenience flags
are written into a spec mapping, camelCase as in the CRD (:func:`spec_from_flags`), and
parsed with :func:`modelwatch_monitor.contract.parse_spec`. Defaults are the spec's.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelwatch_monitor import contract
from modelwatch_monitor.train.automl import AutoMLSettings, cpu_limit
from modelwatch_monitor.train.reasons import CONFIG_ERROR, RetrainError

if TYPE_CHECKING:
    from pydantic import JsonValue


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


#: The convenience flags that stand for a spec field: argparse ``dest`` and spec path.
FLAG_FIELDS: tuple[tuple[str, str], ...] = (
    ("model", "model.name"),
    ("target", "model.target"),
    ("task", "model.task"),
    ("id_column", "model.idColumn"),
    ("timestamp_column", "model.timestampColumn"),
    ("train", "data.reference.uri"),
    ("store", "store.uri"),
    ("holdout_fraction", "retrain.holdoutFraction"),
    ("min_improvement", "retrain.minImprovement"),
    ("time_budget", "retrain.automl.timeBudgetSeconds"),
    ("metric", "retrain.automl.metric"),
    ("estimators", "retrain.automl.estimators"),
    ("seed", "retrain.automl.seed"),
)
#: What the convenience form fixes: it trains on the given file, however few its rows.
FLAG_FIXED: tuple[tuple[str, str | int], ...] = (
    ("retrain.trainingData", "reference"),
    ("retrain.minLabeledRows", 1),
)
REQUIRED_FLAGS = ("train", "target", "task", "time_budget", "store", "model")


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
    flags = parser.add_argument_group(
        "without --config",
        "written into a spec and parsed as the job config is; a flag left out takes the "
        "spec's default",
    )
    paths = dict(FLAG_FIELDS)

    def flag(
        dest: str,
        text: str = "",
        *,
        type: Callable[[str], object] = str,
        choices: Sequence[str] | None = None,
    ) -> None:
        where = f"spec.{paths[dest]}" if dest in paths else ""
        help_text = "; ".join(t for t in (text, where) if t)
        flags.add_argument(
            _flag(dest), dest=dest, help=help_text or None, type=type, choices=choices
        )

    flag("train", "training data (Parquet/CSV file, folder, glob or URI)")
    flag("holdout", "holdout data; default: the last rows of --train")
    flag("target", "target column")
    flag("task", choices=list(contract.TASKS))
    flag("time_budget", "FLAML time budget in whole seconds", type=float)
    flag("store", "model store path or URI")
    flag("model", "model name, a DNS-1123 label")
    flag("metric")
    flag("estimators", "comma-separated")
    flag("seed", type=int)
    flag("min_improvement", type=float)
    flag("holdout_fraction", type=float)
    flag("id_column")
    flag("timestamp_column")
    flag("features", "comma-separated feature columns (default: all)")
    parser.add_argument("--n-jobs", type=int, help="default: the container's CPU limit")


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Build the plan from the job config (``--config``) or the convenience flags."""
    return plan_from_config(args) if args.config else plan_from_flags(args)


def plan_from_config(args: argparse.Namespace) -> Plan:
    """Build a plan from the mounted job config (``--config``)."""
    try:
        with open(args.config, encoding="utf-8") as fh:
            config = contract.parse_job_config(fh.read())
    except OSError as exc:
        raise RetrainError(CONFIG_ERROR, f"cannot read job config {args.config}: {exc}") from exc
    except contract.ContractError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc
    return plan_from_spec(config.spec, args, reuse_published=True)


def _flag(dest: str) -> str:
    return f"--{dest.replace('_', '-')}"


def spec_from_flags(args: argparse.Namespace) -> dict[str, JsonValue]:
    """Return the spec mapping (camelCase, as in the CRD) the convenience flags stand for.

    A flag left out is left out of the mapping, so the spec's default applies.

    >>> ns = argparse.Namespace(model="demand", target="y", task="regression", train="t.csv",
    ...     store="/store", time_budget=2.0, estimators="lgbm, rf", seed=None)
    >>> spec_from_flags(ns)["retrain"]["automl"]
    {'timeBudgetSeconds': 2, 'estimators': ['lgbm', 'rf']}
    """
    spec: dict[str, JsonValue] = {}
    values: list[tuple[str, JsonValue]] = []
    for dest, path in FLAG_FIELDS:
        value: JsonValue = getattr(args, dest, None)
        if dest == "estimators" and isinstance(value, str):
            value = [e.strip() for e in value.split(",") if e.strip()]
        elif dest == "time_budget" and isinstance(value, float) and value.is_integer():
            value = int(value)  # timeBudgetSeconds is an integer; "--time-budget 2" reads 2.0
        if value is not None:
            values.append((path, value))
    for path, value in [*values, *FLAG_FIXED]:
        *parents, key = path.split(".")
        node = spec
        for part in parents:
            child = node.setdefault(part, {})
            assert isinstance(child, dict)  # FLAG_FIELDS and FLAG_FIXED nest, never clash
            node = child
        node[key] = value
    return spec


def plan_from_flags(args: argparse.Namespace) -> Plan:
    """Build a plan from the convenience flags (no ``--config``)."""
    missing = [_flag(name) for name in REQUIRED_FLAGS if getattr(args, name) in (None, "")]
    if missing:
        raise RetrainError(CONFIG_ERROR, f"without --config, retrain needs {', '.join(missing)}")
    try:
        spec = contract.parse_spec(spec_from_flags(args))
    except contract.ContractError as exc:
        message = str(exc)
        for dest, path in sorted(FLAG_FIELDS, key=lambda f: -len(f[1])):
            message = message.replace(f"spec.{path}", _flag(dest))
        raise RetrainError(CONFIG_ERROR, message) from exc
    features = [f.strip() for f in args.features.split(",")] if args.features else None
    return plan_from_spec(
        spec,
        args,
        reuse_published=False,
        train_uri=spec.data.reference.uri,
        holdout_uri=args.holdout,
        feature_order=features,
    )


def plan_from_spec(
    spec: contract.Spec,
    args: argparse.Namespace,
    *,
    reuse_published: bool,
    train_uri: str | None = None,
    holdout_uri: str | None = None,
    feature_order: list[str] | None = None,
) -> Plan:
    """Build and check the plan for a parsed spec and the run's own arguments.

    ``train_uri`` (the convenience form) trains on that data instead of the spec's
    reference, recent and labels data.
    """
    model = spec.model
    retrain_spec = spec.retrain
    features = model.features
    labels = spec.data.labels
    plan = Plan(
        model=model.name,
        store=spec.store.uri,
        version=int(args.model_version),
        task=model.task,
        target=model.target,
        automl=_automl_settings(retrain_spec.automl, getattr(args, "n_jobs", None)),
        champion_version=args.champion_version,
        champion_sha256=getattr(args, "champion_sha256", None) or None,
        trigger_report=str(args.trigger_report or ""),
        id_column=model.id_column,
        timestamp_column=model.timestamp_column,
        prediction_column=model.prediction_column,
        declared_features={f.name: f.type for f in features} if features else None,
        feature_order=feature_order or ([f.name for f in features] if features else None),
        training_data=retrain_spec.training_data,
        holdout_fraction=retrain_spec.holdout_fraction,
        min_labeled_rows=retrain_spec.min_labeled_rows,
        min_improvement=retrain_spec.min_improvement,
        reference_uri=None if train_uri else spec.data.reference.uri,
        current_uri=None
        if train_uri
        else spec.data.current.uri or contract.predictions_dir(spec.store.uri, model.name),
        current_window=spec.data.current.window,
        labels_uri=None if labels is None else labels.uri,
        labels_id_column=spec.labels_id_column,
        since=_parse_since(getattr(args, "since", None)),
        train_uri=train_uri,
        holdout_uri=holdout_uri,
        reuse_published=reuse_published,
    )
    return _check(plan)


def _automl_settings(automl: contract.AutomlSpec, n_jobs: int | None) -> AutoMLSettings:
    try:
        return AutoMLSettings(
            time_budget=float(automl.time_budget_seconds),
            metric=str(automl.metric),
            estimators=tuple(str(e) for e in automl.estimators),
            seed=automl.seed,
            n_jobs=n_jobs or cpu_limit(),
        )
    except ValueError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc


def _parse_since(text: str | None) -> dt.datetime | None:
    """Parse ``--since`` (RFC 3339; a naive time is UTC)."""
    if not text:
        return None
    try:
        return contract.parse_timestamp(text, "--since")
    except contract.ContractError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from None


def _check(plan: Plan) -> Plan:
    """Check what the spec parser does not: the version numbers and the bounds."""
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
    if plan.training_data not in contract.TRAINING_DATA:
        raise RetrainError(
            CONFIG_ERROR,
            "The 'trainingData' parameter of spec.retrain must be one of "
            f"{list(contract.TRAINING_DATA)}. Got {plan.training_data!r} instead.",
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
