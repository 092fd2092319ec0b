"""Pure decisions over gathered state. No API calls, no clock: ``now`` is an argument.

Each policy returns a :class:`Decision` ``(fire, reason, message)``; the reason is a
CamelCase word and the message a sentence, both copied verbatim into a condition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

_DURATION_RE: Final = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

LOWER_IS_BETTER: Final = frozenset({"log_loss", "rmse", "mae", "mse", "mape"})


def _score(value: Any) -> str:
    """Format a holdout score for a message.

    >>> _score(0.818856123), _score(None)
    ('0.8189', 'none')
    """
    return f"{value:.4g}" if isinstance(value, int | float) else "none"


class Decision(NamedTuple):
    """The outcome of one policy: whether it fires, and why."""

    fire: bool
    reason: str
    message: str


class RolloutState(NamedTuple):
    """Where a Deployment rollout stands: ``state`` is Progressing, Complete or Failed."""

    state: str
    reason: str
    message: str


PROGRESSING: Final = "Progressing"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"


def parse_duration(text: str) -> float:
    """Return the seconds of a duration such as ``"90s"``, ``"15m"``, ``"1h"`` or ``"7d"``.

    >>> parse_duration("1h"), parse_duration("7d")
    (3600.0, 604800.0)
    """
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"The duration must be a number followed by s, m, h or d. Got {text!r} instead."
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str | None) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp as written in status; None when absent or invalid."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def format_time(value: dt.datetime) -> str:
    """Format a timestamp as RFC 3339 with a Z suffix, seconds precision."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------
# Check results
# ---------------------------------------------------------------------------


class Violation(NamedTuple):
    """What one check found: data drift, performance degradation, or both.

    ``estimated_degraded``: the metric estimated without labels dropped beyond
    ``maxDegradation``, its whole band included, and no labels overrode it.
    """

    drift: bool
    degraded: bool
    estimated_degraded: bool = False


def classify_check(result: Mapping[str, Any]) -> Violation:
    """Return which violations a successful check result shows.

    >>> classify_check({"datasetDrift": True, "metric": {"degraded": False}})
    Violation(drift=True, degraded=False, estimated_degraded=False)
    >>> classify_check({"datasetDrift": False, "metric": None,
    ...                 "estimatedMetric": {"degraded": True, "overridden": False}})
    Violation(drift=False, degraded=False, estimated_degraded=True)
    """
    metric = result.get("metric") or {}
    estimated = result.get("estimatedMetric") or {}
    return Violation(
        drift=bool(result.get("datasetDrift")),
        degraded=bool(metric.get("degraded")),
        estimated_degraded=bool(estimated.get("degraded") and not estimated.get("overridden")),
    )


def count_violations(
    history: Sequence[Mapping[str, Any]],
    *,
    on_drift: bool,
    on_degradation: bool,
    window: int,
    on_estimate: bool = False,
) -> int:
    """Count the checks among the last ``window`` that violate an enabled trigger.

    An estimated degradation counts only with ``on_estimate`` (and ``on_degradation``).

    >>> h = [{"drift": True}, {"drift": False}, {"drift": True, "degraded": True}]
    >>> count_violations(h, on_drift=True, on_degradation=True, window=2)
    1
    >>> count_violations(h, on_drift=False, on_degradation=True, window=3)
    1
    >>> e = [{"estimatedDegraded": True}]
    >>> count_violations(e, on_drift=True, on_degradation=True, window=1, on_estimate=True)
    1
    """
    recent = list(history)[-window:] if window > 0 else []
    return sum(
        1
        for entry in recent
        if (on_drift and entry.get("drift"))
        or (on_degradation and entry.get("degraded"))
        or (on_degradation and on_estimate and entry.get("estimatedDegraded"))
    )


def _retrain_starts(retrains: Sequence[Mapping[str, Any]]) -> list[dt.datetime]:
    starts = [parse_time(r.get("startedAt")) for r in retrains]
    return [s for s in starts if s is not None]


