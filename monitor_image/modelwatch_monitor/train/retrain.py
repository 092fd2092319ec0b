"""``modelwatch retrain``: train a challenger with FLAML and compare it with the champion.

Two forms::

    modelwatch retrain --config /etc/modelwatch/config.json --version N
        [--champion-version M] [--champion-sha256 SHA] [--trigger-report ID] [--since T]

    modelwatch retrain --train DATA [--holdout DATA] --target COL
        --task classification|regression --time-budget SECONDS
        --store URI --model NAME --version N [--champion-version M]

Steps, one module each: the plan (:mod:`~modelwatch_monitor.train.plan`: the spec, from
the job config or the flags, and version N); the data
(:mod:`~modelwatch_monitor.train.data`: ``spec.retrain.trainingData`` assembled from the
reference data, the labeled recent window, or both, with the most recent labeled slice, or
a given holdout set, held out); the champion, verified against the sha256 the operator
recorded (:mod:`~modelwatch_monitor.train.artifacts`); the FLAML search
(:mod:`~modelwatch_monitor.train.automl`); the comparison of challenger and champion on
the same holdout (:mod:`~modelwatch_monitor.train.comparison`); version N written to the
registry (:mod:`~modelwatch_monitor.train.artifacts`); and the contract result
(:mod:`~modelwatch_monitor.train.results`), written to the termination-message path and
as the last line of stdout.

The challenger is promoted when it beats the champion by at least ``minImprovement``,
an absolute difference in the metric's own units, in the metric's better direction.
With the default metric (``auto``: ROC AUC or R², all greater-is-better and bounded)
0.01 means one point of AUC or R².

A failed retrain writes nothing under versions/N; its reasons are those of
:mod:`~modelwatch_monitor.train.reasons`.
"""

from __future__ import annotations

import argparse
import logging
import time

from modelwatch_monitor import contract
from modelwatch_monitor.store.registry import Registry
from modelwatch_monitor.train import artifacts, automl, comparison, data, results
from modelwatch_monitor.train.plan import Plan, add_arguments, plan_from_args
from modelwatch_monitor.train.reasons import TRAINING_FAILED, VERSION_EXISTS, RetrainError

__all__ = ["add_arguments", "retrain", "run"]  # add_arguments and run: the CLI's protocol

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run one retrain; print and write the result; return the exit code."""
    start = time.perf_counter()
    version = int(args.model_version)
    trigger = str(args.trigger_report or "")
    result: results.RetrainDoc
    try:
        plan = plan_from_args(args)
        trigger = plan.trigger_report
        result = retrain(plan)
    except RetrainError as exc:
        log.error("retrain failed: %s: %s", exc.reason, exc.message)
        result = results.failure(version, trigger, exc.reason, exc.message)
    except Exception as exc:  # a bug or an unforeseen library error: still report it
        log.exception("retrain failed unexpectedly")
        result = results.failure(version, trigger, TRAINING_FAILED, f"{type(exc).__name__}: {exc}")
    result["seconds"] = round(time.perf_counter() - start, 2)
    text = contract.write_result(result, args.termination_log)
    print(text, flush=True)
    return 0 if result["ok"] else 1


def retrain(plan: Plan) -> results.RetrainOkDoc:
    """Run one retrain end to end and return the contract result (``ok: true``).

    A version N already published by an earlier run of the same reservation is reported
    as it is (:func:`~modelwatch_monitor.train.artifacts.published_earlier`).

    Raises
    ------
    RetrainError
        Whenever no version can be written; nothing is written then.
    """
    registry = artifacts.open_registry(plan)
    try:
        artifacts.check_unpublished(registry, plan)
        return _train_and_publish(plan, registry)
    except RetrainError as exc:
        earlier = None
        if exc.reason == VERSION_EXISTS:
            earlier = artifacts.published_earlier(registry, plan)
        if earlier is None:
            raise
        return earlier


def _train_and_publish(plan: Plan, registry: Registry) -> results.RetrainOkDoc:
    training = data.prepare(plan)
    metric = comparison.choose_metric(plan, training.n_classes)
    info = training.data
    log.info(
        "retrain %s v%d: %d training rows (%s), %d holdout rows (%s), %d features, metric %s",
        plan.model,
        plan.version,
        len(training.X_train),
        info.training_info["sources"],
        len(info.holdout),
        info.holdout_info["source"],
        len(training.schema),
        metric,
    )
    # Champion first: a missing or corrupt champion is known before spending the budget.
    champion = artifacts.load_champion(registry, plan)
    try:
        fitted = automl.fit(
            training.X_train,
            training.y_train,
            schema=training.schema,
            task=plan.task,
            metric=metric,
            settings=plan.automl,
        )
    except automl.TrainingError as exc:
        raise RetrainError(TRAINING_FAILED, str(exc)) from exc
    outcome = comparison.compare(plan, training, metric, fitted.model, champion)
    metadata = artifacts.version_metadata(plan, training, fitted, outcome)
    files = artifacts.version_files(plan, info, fitted.model)
    meta = artifacts.publish(registry, plan, fitted.model, metadata, files)
    return results.success(plan, meta, outcome, fitted, training, registry.uri(plan.version))
