"""The one decision of a live evaluation: promote the challenger, abort it, or go on.

Pure and numpy-free: the check Job and the operator can both call it on the figures. A
first-match chain, like the operator's policies; each branch returns its reason from
:mod:`modelwatch_monitor.contract.vocabulary`, its message and the figures.

1. **Software gates** (Flagger's): abort when the challenger's error rate exceeds the
   champion's by more than ``max_error_rate_increase``, or its p99 latency exceeds the
   champion's by more than the fraction ``max_p99_latency_increase``, once it has served
   ``min_gate_requests``.
2. **Labeled rows**: with an improvement interval from a confidence sequence at
   ``alpha`` (:mod:`~modelwatch_monitor.evidence.comparing`), abort when the whole
   interval lies below ``-max_degradation``; promote when it lies above
   ``min_improvement``. The sequence stays valid when this runs after every check, so the
   false-promotion rate is at most ``alpha`` however often it looks.
3. **Before labels**: the estimated metric's interval may abort (below
   ``-max_degradation``), never promote.
4. **maxDuration**: still undecided, abort, or promote when ``on_timeout`` is ``promote``.
5. Otherwise go on: ``AwaitingLabels`` before the first labeled row, else ``Undecided``.

>>> from modelwatch_monitor.evidence.intervals import Interval
>>> won = Comparison("accuracy", 0.80, 0.84, Interval(0.04, 0.02, 0.06), 3000, 3000, True)
>>> decide(Evidence(labeled=won, elapsed_seconds=3600), Bounds(min_improvement=0.01)).action
'Promote'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelwatch_monitor import contract
from modelwatch_monitor.evidence.intervals import UNKNOWN, Interval


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger on one metric at one look.

    Parameters
    ----------
    metric : str
        One of :data:`contract.LIVE_METRICS`.
    champion, challenger : float
        The metric of each (nan before any row).
    improvement : Interval
        How much better the challenger is (positive: better, in the metric's units), with
        the confidence sequence's bounds.
    rows : int
        Labeled rows behind it (paired: pairs; unpaired: both versions' rows).
    challenger_rows : int
        The challenger's labeled rows.
    paired : bool
        Whether both versions scored the same rows.
    """

    metric: str
    champion: float
    challenger: float
    improvement: Interval
    rows: int
    challenger_rows: int
    paired: bool


#: No labeled row yet.
NO_COMPARISON = Comparison("accuracy", math.nan, math.nan, UNKNOWN, 0, 0, True)


