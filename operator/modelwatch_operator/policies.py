"""Pure decisions over gathered state. No API calls, no clock: ``now`` is an argument.

Each policy returns a :class:`Decision` ``(fire, reason, message)``; the reason is a
CamelCase word and the message a sentence, both copied verbatim into a condition. Policies
read the contract's typed spec parts, the typed status and typed Job results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final, NamedTuple

from modelwatch_monitor import contract

# Re-exported: the one duration parser is the contract's.
from modelwatch_monitor.contract import parse_duration as parse_duration
from modelwatch_operator import objects
from modelwatch_operator.objects import parse_time as parse_time


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


def classify_check(result: contract.CheckOk) -> Violation:
    """Return which violations a check with a verdict shows.

    >>> ok = {"kind": "check", "ok": True, "reportId": "r1", "driftShare": 0.5,
    ...       "nDrifted": 1, "nFeatures": 2}
    >>> classify_check(contract.CheckOk.model_validate(
    ...     {**ok, "datasetDrift": True, "metric": {"name": "f1", "degraded": False}}))
    Violation(drift=True, degraded=False, estimated_degraded=False)
    >>> classify_check(contract.CheckOk.model_validate({**ok, "datasetDrift": False,
    ...     "estimatedMetric": {"name": "f1", "degraded": True, "overridden": False}}))
    Violation(drift=False, degraded=False, estimated_degraded=True)
    """
    metric, estimated = result.metric, result.estimated_metric
    return Violation(
        drift=result.dataset_drift,
        degraded=metric is not None and bool(metric.degraded),
        estimated_degraded=estimated is not None
        and bool(estimated.degraded)
        and not estimated.overridden,
    )


def _violates(
    entry: contract.HistoryEntry, triggers: contract.TriggersSpec, *, on_estimate: bool
) -> bool:
    """True when ``entry`` violates an enabled trigger (an estimate only with ``on_estimate``)."""
    return (
        (triggers.on_drift and entry.drift)
        or (triggers.on_degradation and entry.degraded)
        or (triggers.on_degradation and on_estimate and entry.estimated_degraded)
    )


def count_violations(
    history: Sequence[contract.HistoryEntry],
    triggers: contract.TriggersSpec,
    *,
    on_estimate: bool = False,
) -> int:
    """Count the checks among the last ``triggers.window`` that violate an enabled trigger.

    An estimated degradation counts only with ``on_estimate`` (and ``onDegradation``).

    >>> H = contract.HistoryEntry
    >>> h = [H(drift=True), H(), H(drift=True, degraded=True)]
    >>> count_violations(h, contract.TriggersSpec(window=2))
    1
    >>> count_violations(h, contract.TriggersSpec(window=3, on_drift=False))
    1
    >>> count_violations([H(estimated_degraded=True)], contract.TriggersSpec(), on_estimate=True)
    1
    """
    recent = history[-triggers.window :]
    return sum(1 for entry in recent if _violates(entry, triggers, on_estimate=on_estimate))


def _retrain_starts(retrains: Sequence[contract.RetrainRecord]) -> list[dt.datetime]:
    starts = [parse_time(r.started_at) for r in retrains]
    return [s for s in starts if s is not None]


#: The promotion words of a challenger that lost to the champion (``decide_promotion``).
LOSS_REASONS: Final = frozenset(
    {contract.PROMOTE_BELOW_MIN_IMPROVEMENT, contract.PROMOTE_SCORE_UNDEFINED}
)
RETRAIN_NOW_ANNOTATION: Final = "modelwatch.io/retrain-now"


def consecutive_losses(
    retrains: Sequence[contract.RetrainRecord],
    history: Sequence[contract.HistoryEntry],
    triggers: contract.TriggersSpec,
    *,
    generation: int | None,
) -> list[contract.RetrainRecord]:
    """Return the challengers that lost in a row, newest first.

    Walking back from the newest finished retrain, a loss (a reason of
    :data:`LOSS_REASONS`, e.g. ``BelowMinImprovement``) counts until another outcome (a
    promotion, a failure), a loss read under another spec generation, or a loss followed
    by a check in ``history`` that violates no enabled trigger.

    >>> R, H = contract.RetrainRecord, contract.HistoryEntry
    >>> lost = lambda v, t: R(version=v, reason="BelowMinImprovement", finished_at=t,
    ...                       generation=1)
    >>> r = [R(version=2, reason="ChallengerBetter", finished_at="2026-11-23T10:00:00Z"),
    ...      lost(3, "2026-11-23T11:00:00Z"), lost(4, "2026-11-23T12:00:00Z")]
    >>> t = contract.TriggersSpec()
    >>> [x.version for x in consecutive_losses(r, [], t, generation=1)]
    [4, 3]
    >>> healthy = [H(time="2026-11-23T11:30:00Z")]
    >>> [x.version for x in consecutive_losses(r, healthy, t, generation=1)]
    [4]
    >>> consecutive_losses(r, [], t, generation=2)
    []
    """
    healthy_times = [
        t
        for t in (
            parse_time(h.time) for h in history if not _violates(h, triggers, on_estimate=False)
        )
        if t is not None
    ]
    last_healthy = max(healthy_times) if healthy_times else None
    losses: list[contract.RetrainRecord] = []
    for entry in reversed(retrains):
        finished = parse_time(entry.finished_at)
        if finished is None:
            continue  # still running
        if entry.reason not in LOSS_REASONS:
            break
        if generation is not None and entry.generation not in (None, generation):
            break
        if last_healthy is not None and last_healthy > finished:
            break
        losses.append(entry)
    return losses


def circuit_breaker(
    *,
    retrain: contract.RetrainSpec,
    status: contract.MonitorStatus,
    generation: int | None = None,
) -> Decision:
    """Decide whether the retrain circuit is open (``fire``: no automatic retrain).

    It opens after ``spec.retrain.maxConsecutiveLosses`` challengers in a row lost to the
    champion (0 disables it), and closes when the spec changes (a new generation), a check
    comes back healthy, or someone asks for a retrain by hand (which bypasses it once).
    """
    limit = retrain.max_consecutive_losses
    losses = consecutive_losses(
        status.retrains, status.history, retrain.triggers, generation=generation
    )
    if limit <= 0:
        return Decision(False, "CircuitDisabled", "spec.retrain.maxConsecutiveLosses is 0")
    if len(losses) < limit:
        return Decision(
            False,
            "CircuitClosed",
            f"{len(losses)} challengers in a row lost; the circuit opens at {limit}",
        )
    versions = ", ".join(str(x.version) for x in reversed(losses))
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
    retrain: contract.RetrainSpec,
    estimate: contract.EstimateSpec,
    status: contract.MonitorStatus,
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
    ``spec.performance.estimate`` is enabled and its ``trigger`` is true); the cooldown
    since the last retrain; the daily budget (``maxPerDay`` starts in the last 24 h).
    Otherwise fire, with the trigger as the reason.
    """
    if not retrain.enabled:
        return Decision(False, "RetrainDisabled", "spec.retrain.enabled is false")
    in_flight = status.retrain
    if in_flight is not None and in_flight.job:
        return Decision(
            False,
            "RetrainInProgress",
            f"retrain Job {in_flight.job} for version {in_flight.version} is running",
        )
    if status.rollout is not None:
        return Decision(
            False,
            "RolloutInProgress",
            f"the rollout of version {status.rollout.version} is running",
        )
    if manual:
        return Decision(True, "ManualRequest", "retrain requested by annotation")
    breaker = circuit_breaker(retrain=retrain, status=status, generation=generation)
    if breaker.fire:
        return Decision(False, breaker.reason, breaker.message)
    triggers = retrain.triggers
    m, n = triggers.violations, triggers.window
    on_estimate = estimate.enabled and estimate.trigger
    found = count_violations(status.history, triggers, on_estimate=on_estimate)
    if found < m:
        return Decision(
            False, "BelowThreshold", f"{found} of the last {n} checks violated; {m} needed"
        )
    starts = _retrain_starts(status.retrains)
    cooldown = parse_duration(retrain.cooldown)
    if starts:
        since = (now - max(starts)).total_seconds()
        if since < cooldown:
            return Decision(
                False,
                "CooldownActive",
                f"the last retrain started {int(since)}s ago; cooldown is {int(cooldown)}s",
            )
    day_ago = now - dt.timedelta(days=1)
    today = sum(1 for s in starts if s > day_ago)
    if today >= retrain.max_per_day:
        return Decision(
            False,
            "RetrainBudgetExhausted",
            f"{today} retrains in the last 24h; spec.retrain.maxPerDay is {retrain.max_per_day}",
        )
    last = status.history[-1] if status.history else contract.HistoryEntry()
    if triggers.on_degradation and last.degraded:
        reason = "PerformanceDegraded"
    elif triggers.on_degradation and on_estimate and last.estimated_degraded:
        reason = "EstimatedPerformanceDegraded"
    elif triggers.on_drift and last.drift:
        reason = "DataDrift"
    else:
        reason = "ViolationsInWindow"
    return Decision(True, reason, f"{found} of the last {n} checks violated (threshold {m})")


