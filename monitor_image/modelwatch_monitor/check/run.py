"""``modelwatch check``: drift, data-quality and performance checks of one window.

Two ways to run it:

- ``modelwatch check --config /etc/modelwatch/config.json`` (the operator's contract;
  see :mod:`modelwatch_monitor.contract` for the spec fields);
- ``modelwatch check --reference REF --current CUR [--labels L --id-column C
  --target T] --output DIR`` for users outside Kubernetes.

Either way the check starts from a parsed spec: the job config's
(``contract.parse_job_config``), or the one the flags describe (:func:`spec_from_args`, a
camelCase mapping as in the CRD, parsed by ``contract.parse_spec``), so a flag takes what
its spec field takes and an error names the flag. This module parses the arguments and
dispatches; the check itself is :mod:`modelwatch_monitor.check.judge` (one pod) or
:mod:`modelwatch_monitor.check.shard_runs` (``--shards N``). The compact result is the
last stdout line (and goes to the termination-message path).

A check judges the version that serves (``--serving-version``, which the operator sets
from ``status.currentVersion``; else the newest version in the window): drift, quality and
performance use only the rows that version served (the ``model_version`` column the model
server logs; without that column, the rows since ``--serving-since``). Rows older versions
served are history in the report, never part of the verdict. Until the serving version has
served ``minRows`` rows in the window, the result has ``reason: AwaitingTraffic`` and no
verdict; an empty window (no traffic) has ``reason: NoData``.

Exit codes: 0 when the check ran (drift or not, awaiting traffic, or no data); 1 when it
could not run (the result then has ``ok: false`` and a ``reason``: ``DataError``,
``ConfigError`` or ``CheckFailed``). No report is left behind on failure, nor without a
verdict.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from pydantic import JsonValue

from modelwatch_monitor import contract
from modelwatch_monitor.check import outcome
from modelwatch_monitor.check.drift import get_test
from modelwatch_monitor.check.judge import run_check
from modelwatch_monitor.check.profile import add_role_arguments, parse_type_overrides
from modelwatch_monitor.check.settings import (
    CheckSettings,
    ConfigError,
    parse_since,
    settings_from_config,
    settings_from_spec,
)
from modelwatch_monitor.check.shard_runs import ShardOptions, run_sharded
from modelwatch_monitor.check.sharding import ShardError
from modelwatch_monitor.check.window import prune_log
from modelwatch_monitor.store.dataio import DataError

log = logging.getLogger(__name__)

#: The flags that stand for a spec field: argument name -> the field's path in the spec.
SPEC_FLAGS: Final[Mapping[str, str]] = {
    "reference": "data.reference.uri",
    "current": "data.current.uri",
    "window": "data.current.window",
    "min_rows": "data.current.minRows",
    "labels": "data.labels.uri",
    "labels_id_column": "data.labels.idColumn",
    "target": "model.target",
    "task": "model.task",
    "id_column": "model.idColumn",
    "prediction_column": "model.predictionColumn",
    "timestamp_column": "model.timestampColumn",
    "numeric_test": "drift.numericTest",
    "categorical_test": "drift.categoricalTest",
    "p_value_threshold": "drift.pValueThreshold",
    "correction": "drift.correction",
    "min_effect_size": "drift.minEffectSize",
    "drift_share_threshold": "drift.driftShareThreshold",
    "metric": "performance.metric",
    "baseline": "performance.baseline",
    "max_degradation": "performance.maxDegradation",
    "min_labeled_rows": "performance.minLabeledRows",
}
#: Flags an operator's check takes beside ``--config``, laid over the config's spec.
CONFIG_FLAGS: Final = ("min_rows",)
#: What a spec requires that a check outside Kubernetes may not have: a monitor's name
#: and store (it stores nothing: the report goes to --output) and, for a drift-only
#: check, a target. They are filled in for the parser and dropped from the settings.
LOCAL_REQUIRED: Final[Mapping[str, str]] = {
    "model.name": "local",
    "store.uri": "/local",
    "model.target": "local",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` options to ``parser`` (defaults: the contract's)."""
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


