"""The retrain Job's result documents (the contract's ``kind: retrain``), built from state.

Pure functions: the orchestrator hands them what happened; they return the mapping that
:func:`modelwatch_monitor.contract.write_result` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelwatch_monitor.train.automl import FitResult
from modelwatch_monitor.train.comparison import Comparison
from modelwatch_monitor.train.data import TrainingSet
from modelwatch_monitor.train.plan import Plan


def failure(version: int, trigger: str, reason: str, message: str) -> dict[str, Any]:
    """Return the result of a retrain that wrote nothing (``ok: false``)."""
    return {
        "kind": "retrain",
        "ok": False,
        "version": version,
        "reason": reason,
        "message": message,
        "reportId": trigger,
    }


def success(
    plan: Plan,
    meta: Mapping[str, Any],
    outcome: Comparison,
    fitted: FitResult,
    training: TrainingSet,
    uri: str,
) -> dict[str, Any]:
    """Return the result of a retrain that published version N (its metadata ``meta``)."""
    promotion = outcome.promotion
    improvement = promotion.improvement
    return {
        "kind": "retrain",
        "ok": True,
        "version": plan.version,
        "sha256": meta["sha256"],
        "metric": outcome.metric,
        "greaterIsBetter": outcome.greater_is_better,
        "challenger": {"score": outcome.challenger_score},
        "champion": None
        if outcome.champion_version is None
        else {"version": outcome.champion_version, "score": outcome.champion_score},
        "improvement": None if improvement is None else round(improvement, 6),
        "minImprovement": plan.min_improvement,
        "promote": promotion.promote,
        "reason": promotion.reason,
        "message": promotion.message,
        "reportId": plan.trigger_report,
        "bestEstimator": fitted.best_estimator,
        "rows": {"train": len(training.X_train), "holdout": len(training.data.holdout)},
        "uri": uri,
        "libraries": meta["libraries"],
    }


NEEDED = ("sha256", "metric", "promote", "reason", "metrics")


def published(plan: Plan, meta: Mapping[str, Any], uri: str) -> dict[str, Any] | None:
    """Return the result of the earlier run that published ``plan.version`` (``meta``).

    None when ``meta`` is not the metadata a retrain writes.
    """
    if any(meta.get(key) is None for key in NEEDED):
        return None
    metric = str(meta["metric"])
    challenger = (meta.get("metrics") or {}).get("challenger") or {}
    champion = meta.get("champion") or None
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
        "uri": uri,
        "libraries": meta.get("libraries"),
        "reused": True,
    }
