"""Pure decisions over gathered state. No API calls, no clock: ``now`` is an argument.

Each policy returns a :class:`Decision` ``(fire, reason, message)``; the reason is a
CamelCase word and the message a sentence, both copied verbatim into a condition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from modelwatch_monitor import contract
from modelwatch_monitor.contract import parse_duration


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


def parse_time(text: str | None) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp as written in status; None when absent or invalid."""
    if not text:
        return None
    try:
        return contract.parse_timestamp(text, "time")
    except contract.ContractError:
        return None


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


_RETRAIN_DEFAULTS: Final = contract.RetrainSpec()  # defaults live in the contract, once

LOSS_REASON: Final = "ChallengerNotBetter"
RETRAIN_NOW_ANNOTATION: Final = "modelwatch.io/retrain-now"


def _healthy(entry: Mapping[str, Any], *, on_drift: bool, on_degradation: bool) -> bool:
    return not ((on_drift and entry.get("drift")) or (on_degradation and entry.get("degraded")))


def consecutive_losses(
    retrains: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    *,
    generation: int | None,
    on_drift: bool = True,
    on_degradation: bool = True,
) -> list[Mapping[str, Any]]:
    """Return the challengers that lost in a row, newest first.

    Walking back from the newest finished retrain, a loss (``ChallengerNotBetter``) counts
    until another outcome (a promotion, a failure), a loss read under another spec
    generation, or a loss followed by a healthy check in ``history``.

    >>> lost = lambda v, t: {"version": v, "reason": "ChallengerNotBetter", "finishedAt": t,
    ...                      "generation": 1}
    >>> r = [{"version": 2, "reason": "ChallengerWins", "finishedAt": "2026-11-23T10:00:00Z"},
    ...      lost(3, "2026-11-23T11:00:00Z"), lost(4, "2026-11-23T12:00:00Z")]
    >>> [x["version"] for x in consecutive_losses(r, [], generation=1)]
    [4, 3]
    >>> healthy = [{"time": "2026-11-23T11:30:00Z", "drift": False}]
    >>> [x["version"] for x in consecutive_losses(r, healthy, generation=1)]
    [4]
    >>> consecutive_losses(r, [], generation=2)
    []
    """
    healthy_times = [
        t
        for t in (
            parse_time(h.get("time"))
            for h in history
            if _healthy(h, on_drift=on_drift, on_degradation=on_degradation)
        )
        if t is not None
    ]
    last_healthy = max(healthy_times) if healthy_times else None
    losses: list[Mapping[str, Any]] = []
    for entry in reversed(list(retrains)):
        finished = parse_time(entry.get("finishedAt"))
        if finished is None:
            continue  # still running
        if entry.get("reason") != LOSS_REASON:
            break
        if generation is not None and entry.get("generation") not in (None, generation):
            break
        if last_healthy is not None and last_healthy > finished:
            break
        losses.append(entry)
    return losses


def circuit_breaker(
    *, spec: Mapping[str, Any], status: Mapping[str, Any], generation: int | None = None
) -> Decision:
    """Decide whether the retrain circuit is open (``fire``: no automatic retrain).

    It opens after ``spec.retrain.maxConsecutiveLosses`` challengers in a row lost to the
    champion (0 disables it), and closes when the spec changes (a new generation), a check
    comes back healthy, or someone asks for a retrain by hand (which bypasses it once).
    """
    retrain: Mapping[str, Any] = spec.get("retrain") or {}
    limit = int(retrain.get("maxConsecutiveLosses", _RETRAIN_DEFAULTS.max_consecutive_losses))
    triggers: Mapping[str, Any] = retrain.get("triggers") or {}
    losses = consecutive_losses(
        status.get("retrains") or [],
        status.get("history") or [],
        generation=generation,
        on_drift=bool(triggers.get("onDrift", True)),
        on_degradation=bool(triggers.get("onDegradation", True)),
    )
    if limit <= 0:
        return Decision(False, "CircuitDisabled", "spec.retrain.maxConsecutiveLosses is 0")
    if len(losses) < limit:
        return Decision(
            False,
            "CircuitClosed",
            f"{len(losses)} challengers in a row lost; the circuit opens at {limit}",
        )
    versions = ", ".join(str(x.get("version")) for x in reversed(losses))
    return Decision(
        True,
        "CircuitOpen",
        f"{len(losses)} challengers in a row lost to the champion (versions {versions}; "
        f"spec.retrain.maxConsecutiveLosses is {limit}): no retrain starts until the spec "
        f"changes, a check comes back healthy, or one is asked for with the annotation "
        f"{RETRAIN_NOW_ANNOTATION}",
    )