def flag_of(dest: str) -> str:
    """The command-line spelling of argument ``dest``.

    >>> flag_of("p_value_threshold")
    '--p-value-threshold'
    """
    return "--" + dest.replace("_", "-")


def _put(doc: dict[str, JsonValue], path: str, value: JsonValue) -> None:
    """Set the field at dotted ``path`` of a spec mapping, making its sections; TypeError
    when a section on the way is not an object."""
    *sections, key = path.split(".")
    for section in sections:
        inner = doc.setdefault(section, {})
        if not isinstance(inner, dict):
            raise TypeError(f"{section!r} is not an object")
        doc = inner
    doc[key] = value


_SPEC_PATH = re.compile(r"spec(?:\.[A-Za-z]+)+")


def _name_flags(message: str, dests: list[str]) -> str:
    """``message`` with the spec paths of the flags ``dests`` spelled as those flags."""
    flags = {f"spec.{SPEC_FLAGS[d]}": flag_of(d) for d in dests}
    if "labels" in dests:
        flags["spec.data.labels"] = flag_of("labels")
    return _SPEC_PATH.sub(lambda m: flags.get(m.group(0), m.group(0)), message)


def spec_from_args(args: argparse.Namespace) -> dict[str, JsonValue]:
    """The spec mapping (camelCase, as in the CRD) the flags of a local check describe.

    Each flag of :data:`SPEC_FLAGS` that has a value goes to its field; the fields of
    :data:`LOCAL_REQUIRED` take their stand-ins (a given ``--target`` replaces its own).
    Without ``--task``, the task is the one ``--metric`` suits, so the parser does not
    judge the metric against a task the reference may contradict (:func:`local_settings`
    reads the task from the reference then).
    """
    spec: dict[str, JsonValue] = {}
    for path, stand_in in LOCAL_REQUIRED.items():
        _put(spec, path, stand_in)
    for dest, path in SPEC_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            _put(spec, path, value)
    if getattr(args, "task", None) is None and getattr(args, "metric", None) in contract.METRICS:
        _put(spec, "model.task", contract.METRICS[args.metric][0])
    return spec


def local_settings(spec: contract.Spec, args: argparse.Namespace) -> CheckSettings:
    """The settings of a check outside Kubernetes: those of ``spec``, with no store (the
    report goes to ``--output``) and what the command line may leave out that a spec may
    not: no target (drift only), no window (every row of ``--current``), no task (read from
    the reference), and features named without a type (``--features``) with the types
    of any columns (``--numeric``, ``--categorical``)."""
    settings = settings_from_spec(spec, output=args.output, source="arguments")
    features = [f for f in args.features.split(",") if f] if args.features else None
    return replace(
        settings,
        roles=replace(settings.roles, target=args.target),
        window=args.window,
        task=args.task,
        features=features,
        overrides=parse_type_overrides(args.numeric, args.categorical),
        mode=args.mode,
    )