def allocate_version(status: contract.MonitorStatus) -> int:
    """Return the next model version: one above every version allocated or seen.

    >>> allocate_version(contract.MonitorStatus.model_validate(
    ...     {"currentVersion": 1, "latestVersion": 3, "versions": [{"version": 2}]}))
    4
    >>> allocate_version(contract.MonitorStatus())
    1
    """
    seen = [status.latest_version or 0, status.current_version or 0]
    seen += [v.version for v in status.versions]
    return max(seen) + 1


# ---------------------------------------------------------------------------
# Promotion
# ---------------------------------------------------------------------------


def should_promote(
    *,
    spec: contract.Spec,
    status: contract.MonitorStatus,
    result: contract.RetrainOk | contract.RetrainFailed,
) -> Decision:
    """Decide whether a retrain result becomes the serving version.

    The retrain Job compares challenger and champion on one holdout and says ``promote``
    with its reason (``contract.decide_promotion``: ``ChallengerBetter``,
    ``BelowMinImprovement``, ...); the operator records that outcome in the Job's words,
    and refuses only a failed job, a result for another version, a pinned monitor, and a
    monitor without a Deployment.
    """
    if isinstance(result, contract.RetrainFailed):
        return Decision(False, result.reason, result.message)
    expected = status.retrain.version if status.retrain is not None else None
    if expected is not None and result.version != expected:
        return Decision(
            False,
            "VersionMismatch",
            f"the job wrote version {result.version}; {expected} was allocated",
        )
    if spec.pinned_version is not None:
        return Decision(
            False,
            "Pinned",
            f"spec.pinnedVersion is {spec.pinned_version}; "
            f"version {result.version} is kept unpromoted",
        )
    if spec.deployment is None:
        return Decision(False, "NoDeployment", "spec.deployment is not set")
    # The retrain Job decided with contract.decide_promotion (the one promotion rule and
    # the one table of metric directions); the operator records its outcome as it is.
    return Decision(result.promote, result.reason, result.message or result.reason)