def should_retrain(
    *,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    now: dt.datetime,
    manual: bool = False,
    generation: int | None = None,
) -> Decision:
    """Decide whether to start a retrain now.

    The chain, first match wins: retraining disabled; a retrain already in flight (never
    two at once); a rollout in flight; a manual request (skips the circuit breaker,
    triggers, cooldown and the daily budget); the circuit breaker open (challengers kept
    losing: :func:`circuit_breaker`, for the monitor at ``generation``); fewer than M
    violations among the last N checks (an estimated degradation counts when
    ``spec.performance.estimate.trigger`` is true); the cooldown since the last retrain;
    the daily budget (``maxPerDay`` starts in the last 24 h). Otherwise fire, with the
    trigger as the reason.
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
    breaker = circuit_breaker(spec=spec, status=status, generation=generation)
    if breaker.fire:
        return Decision(False, breaker.reason, breaker.message)
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
    cooldown = parse_duration(str(retrain.get("cooldown", _RETRAIN_DEFAULTS.cooldown)))
    if starts:
        since = (now - max(starts)).total_seconds()
        if since < cooldown:
            return Decision(
                False,
                "CooldownActive",
                f"the last retrain started {int(since)}s ago; cooldown is {int(cooldown)}s",
            )
    max_per_day = int(retrain.get("maxPerDay", _RETRAIN_DEFAULTS.max_per_day))
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

    The retrain Job compares challenger and champion on one holdout and says ``promote``
    (``contract.decide_promotion``); the operator records that outcome, and refuses only a
    failed job, a result for another version or without a sha256, a pinned monitor, and a
    monitor without a Deployment.
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
    # The retrain Job decided with contract.decide_promotion (the one promotion rule and
    # the one table of metric directions); the operator records its outcome as it is.
    message = str(result.get("message") or result.get("reason") or "")
    if not result.get("promote"):
        return Decision(False, "ChallengerNotBetter", message)
    return Decision(True, "ChallengerWins", message)


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
    deployment: Mapping[str, Any],
    *,
    generation: int,
    started: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> RolloutState:
    """Return where the rollout of Deployment generation ``generation`` stands.

    The same arithmetic as ``kubectl rollout status``. Worked example: 2 replicas, patched
    to generation 5. While ``observedGeneration`` < 5 the controller has not seen it
    (Progressing). With ``updatedReplicas`` 1 of 2, or 3 replicas in total (an old pod still
    terminating), or ``availableReplicas`` 1 < ``updatedReplicas`` 2, it is Progressing.
    With 2 updated, 2 in total and 2 available it is Complete. A Progressing condition with
    reason ``ProgressDeadlineExceeded`` makes it Failed -- unless the condition was last
    updated before ``started``: a stale verdict on the previous rollout (the controller keeps
    it until the new one progresses), as after a rollback -- or when less than
    ``progressDeadlineSeconds`` have passed since ``started`` (at ``now``).
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
        deadline = spec.get("progressDeadlineSeconds")
        if (
            started is not None
            and now is not None
            and deadline is not None
            and (now - started).total_seconds() < float(deadline)
        ):
            # No rollout exceeds its deadline before the deadline has passed since it
            # began: the controller measured from an older condition (a short deadline set
            # long after the previous rollout). The timeout policy still bounds it.
            continue
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


def drift_onset(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Return when the current streak of violations began: the time of the last check
    before it that found none, or None when every remembered check violated.

    A retrain trains on the traffic since then, so the new version learns (and is later
    judged against) the new normal, not a mix of it with the traffic before the change.

    >>> drift_onset([{"time": "t1", "drift": False}, {"time": "t2", "drift": True},
    ...              {"time": "t3", "degraded": True}])
    't1'
    >>> drift_onset([{"time": "t1", "drift": True}]) is None
    True
    """
    for entry in reversed(history):
        violated = entry.get("drift") or entry.get("degraded") or entry.get("estimatedDegraded")
        if not violated:
            return str(entry.get("time")) if entry.get("time") else None
    return None