def read_config(path: str, args: argparse.Namespace) -> contract.JobConfig:
    """Parse the job config at ``path``, with the :data:`CONFIG_FLAGS` given laid over
    its spec (so ``--min-rows`` takes what ``spec.data.current.minRows`` takes)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the job config {path!r}: {exc}") from exc
    given = [d for d in CONFIG_FLAGS if getattr(args, d, None) is not None]
    try:
        return contract.parse_job_config(_overlaid(text, {d: getattr(args, d) for d in given}))
    except contract.ContractError as exc:
        raise ConfigError(_name_flags(str(exc), given)) from exc


def _overlaid(text: str, values: Mapping[str, JsonValue]) -> str:
    """The job config ``text`` with ``values`` (argument name -> value) in its spec; the
    text as it is when it has no spec object (the parser then says what is wrong)."""
    if not values:
        return text
    try:
        doc = json.loads(text)
        for dest, value in values.items():
            _put(doc["spec"], SPEC_FLAGS[dest], value)
    except (ValueError, KeyError, TypeError, AttributeError):
        return text
    return json.dumps(doc)


def settings_from_args(args: argparse.Namespace) -> CheckSettings:
    """The settings of the check the arguments describe (``--config`` or the flags)."""
    if args.config:
        settings = settings_from_config(read_config(args.config, args))
        if args.mode != "auto":
            settings.mode = args.mode
        return _with_serving(settings, args)
    missing = [o for o in ("reference", "current", "output") if not getattr(args, o)]
    if missing:
        raise ConfigError(
            "modelwatch check needs --config, or --reference, --current and --output; "
            f"missing {', '.join('--' + m for m in missing)}"
        )
    mapping = spec_from_args(args)
    try:
        spec = contract.parse_spec(mapping)
    except contract.ContractError as exc:  # every field here is a flag's: name the flags
        raise ConfigError(_name_flags(str(exc), list(SPEC_FLAGS))) from exc
    return _with_serving(local_settings(spec, args), args)


def _with_serving(settings: CheckSettings, args: argparse.Namespace) -> CheckSettings:
    """Apply ``--serving-version`` and ``--serving-since`` (the operator's, not the spec's)."""
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
    return settings


def _shard_options(args: argparse.Namespace, settings: CheckSettings) -> ShardOptions:
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
    """Run the check the arguments describe, print (and write) its result; the exit code."""
    settings: CheckSettings | None = None
    index = 0
    try:
        settings = settings_from_args(args)
        index, result = _dispatch(args, settings)
    except Exception as exc:  # the operator must always get a result
        result = _failure_of(exc)
    _log_peak_memory()
    if result is None:  # a shard's share is in the store; shard 0 has the result
        return 0
    if result["ok"] and index == 0 and settings is not None:
        prune_log(settings)
    _emit(result, args)
    return 0 if result["ok"] else 1


def _dispatch(
    args: argparse.Namespace, settings: CheckSettings
) -> tuple[int, outcome.Result | None]:
    """Run the check in this process or as its share of a sharded check; return the
    shard index (0 for one pod) and the result (None for a shard other than 0)."""
    get_test(settings.drift.numeric_test, "numeric")
    get_test(settings.drift.categorical_test, "categorical")
    if getattr(args, "shards", None) is None:
        return 0, run_check(settings)
    options = _shard_options(args, settings)
    return int(options["index"]), run_sharded(settings, **options)


def _failure_of(exc: Exception) -> outcome.Result:
    """The result of a check that raised ``exc``: the reason its kind says."""
    if isinstance(exc, ConfigError):
        return outcome.failure("ConfigError", str(exc))
    if isinstance(exc, DataError):
        return outcome.failure("DataError", str(exc))
    if isinstance(exc, ValueError):
        return outcome.failure("ConfigError", str(exc))
    if isinstance(exc, ShardError):  # a shard failed (its reason), or never finished
        return outcome.failure(exc.reason, str(exc))
    log.exception("the check failed", exc_info=exc)
    return outcome.failure("CheckFailed", f"{type(exc).__name__}: {exc}")


def _emit(result: outcome.Result, args: argparse.Namespace) -> None:
    """Print the result as the last stdout line; write it to the result path too, when
    that was asked for, with ``--config``, or when the path exists (a pod)."""
    result_path = getattr(args, "result_path", contract.TERMINATION_MESSAGE_PATH)
    explicit = result_path != contract.TERMINATION_MESSAGE_PATH
    if explicit or getattr(args, "config", None) or os.path.exists(result_path):
        text = contract.write_result(result, result_path)
    else:  # a user's machine: no termination-message file to write
        text = contract.encode_result(result)
    if not result["ok"]:
        log.error("%s", result["message"])
    print(text, flush=True)