def should_pin(*, spec: contract.Spec, status: contract.MonitorStatus, generation: int) -> Decision:
    """Decide whether to roll to ``spec.pinnedVersion``; each (version, generation) once."""
    pinned = spec.pinned_version
    if pinned is None:
        return Decision(False, "NotPinned", "spec.pinnedVersion is not set")
    if pinned == status.current_version:
        return Decision(False, "AlreadyServing", f"version {pinned} is serving")
    pin = status.pin
    if pin is not None and pin.version == pinned and pin.generation == generation:
        return Decision(False, "AlreadyAttempted", f"version {pinned} was already rolled out once")
    if status.rollout is not None:
        return Decision(False, "RolloutInProgress", "a rollout is running")
    if not known_sha256(status, pinned):
        return Decision(
            False,
            "UnknownVersion",
            f"spec.pinnedVersion {pinned} is not a version the operator knows "
            f"(known: {sorted(v.version for v in status.versions)})",
        )
    return Decision(True, "Pinned", f"spec.pinnedVersion asks for version {pinned}")


def known_sha256(status: contract.MonitorStatus, version: int) -> str | None:
    """Return the recorded sha256 of ``version``, or None."""
    record = status.version(version)
    if record is not None and record.sha256:
        return record.sha256
    if status.current_version == version and status.current_sha256:
        return status.current_sha256
    return None


# ---------------------------------------------------------------------------
# Rollout
# ---------------------------------------------------------------------------


def rollout_state(
    deployment: objects.Deployment,
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
    spec, status = deployment.spec, deployment.status
    observed = status.observed_generation
    if observed < generation or deployment.metadata.generation > observed:
        return RolloutState(
            PROGRESSING, "WaitingForController", "the Deployment controller has not seen the change"
        )
    for cond in status.conditions:
        if cond.type != "Progressing" or cond.reason != "ProgressDeadlineExceeded":
            continue
        updated_at = parse_time(cond.last_update_time)
        deadline = spec.progress_deadline_seconds
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
                cond.message or "the rollout exceeded its progress deadline",
            )
    want = spec.replicas if spec.replicas is not None else 1
    updated, total, available = status.updated_replicas, status.replicas, status.available_replicas
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


def drift_onset(history: Sequence[contract.HistoryEntry]) -> str | None:
    """Return when the current streak of violations began: the time of the last check
    before it that found none, or None when every remembered check violated.

    A retrain trains on the traffic since then, so the new version learns (and is later
    judged against) the new normal, not a mix of it with the traffic before the change.

    >>> H = contract.HistoryEntry
    >>> drift_onset([H(time="t1"), H(time="t2", drift=True), H(time="t3", degraded=True)])
    't1'
    >>> drift_onset([H(time="t1", drift=True)]) is None
    True
    """
    for entry in reversed(history):
        if not (entry.drift or entry.degraded or entry.estimated_degraded):
            return entry.time or None
    return None