def should_retrain(
    *,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    now: dt.datetime,
    manual: bool = False,
) -> Decision:
    """Decide whether to start a retrain now.

    The chain, first match wins: retraining disabled; a retrain already in flight (never
    two at once); a rollout in flight; a manual request (skips triggers, cooldown and the
    daily budget); fewer than M violations among the last N checks (an estimated
    degradation counts when ``spec.performance.estimate.trigger`` is true); the cooldown since the
    last retrain; the daily budget (``maxPerDay`` starts in the last 24 h). Otherwise fire,
    with the trigger as the reason.
    """
    retrain: Mapping[str, Any] = spec.get("retrain") or {}
    if not retrain.get("enabled", True):
        return Decision(False, "RetrainDisabled", "spec.retrain.enabled is false")
    in_flight = status.get("retrain") or {}
    if in_flight.get("job"):
        return Decision(
            False,
            "RetrainInProgress",
            f"retrain Job {in_flight['job']} for version {in_flight.get('version')} is running",
        )
    rollout = status.get("rollout") or {}
    if rollout.get("version") is not None:
        return Decision(
            False, "RolloutInProgress", f"the rollout of version {rollout['version']} is running"
        )
    if manual:
        return Decision(True, "ManualRequest", "retrain requested by annotation")
    triggers: Mapping[str, Any] = retrain.get("triggers") or {}
    m = int(triggers.get("violations", 1))
    n = int(triggers.get("window", 1))
    on_drift = bool(triggers.get("onDrift", True))
    on_degradation = bool(triggers.get("onDegradation", True))
    estimate: Mapping[str, Any] = (spec.get("performance") or {}).get("estimate") or {}
    on_estimate = bool(estimate.get("enabled", True)) and bool(estimate.get("trigger", False))
    history: Sequence[Mapping[str, Any]] = status.get("history") or []
    found = count_violations(
        history,
        on_drift=on_drift,
        on_degradation=on_degradation,
        window=n,
        on_estimate=on_estimate,
    )
    if found < m:
        return Decision(
            False, "BelowThreshold", f"{found} of the last {n} checks violated; {m} needed"
        )
    retrains: Sequence[Mapping[str, Any]] = status.get("retrains") or []
    starts = _retrain_starts(retrains)
    cooldown = parse_duration(str(retrain.get("cooldown", "1h")))
    if starts:
        since = (now - max(starts)).total_seconds()
        if since < cooldown:
            return Decision(
                False,
                "CooldownActive",
                f"the last retrain started {int(since)}s ago; cooldown is {int(cooldown)}s",
            )
    max_per_day = int(retrain.get("maxPerDay", 3))
    day_ago = now - dt.timedelta(days=1)
    today = sum(1 for s in starts if s > day_ago)
    if today >= max_per_day:
        return Decision(
            False,
            "RetrainBudgetExhausted",
            f"{today} retrains in the last 24h; spec.retrain.maxPerDay is {max_per_day}",
        )
    last = history[-1] if history else {}
    if on_degradation and last.get("degraded"):
        reason = "PerformanceDegraded"
    elif on_degradation and on_estimate and last.get("estimatedDegraded"):
        reason = "EstimatedPerformanceDegraded"
    elif on_drift and last.get("drift"):
        reason = "DataDrift"
    else:
        reason = "ViolationsInWindow"
    return Decision(True, reason, f"{found} of the last {n} checks violated (threshold {m})")


def allocate_version(status: Mapping[str, Any]) -> int:
    """Return the next model version: one above every version allocated or seen.

    >>> allocate_version({"currentVersion": 1, "latestVersion": 3, "versions": [{"version": 2}]})
    4
    >>> allocate_version({})
    1
    """
    seen = [int(status.get("latestVersion") or 0), int(status.get("currentVersion") or 0)]
    seen += [int(v.get("version") or 0) for v in status.get("versions") or []]
    return max(seen) + 1


# ---------------------------------------------------------------------------
# Promotion
# ---------------------------------------------------------------------------


def should_promote(
    *, spec: Mapping[str, Any], status: Mapping[str, Any], result: Mapping[str, Any]
) -> Decision:
    """Decide whether a retrain result becomes the serving version.

    The retrain Job compares challenger and champion on one holdout and says ``promote``;
    the operator refuses a failed job, a result for another version or without a sha256, a
    pinned monitor, and a challenger that does not beat the champion by minImprovement.
    """
    if not result.get("ok"):
        return Decision(
            False, str(result.get("reason") or "RetrainFailed"), str(result.get("message") or "")
        )
    expected = (status.get("retrain") or {}).get("version")
    version = result.get("version")
    if expected is not None and version != expected:
        return Decision(
            False, "VersionMismatch", f"the job wrote version {version}; {expected} was allocated"
        )
    if not result.get("sha256"):
        return Decision(False, "MissingSha256", "the retrain result carries no sha256")
    if spec.get("pinnedVersion") is not None:
        return Decision(
            False,
            "Pinned",
            f"spec.pinnedVersion is {spec['pinnedVersion']}; version {version} is kept unpromoted",
        )
    if not (spec.get("deployment") or {}).get("name"):
        return Decision(False, "NoDeployment", "spec.deployment is not set")
    challenger = (result.get("challenger") or {}).get("score")
    champion = (result.get("champion") or {}).get("score")
    metric = str(result.get("metric") or "")
    if not result.get("promote"):
        return Decision(
            False,
            "ChallengerNotBetter",
            str(result.get("reason") or f"challenger {challenger} vs champion {champion}"),
        )
    if champion is not None and challenger is not None:
        min_gain = float((spec.get("retrain") or {}).get("minImprovement", 0.01))
        gain = float(challenger) - float(champion)
        lower_is_better = result.get("greaterIsBetter") is False or (
            "greaterIsBetter" not in result and metric in LOWER_IS_BETTER
        )
        if lower_is_better:
            gain = -gain
        if gain < min_gain:
            return Decision(
                False,
                "ChallengerNotBetter",
                f"{metric} gain {gain:.4g} is below minImprovement {min_gain:g}",
            )
    return Decision(
        True,
        "ChallengerWins",
        f"version {version} ({metric} {_score(challenger)}) beats the champion "
        f"({_score(champion)})",
    )


