"""Roll the serving Deployment: follow a rollout, pin a version, roll back.

Each entry point runs three steps, in this order in the module:

1. **gather** -- read the cluster into plain values (:func:`gather_serving`: the serving
   Deployment, and the monitor its label names, so the claim is decided without a read);
2. **decide** -- pure functions over the typed monitor, a copy of its status and what was
   gathered (:func:`begin`, :func:`decide_deployment`, :func:`fail`, :func:`decide_pin`):
   they return the new status and append the :mod:`~modelwatch_operator.actions` to take;
3. **act** -- :func:`kube.update_status` writes the status, conditional on the
   resourceVersion it read (on a conflict it reads and decides again); then :func:`act`
   patches the Deployment and posts the Events.

Entry points: :func:`handle_deployment` (a Deployment event, and the resync's
FollowRollout) and :func:`apply_pin` (``spec.pinnedVersion``); :func:`begin` and
:func:`fail` also serve the retrain result and the resync. The rollout arithmetic (what to
record, when a rollout timed out, what to do with one in flight) is in
:mod:`modelwatch_operator.rollout`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from modelwatch_monitor import contract
from modelwatch_operator import acting, builders, children, events, guards, kube, objects, policies
from modelwatch_operator import constants as c
from modelwatch_operator import rollout as rollouts
from modelwatch_operator import status as st
from modelwatch_operator.acting import Clock, utcnow
from modelwatch_operator.actions import (
    Action,
    Count,
    PatchDeployment,
    PostEvent,
    Serving,
    ShowServingVersion,
)
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document, parse_time

# ---------------------------------------------------------------------------
# Gather
# ---------------------------------------------------------------------------


def gather_claimant(deployment: Document, monitor: str) -> Monitor | None:
    """Read the monitor that claims ``deployment`` when it is not ``monitor``."""
    meta = objects.meta(deployment)
    holder = meta.labels.get(c.LABEL_MONITOR)
    if holder and holder != monitor:
        return kube.get_typed_monitor(meta.namespace, holder)
    return None


def gather_serving(mm: Monitor) -> Serving:
    """Read the serving Deployment named in the spec, and the monitor that claims it."""
    if mm.spec.deployment is None:
        return Serving(None)
    deployment = kube.get_deployment(mm.namespace, mm.spec.deployment.name)
    if deployment is None:
        return Serving(None)
    return Serving(deployment, gather_claimant(deployment, mm.name))


# ---------------------------------------------------------------------------
# Decide (pure)
# ---------------------------------------------------------------------------


def begin(
    mm: Monitor,
    s: st.Status,
    *,
    kind: contract.RolloutKind,
    version: int,
    sha256: str,
    serving: Serving,
    actions: list[Action],
    now: dt.datetime,
) -> bool:
    """Record the rollout to ``version`` in ``s`` and add the patch to ``actions``.

    The version it replaces comes from status (``currentVersion``), or for a rollback the
    version that failed. False (and a condition) when the Deployment or its container is
    missing, or another monitor claims the Deployment.
    """
    gen = mm.generation
    deployment_spec = mm.spec.deployment
    dep_name = deployment_spec.name if deployment_spec is not None else ""
    deployment = serving.view()
    if deployment is None or serving.deployment is None or deployment_spec is None:
        message = (
            f'spec.deployment.name: deployment "{dep_name}" not found in namespace "{mm.namespace}"'
        )
        for ctype in (c.COND_READY, c.COND_ROLLOUT):
            st.set_condition(
                s, ctype, False, "DeploymentNotFound", message, generation=gen, now=now
            )
        actions.append(PostEvent("Warning", "DeploymentNotFound", message))
        return False
    claim = guards.deployment_claim(serving.deployment, monitor=mm.name, claimant=serving.claimant)
    if not claim.fire:
        for ctype in (c.COND_READY, c.COND_ROLLOUT):
            st.set_condition(s, ctype, False, claim.reason, claim.message, generation=gen, now=now)
        actions.append(PostEvent("Warning", claim.reason, claim.message))
        return False
    if deployment.container(deployment_spec.container) is None:
        message = f'deployment "{dep_name}" has no container "{deployment_spec.container}"'
        st.set_condition(
            s, c.COND_ROLLOUT, False, "ContainerNotFound", message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", "ContainerNotFound", message))
        return False
    current = st.view(s)
    if kind == "Rollback":
        failed = current.rollout
        previous_version = failed.version if failed is not None else None
        previous_sha = failed.sha256 if failed is not None else None
    else:
        previous_version, previous_sha = current.current_version, current.current_sha256
    rollouts.record(
        s,
        kind=kind,
        version=version,
        sha256=sha256,
        previous_version=previous_version,
        previous_sha256=previous_sha,
        deployment=deployment,
        now=now,
    )
    verb = "rolling back" if kind == "Rollback" else "rolling out"
    if kind != "Rollback":
        st.set_condition(
            s,
            c.COND_ROLLOUT,
            False,
            "Progressing",
            f'{verb} version {version} on deployment "{dep_name}"',
            generation=gen,
            now=now,
        )
    actions.append(
        PatchDeployment(
            name=dep_name,
            container=deployment_spec.container,
            version=int(version),
            sha256=sha256,
            kind=kind,
        )
    )
    actions.append(
        PostEvent(
            "Normal",
            "RollingOut" if kind != "Rollback" else "RollingBack",
            f'{verb} deployment "{dep_name}" to version {version}',
        )
    )
    return True


def decide_deployment(
    mm: Monitor,
    s: st.Status,
    deployment: Document,
    *,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status | None:
    """Decide what the serving Deployment as it is now means for the rollout in flight:
    nothing yet (None), complete, or failed (roll back). Without a rollout in flight, see
    :func:`follow_outside_change`."""
    rollout = st.view(s).rollout
    view = objects.deployment(deployment)
    if rollout is None:
        return follow_outside_change(mm, s, view, actions=actions, now=now)
    container = mm.spec.deployment.container if mm.spec.deployment is not None else None
    if not rollouts.carries_target(
        view, container=container, version=rollout.version, sha256=rollout.sha256 or ""
    ):
        return None  # the patch has not landed (or was undone): the resync applies it
    if not rollout.generation:
        # Patched but not yet acknowledged: the Deployment's conditions may still speak
        # of the previous rollout. The acknowledgement (or the resync) comes next.
        return None
    state = policies.rollout_state(
        view, generation=rollout.generation, started=parse_time(rollout.started_at), now=now
    )
    if state.state == policies.PROGRESSING:
        return None
    s.pop("rollout", None)
    if state.state == policies.COMPLETE:
        return _complete(mm, s, rollout, state_message=state.message, actions=actions, now=now)
    return fail(
        mm,
        s,
        rollout,
        reason=state.reason,
        message=state.message,
        serving=Serving(deployment),  # labelled with this monitor: no other claim
        actions=actions,
        now=now,
    )


def _complete(
    mm: Monitor,
    s: st.Status,
    rollout: contract.RolloutInFlight,
    *,
    state_message: str,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status:
    """The rollout (or rollback) finished: its version serves."""
    gen = mm.generation
    version = rollout.version
    st.serve_version(s, version, now=now)
    if rollout.sha256:
        s["currentSha256"] = rollout.sha256
    if rollout.kind == "Rollback":
        st.set_condition(
            s,
            c.COND_ROLLOUT,
            False,
            "RolledBack",
            st.message_of(s, c.COND_ROLLOUT) or f"rolled back to version {version}",
            generation=gen,
            now=now,
        )
        actions.append(PostEvent("Normal", "RolledBack", f"version {version} is serving again"))
        actions.append(ShowServingVersion(version))
    else:
        st.set_condition(
            s,
            c.COND_ROLLOUT,
            True,
            "RolloutComplete",
            f"version {version} is serving: {state_message}",
            generation=gen,
            now=now,
        )
        st.await_check_of_new_version(
            s,
            f"version {version} was rolled out; the next check judges it",
            generation=gen,
            now=now,
        )
        if st.reason_of(s, c.COND_READY) in {"RetrainFailed", "RolloutFailed"}:
            st.set_condition(
                s,
                c.COND_READY,
                True,
                "RolloutComplete",
                f"version {version} is serving",
                generation=gen,
                now=now,
            )
        actions.append(PostEvent("Normal", "RolloutComplete", f"version {version} is serving"))
        actions.append(Count("promotions"))
        actions.append(ShowServingVersion(version))
    _set_pin_outcome(s, rollout, "Complete")
    return st.finalize(s, mm.spec, generation=gen, now=now)


def _set_pin_outcome(s: st.Status, rollout: contract.RolloutInFlight, outcome: str) -> None:
    """Record how the rollout of a pinned version ended."""
    pin = st.view(s).pin
    if rollout.kind == "Pin" and pin is not None:
        s["pin"] = {**pin.to_doc(), "outcome": outcome}


def follow_outside_change(
    mm: Monitor,
    s: st.Status,
    deployment: objects.Deployment,
    *,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status | None:
    """No rollout in flight, yet the Deployment finished rolling to another version.

    Someone changed ``MODEL_VERSION`` outside modelwatch, most often by re-applying the
    manifest that first deployed the server. Status follows what serves (fighting a GitOps
    tool over the field would never end); a Warning says what happened and how to choose a
    version (``spec.pinnedVersion``). The next check judges the version that serves.
    """
    current = st.view(s).current_version
    if current is None or mm.spec.deployment is None:
        return None
    container = deployment.container(mm.spec.deployment.container)
    if container is None:
        return None
    version, sha = container.model_env()
    if version is None or version == current:
        return None
    generation = deployment.metadata.generation
    if policies.rollout_state(deployment, generation=generation).state != policies.COMPLETE:
        return None  # not serving yet; a stuck change shows in the Deployment's own status
    gen = mm.generation
    message = (
        f'deployment "{deployment.metadata.name}" serves version {version} (MODEL_VERSION), '
        f"not version {current}: it was changed outside a modelwatch rollout (a re-applied "
        "manifest?); status follows the version that serves. Choose a version with "
        "spec.pinnedVersion"
    )
    st.serve_version(s, version, now=now)
    if sha:
        s["currentSha256"] = sha
    else:
        s.pop("currentSha256", None)
    st.set_condition(s, c.COND_ROLLOUT, True, "ChangedOutside", message, generation=gen, now=now)
    st.await_check_of_new_version(
        s, f"version {version} serves; the next check judges it", generation=gen, now=now
    )
    actions.append(PostEvent("Warning", "VersionChangedOutside", message))
    actions.append(ShowServingVersion(version))
    return st.finalize(s, mm.spec, generation=gen, now=now)


def fail(
    mm: Monitor,
    s: st.Status,
    rollout: contract.RolloutInFlight,
    *,
    reason: str,
    message: str,
    serving: Serving,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status:
    """End the rollout in flight as failed (``reason``: ``message``): roll back to the
    previous version when allowed and possible, else say so in RolloutComplete and Ready."""
    spec, gen = mm.spec, mm.generation
    version, previous = rollout.version, rollout.previous_version
    rollback = spec.deployment.rollback_on_failure if spec.deployment is not None else True
    _set_pin_outcome(s, rollout, "Failed")
    s["rollout"] = rollout.to_doc()  # the rollback reads the failed version from it
    if (
        rollout.kind != "Rollback"
        and rollback
        and previous is not None
        and begin(
            mm,
            s,
            kind="Rollback",
            version=previous,
            sha256=rollout.previous_sha256 or policies.known_sha256(st.view(s), previous) or "",
            serving=serving,
            actions=actions,
            now=now,
        )
    ):
        text = f"version {version} failed ({reason}: {message}); rolled back to version {previous}"
        st.set_condition(s, c.COND_ROLLOUT, False, "RolledBack", text, generation=gen, now=now)
        actions.append(PostEvent("Warning", "RolledBack", text))
        actions.append(Count("rollbacks"))
        return st.finalize(s, spec, generation=gen, now=now)
    s.pop("rollout", None)
    cond_reason = "RollbackFailed" if rollout.kind == "Rollback" else reason
    text = f"version {version}: {reason}: {message}"
    st.set_condition(s, c.COND_ROLLOUT, False, cond_reason, text, generation=gen, now=now)
    st.set_condition(s, c.COND_READY, False, "RolloutFailed", text, generation=gen, now=now)
    actions.append(PostEvent("Warning", cond_reason, text))
    return st.finalize(s, spec, generation=gen, now=now)


def decide_pin(
    mm: Monitor,
    s: st.Status,
    serving: Serving,
    *,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status | None:
    """Roll out ``spec.pinnedVersion`` once per generation; an unknown version is said once."""
    spec, gen = mm.spec, mm.generation
    version = spec.pinned_version
    current = st.view(s)
    decision = policies.should_pin(spec=spec, status=current, generation=gen)
    if version is None:
        return None
    if not decision.fire:
        if decision.reason == "UnknownVersion" and (
            current.pin is None or current.pin.generation != gen
        ):
            s["pin"] = {"version": version, "generation": gen, "outcome": "UnknownVersion"}
            st.set_condition(
                s,
                c.COND_ROLLOUT,
                False,
                "UnknownVersion",
                decision.message,
                generation=gen,
                now=now,
            )
            actions.append(PostEvent("Warning", "UnknownVersion", decision.message))
            return st.finalize(s, spec, generation=gen, now=now)
        return None
    sha = policies.known_sha256(current, version) or ""
    s["pin"] = {"version": version, "generation": gen, "outcome": "RollingOut"}
    begin(mm, s, kind="Pin", version=version, sha256=sha, serving=serving, actions=actions, now=now)
    return st.finalize(s, spec, generation=gen, now=now)


# ---------------------------------------------------------------------------
# Act
# ---------------------------------------------------------------------------


def act(mm: Monitor, actions: Sequence[Action], *, now: Clock = utcnow) -> None:
    """Perform ``actions`` once status recorded them (patches, Events, then metrics)."""
    acting.perform(mm, actions, now=now)


def reapply_cronjob_if_serving_moved(before: list[str], mm: Monitor) -> None:
    """Re-apply CronJob ``<mm>-check`` when the version that serves (or when it began
    serving) changed in status since ``before`` (the check arguments it was applied with):
    every later check then judges that version's traffic."""
    if builders.check_args(mm.status) != before:
        blocked = children.ensure_children(mm)  # never writes over a child it does not own
        if blocked is not None:
            events.warning(mm, blocked.reason, blocked.message)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def handle_deployment(deployment: Document, *, now: Clock = utcnow) -> None:
    """The serving Deployment changed: finish, or roll back, the rollout in flight."""
    meta = objects.meta(deployment)
    monitor = meta.labels.get(c.LABEL_MONITOR)
    if not monitor:
        return
    actions: list[Action] = []
    applied_args: list[list[str]] = []

    def decide(mm: Monitor, s: st.Status) -> st.Status | None:
        actions.clear()
        applied_args.clear()
        if mm.spec.deployment is None or mm.spec.deployment.name != meta.name:
            return None
        applied_args.append(builders.check_args(mm.status))
        return decide_deployment(mm, s, deployment, actions=actions, now=now())

    fresh = kube.update_status(meta.namespace, monitor, decide)
    if fresh is not None:
        act(fresh, actions, now=now)
        if applied_args:
            reapply_cronjob_if_serving_moved(applied_args[0], fresh)


def apply_pin(namespace: str, name: str, *, now: Clock = utcnow) -> None:
    """Roll the Deployment to ``spec.pinnedVersion`` when the spec pins a version."""
    mm = kube.get_typed_monitor(namespace, name)
    if mm is None or mm.spec.pinned_version is None:
        return
    serving = gather_serving(mm)
    actions: list[Action] = []

    def decide(fresh: Monitor, s: st.Status) -> st.Status | None:
        actions.clear()
        return decide_pin(fresh, s, serving, actions=actions, now=now())

    fresh = kube.update_status(namespace, name, decide)
    if fresh is not None:
        act(fresh, actions, now=now)