@dataclass(frozen=True)
class VersionTraffic:
    """What one version served in the evaluation: requests, errors, p99 latency."""

    requests: int = 0
    errors: int = 0
    p99_seconds: float | None = None

    @property
    def error_rate(self) -> float:
        """Errors per request (0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Evidence:
    """Everything one look at the evaluation knows.

    Parameters
    ----------
    labeled : Comparison
        On label-joined rows (:data:`NO_COMPARISON` before any).
    estimated : Comparison or None
        On the metric estimated without labels, when there is one.
    champion_traffic, challenger_traffic : VersionTraffic
        Requests, errors and p99 latency of each since the evaluation began.
    rows : int
        Rows the challenger scored (served or mirrored), labeled or not.
    elapsed_seconds : float
        Since the evaluation began.
    champion_version, challenger_version : int or None
        For the messages.
    """

    labeled: Comparison = NO_COMPARISON
    estimated: Comparison | None = None
    champion_traffic: VersionTraffic = VersionTraffic()
    challenger_traffic: VersionTraffic = VersionTraffic()
    rows: int = 0
    elapsed_seconds: float = 0.0
    champion_version: int | None = None
    challenger_version: int | None = None


@dataclass(frozen=True)
class Bounds:
    """The evaluation's settings (the spec's ``rollout`` bounds)."""

    alpha: float = 0.05
    min_improvement: float = 0.0
    max_degradation: float = 0.0
    max_error_rate_increase: float = 0.01
    max_p99_latency_increase: float = 0.5
    min_gate_requests: int = 100
    max_duration_seconds: float = 24 * 3600.0
    on_timeout: contract.OnTimeout = "abort"
    min_labeled_rows: int = 1


def bounds_of(rollout: contract.RolloutSpec) -> Bounds:
    """The decision's settings from ``spec.rollout`` (the p99 bound is a ratio there:
    1.5 allows 50 % more latency than the champion's).

    >>> bounds_of(contract.RolloutSpec()).max_p99_latency_increase
    0.5
    """
    return Bounds(
        alpha=rollout.alpha,
        min_improvement=rollout.min_improvement,
        max_degradation=rollout.max_degradation,
        max_error_rate_increase=rollout.max_error_rate_increase,
        max_p99_latency_increase=rollout.max_latency_p99_ratio - 1.0,
        max_duration_seconds=rollout.max_duration_seconds,
        on_timeout=rollout.on_timeout,
        min_labeled_rows=rollout.min_labeled_rows,
    )


@dataclass(frozen=True)
class Decision:
    """What to do, why, and the figures behind it.

    ``source`` says which comparison decided: ``labels``, ``estimate`` or ``traffic``
    (a gate), or ``none``. ``comparison`` is the labeled one unless the estimate decided.
    """

    action: contract.EvaluationAction
    reason: contract.EvaluationReason
    message: str
    comparison: Comparison
    rows: int
    labeled_rows: int
    source: str


def _names(ev: Evidence) -> tuple[str, str]:
    def name(v: int | None, role: str) -> str:
        return f"v{v}" if v is not None else role

    return name(ev.challenger_version, "the challenger"), name(ev.champion_version, "champion")


def _figures(c: Comparison, bounds: Bounds) -> str:
    level = f"{1 - bounds.alpha:.0%}"
    return (
        f"{c.metric} {c.challenger:.4f} vs {c.champion:.4f}, improvement "
        f"{c.improvement} at {level} over {c.rows:,} {'paired ' if c.paired else ''}rows"
    )


def _gate(ev: Evidence, bounds: Bounds) -> tuple[contract.EvaluationReason, str] | None:
    new, old = ev.challenger_traffic, ev.champion_traffic
    if new.requests < bounds.min_gate_requests:
        return None
    challenger, champion = _names(ev)
    rise = new.error_rate - old.error_rate
    if rise > bounds.max_error_rate_increase:
        return contract.EVALUATION_ERROR_RATE, (
            f"{challenger} fails {new.error_rate:.2%} of {new.requests:,} requests against "
            f"{old.error_rate:.2%} for {champion}: more than "
            f"{bounds.max_error_rate_increase:.2%} above"
        )
    if new.p99_seconds is not None and old.p99_seconds is not None and old.p99_seconds > 0:
        limit = old.p99_seconds * (1 + bounds.max_p99_latency_increase)
        if new.p99_seconds > limit:
            return contract.EVALUATION_LATENCY, (
                f"{challenger}'s p99 latency {new.p99_seconds * 1000:.1f} ms is more than "
                f"{bounds.max_p99_latency_increase:.0%} above {champion}'s "
                f"{old.p99_seconds * 1000:.1f} ms"
            )
    return None


def decide(evidence: Evidence, bounds: Bounds) -> Decision:
    """Return whether to promote the challenger, abort it, or keep evaluating.

    Parameters
    ----------
    evidence : Evidence
        The figures at this look.
    bounds : Bounds
        alpha (only recorded here: the intervals were built with it), the improvement and
        degradation margins, the gates, maxDuration and onTimeout.
    """
    labeled = evidence.labeled
    challenger, champion = _names(evidence)

    def out(
        action: contract.EvaluationAction,
        reason: contract.EvaluationReason,
        message: str,
        source: str,
        comparison: Comparison = labeled,
    ) -> Decision:
        return Decision(action, reason, message, comparison, evidence.rows, labeled.rows, source)

    gate = _gate(evidence, bounds)
    if gate is not None:
        return out(contract.ACTION_ABORT, gate[0], gate[1], "traffic")
    if labeled.rows:
        gain = labeled.improvement
        if gain.upper < -bounds.max_degradation:
            return out(
                contract.ACTION_ABORT,
                contract.EVALUATION_CHALLENGER_WORSE,
                f"{challenger} is worse than {champion} on live labels: "
                f"{_figures(labeled, bounds)}; the bound is -{bounds.max_degradation:.4f}",
                "labels",
            )
        if gain.lower > bounds.min_improvement and labeled.rows >= bounds.min_labeled_rows:
            return out(
                contract.ACTION_PROMOTE,
                contract.EVALUATION_CHALLENGER_BETTER,
                f"{challenger} beats {champion} on live labels: {_figures(labeled, bounds)}; "
                f"the minimum is +{bounds.min_improvement:.4f}",
                "labels",
            )
    else:
        est = evidence.estimated
        if est is not None and est.rows and est.improvement.upper < -bounds.max_degradation:
            return out(
                contract.ACTION_ABORT,
                contract.EVALUATION_ESTIMATED_WORSE,
                f"before any label, {challenger} is estimated worse than {champion}: "
                f"{_figures(est, bounds)}; the bound is -{bounds.max_degradation:.4f}",
                "estimate",
                est,
            )
    if evidence.elapsed_seconds >= bounds.max_duration_seconds:
        so_far = f"{_figures(labeled, bounds)}" if labeled.rows else "no labeled row"
        if bounds.on_timeout == "promote":
            return out(
                contract.ACTION_PROMOTE,
                contract.EVALUATION_TIMED_OUT_PROMOTED,
                f"no decision after {evidence.elapsed_seconds:,.0f} s (maxDuration); "
                f"onTimeout is promote: promoting {challenger} ({so_far})",
                "none",
            )
        return out(
            contract.ACTION_ABORT,
            contract.EVALUATION_TIMED_OUT,
            f"no decision after {evidence.elapsed_seconds:,.0f} s (maxDuration): "
            f"aborting {challenger} ({so_far})",
            "none",
        )
    if not labeled.rows:
        return out(
            contract.ACTION_CONTINUE,
            contract.EVALUATION_AWAITING_LABELS,
            f"{challenger} scored {evidence.rows:,} rows; no label has arrived yet",
            "none",
        )
    return out(
        contract.ACTION_CONTINUE,
        contract.EVALUATION_UNDECIDED,
        f"not decided yet: {_figures(labeled, bounds)}",
        "none",
    )


__all__ = [
    "NO_COMPARISON",
    "Bounds",
    "Comparison",
    "Decision",
    "Evidence",
    "VersionTraffic",
    "bounds_of",
    "decide",
]