def should_pin(*, spec: Mapping[str, Any], status: Mapping[str, Any], generation: int) -> Decision:
    """Decide whether to roll to ``spec.pinnedVersion``; each (version, generation) once."""
    pinned = spec.get("pinnedVersion")
    if pinned is None:
        return Decision(False, "NotPinned", "spec.pinnedVersion is not set")
    pinned = int(pinned)
    if pinned == status.get("currentVersion"):
        return Decision(False, "AlreadyServing", f"version {pinned} is serving")
    pin = status.get("pin") or {}
    if pin.get("version") == pinned and pin.get("generation") == generation:
        return Decision(False, "AlreadyAttempted", f"version {pinned} was already rolled out once")
    if (status.get("rollout") or {}).get("version") is not None:
        return Decision(False, "RolloutInProgress", "a rollout is running")
    if not known_sha256(status, pinned):
        return Decision(
            False,
            "UnknownVersion",
            f"spec.pinnedVersion {pinned} is not a version the operator knows "
            f"(known: {sorted(int(v['version']) for v in status.get('versions') or [])})",
        )
    return Decision(True, "Pinned", f"spec.pinnedVersion asks for version {pinned}")


def known_sha256(status: Mapping[str, Any], version: int) -> str | None:
    """Return the recorded sha256 of ``version``, or None."""
    for entry in status.get("versions") or []:
        if int(entry.get("version") or 0) == int(version) and entry.get("sha256"):
            return str(entry["sha256"])
    if status.get("currentVersion") == version and status.get("currentSha256"):
        return str(status["currentSha256"])
    return None


# ---------------------------------------------------------------------------
# Rollout
# ---------------------------------------------------------------------------


def rollout_state(
    deployment: Mapping[str, Any], *, generation: int, started: dt.datetime | None = None
) -> RolloutState:
    """Return where the rollout of Deployment generation ``generation`` stands.

    The same arithmetic as ``kubectl rollout status``. Worked example: 2 replicas, patched
    to generation 5. While ``observedGeneration`` < 5 the controller has not seen it
    (Progressing). With ``updatedReplicas`` 1 of 2, or 3 replicas in total (an old pod still
    terminating), or ``availableReplicas`` 1 < ``updatedReplicas`` 2, it is Progressing.
    With 2 updated, 2 in total and 2 available it is Complete. A Progressing condition with
    reason ``ProgressDeadlineExceeded`` makes it Failed -- unless the condition was last
    updated before ``started``: a stale verdict on the previous rollout (the controller keeps
    it until the new one progresses), as after a rollback.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation or int(meta.get("generation") or 0) > observed:
        return RolloutState(
            PROGRESSING, "WaitingForController", "the Deployment controller has not seen the change"
        )
    for cond in status.get("conditions") or []:
        if cond.get("type") != "Progressing" or cond.get("reason") != "ProgressDeadlineExceeded":
            continue
        updated_at = parse_time(cond.get("lastUpdateTime"))
        if started is None or updated_at is None or updated_at > started:
            return RolloutState(
                FAILED,
                "ProgressDeadlineExceeded",
                str(cond.get("message") or "the rollout exceeded its progress deadline"),
            )
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < want:
        return RolloutState(PROGRESSING, "UpdatingReplicas", f"{updated} of {want} pods updated")
    if total > updated:
        return RolloutState(
            PROGRESSING, "TerminatingOldReplicas", f"{total - updated} old pods pending termination"
        )
    if available < updated:
        return RolloutState(
            PROGRESSING,
            "WaitingForAvailability",
            f"{available} of {updated} updated pods available",
        )
    return RolloutState(
        COMPLETE, "RolloutComplete", f"{updated} of {want} pods updated and available"
    )
