"""Roll the serving Deployment: follow a rollout, pin a version, roll back.

Each entry point runs three steps, in this order in the module:

1. **gather** -- read the cluster into plain values (:func:`gather_serving`: the serving
   Deployment, and the monitor its label names, so the claim is decided without a read);
2. **decide** -- pure functions over the monitor body, a copy of its status and what was
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
from collections.abc import Mapping, Sequence
from typing import Any

from modelwatch_operator import acting, builders, children, events, guards, kube, policies
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
from modelwatch_operator.builders import monitor_generation, monitor_spec
from modelwatch_operator.policies import parse_time

# ---------------------------------------------------------------------------
# Gather
# ---------------------------------------------------------------------------


def gather_claimant(deployment: Mapping[str, Any], monitor: str) -> dict[str, Any] | None:
    """Read the monitor that claims ``deployment`` when it is not ``monitor``."""
    meta = deployment.get("metadata") or {}
    holder = (meta.get("labels") or {}).get(c.LABEL_MONITOR)
    if holder and holder != monitor:
        return kube.get_monitor(str(meta.get("namespace")), str(holder))
    return None


def gather_serving(body: Mapping[str, Any]) -> Serving:
    """Read the serving Deployment named in the spec, and the monitor that claims it."""
    dep_name = (monitor_spec(body).get("deployment") or {}).get("name")
    if not dep_name:
        return Serving(None)
    deployment = kube.get_deployment(builders.monitor_namespace(body), str(dep_name))
    if deployment is None:
        return Serving(None)
    return Serving(deployment, gather_claimant(deployment, builders.monitor_name(body)))


# ---------------------------------------------------------------------------
# Decide (pure)
# ---------------------------------------------------------------------------


def begin(
    body: Mapping[str, Any],
    s: st.Status,
    *,
    kind: str,
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
    gen = monitor_generation(body)
    deployment_spec: Mapping[str, Any] = monitor_spec(body).get("deployment") or {}
    namespace, monitor = builders.monitor_namespace(body), builders.monitor_name(body)
    dep_name = str(deployment_spec.get("name") or "")
    deployment = serving.deployment
    if deployment is None or not dep_name:
        message = (
            f'spec.deployment.name: deployment "{dep_name}" not found in namespace "{namespace}"'
        )
        for ctype in (c.COND_READY, c.COND_ROLLOUT):
            st.set_condition(
                s, ctype, False, "DeploymentNotFound", message, generation=gen, now=now
            )
        actions.append(PostEvent("Warning", "DeploymentNotFound", message))
        return False
    claim = guards.deployment_claim(deployment, monitor=monitor, claimant=serving.claimant)
    if not claim.fire:
        for ctype in (c.COND_READY, c.COND_ROLLOUT):
            st.set_condition(s, ctype, False, claim.reason, claim.message, generation=gen, now=now)
        actions.append(PostEvent("Warning", claim.reason, claim.message))
        return False
    container = builders.find_container(deployment, deployment_spec.get("container"))
    if container is None:
        message = f'deployment "{dep_name}" has no container "{deployment_spec.get("container")}"'
        st.set_condition(
            s, c.COND_ROLLOUT, False, "ContainerNotFound", message, generation=gen, now=now
        )
        actions.append(PostEvent("Warning", "ContainerNotFound", message))
        return False
    if kind == "Rollback":
        failed = s.get("rollout") or {}
        previous_version, previous_sha = failed.get("version"), failed.get("sha256")
    else:
        previous_version, previous_sha = s.get("currentVersion"), s.get("currentSha256")
    rollouts.record(
        s,
        kind=kind,
        version=version,
        sha256=sha256,
        previous_version=int(previous_version) if previous_version is not None else None,
        previous_sha256=str(previous_sha) if previous_sha else None,
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
            container=deployment_spec.get("container"),
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
    body: Mapping[str, Any],
    s: st.Status,
    deployment: Mapping[str, Any],
    *,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status | None:
    """Decide what the serving Deployment as it is now means for the rollout in flight:
    nothing yet (None), complete, or failed (roll back). Without a rollout in flight, see
    :func:`follow_outside_change`."""
    rollout = s.get("rollout") or {}
    spec = monitor_spec(body)
    if rollout.get("version") is None:
        return follow_outside_change(body, s, deployment, actions=actions, now=now)
    if not rollouts.carries_target(
        deployment,
        container=(spec.get("deployment") or {}).get("container"),
        version=int(rollout["version"]),
        sha256=str(rollout.get("sha256") or ""),
    ):
        return None  # the patch has not landed (or was undone): the resync applies it
    if not rollout.get("generation"):
        # Patched but not yet acknowledged: the Deployment's conditions may still speak
        # of the previous rollout. The acknowledgement (or the resync) comes next.
        return None
    state = policies.rollout_state(
        deployment,
        generation=int(rollout.get("generation") or 0),
        started=parse_time(rollout.get("startedAt")),
        now=now,
    )
    if state.state == policies.PROGRESSING:
        return None
    s.pop("rollout", None)
    if state.state == policies.COMPLETE:
        return _complete(body, s, rollout, state_message=state.message, actions=actions, now=now)
    return fail(
        body,
        s,
        rollout,
        reason=state.reason,
        message=state.message,
        serving=Serving(deployment),  # labelled with this monitor: no other claim
        actions=actions,
        now=now,
    )


def _complete(
    body: Mapping[str, Any],
    s: st.Status,
    rollout: Mapping[str, Any],
    *,
    state_message: str,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status:
    """The rollout (or rollback) finished: its version serves."""
    gen = monitor_generation(body)
    kind = rollout.get("kind")
    version = int(rollout["version"])
    st.serve_version(s, version, now=now)
    if rollout.get("sha256"):
        s["currentSha256"] = rollout["sha256"]
    if kind == "Rollback":
        cond = st.condition(s, c.COND_ROLLOUT)
        st.set_condition(
            s,
            c.COND_ROLLOUT,
            False,
            "RolledBack",
            str(cond.get("message") or f"rolled back to version {version}"),
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
        if st.condition(s, c.COND_READY).get("reason") in {"RetrainFailed", "RolloutFailed"}:
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
    if kind == "Pin" and s.get("pin"):
        s["pin"] = {**s["pin"], "outcome": "Complete"}
    return st.finalize(s, monitor_spec(body), generation=gen, now=now)


def follow_outside_change(
    body: Mapping[str, Any],
    s: st.Status,
    deployment: Mapping[str, Any],
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
    current = s.get("currentVersion")
    if current is None:
        return None
    spec = monitor_spec(body)
    container = builders.find_container(deployment, (spec.get("deployment") or {}).get("container"))
    if container is None:
        return None
    version, sha = builders.read_model_env(container)
    if version is None or version == int(current):
        return None
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    if policies.rollout_state(deployment, generation=generation).state != policies.COMPLETE:
        return None  # not serving yet; a stuck change shows in the Deployment's own status
    gen = monitor_generation(body)
    dep_name = (deployment.get("metadata") or {}).get("name")
    message = (
        f'deployment "{dep_name}" serves version {version} (MODEL_VERSION), not version '
        f"{current}: it was changed outside a modelwatch rollout (a re-applied manifest?); "
        "status follows the version that serves. Choose a version with spec.pinnedVersion"
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
    return st.finalize(s, spec, generation=gen, now=now)


def fail(
    body: Mapping[str, Any],
    s: st.Status,
    rollout: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    serving: Serving,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status:
    """End the rollout in flight as failed (``reason``: ``message``): roll back to the
    previous version when allowed and possible, else say so in RolloutComplete and Ready."""
    spec = monitor_spec(body)
    gen = monitor_generation(body)
    kind = rollout.get("kind")
    version = int(rollout["version"])
    previous = rollout.get("previousVersion")
    rollback = bool((spec.get("deployment") or {}).get("rollbackOnFailure", True))
    if kind == "Pin" and s.get("pin"):
        s["pin"] = {**s["pin"], "outcome": "Failed"}
    s["rollout"] = dict(rollout)  # the rollback reads the failed version from it
    if (
        kind != "Rollback"
        and rollback
        and previous is not None
        and begin(
            body,
            s,
            kind="Rollback",
            version=int(previous),
            sha256=str(
                rollout.get("previousSha256") or policies.known_sha256(s, int(previous)) or ""
            ),
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
    cond_reason = "RollbackFailed" if kind == "Rollback" else reason
    text = f"version {version}: {reason}: {message}"
    st.set_condition(s, c.COND_ROLLOUT, False, cond_reason, text, generation=gen, now=now)
    st.set_condition(s, c.COND_READY, False, "RolloutFailed", text, generation=gen, now=now)
    actions.append(PostEvent("Warning", cond_reason, text))
    return st.finalize(s, spec, generation=gen, now=now)


def decide_pin(
    body: Mapping[str, Any],
    s: st.Status,
    serving: Serving,
    *,
    actions: list[Action],
    now: dt.datetime,
) -> st.Status | None:
    """Roll out ``spec.pinnedVersion`` once per generation; an unknown version is said once."""
    spec = monitor_spec(body)
    gen = monitor_generation(body)
    decision = policies.should_pin(spec=spec, status=s, generation=gen)
    if not decision.fire:
        if decision.reason == "UnknownVersion" and (s.get("pin") or {}).get("generation") != gen:
            s["pin"] = {
                "version": int(spec["pinnedVersion"]),
                "generation": gen,
                "outcome": "UnknownVersion",
            }
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
    version = int(spec["pinnedVersion"])
    sha = policies.known_sha256(s, version) or ""
    s["pin"] = {"version": version, "generation": gen, "outcome": "RollingOut"}
    begin(
        body,
        s,
        kind="Pin",
        version=version,
        sha256=sha,
        serving=serving,
        actions=actions,
        now=now,
    )
    return st.finalize(s, spec, generation=gen, now=now)


# ---------------------------------------------------------------------------
# Act
# ---------------------------------------------------------------------------


def act(body: Mapping[str, Any], actions: Sequence[Action], *, now: Clock = utcnow) -> None:
    """Perform ``actions`` once status recorded them (patches, Events, then metrics)."""
    acting.perform(body, actions, now=now)


def reapply_cronjob_if_serving_moved(before: list[str], body: Mapping[str, Any]) -> None:
    """Re-apply CronJob ``<mm>-check`` when the version that serves (or when it began
    serving) changed in status since ``before`` (the check arguments it was applied with):
    every later check then judges that version's traffic."""
    if builders.check_args(body) != before:
        blocked = children.ensure_children(body)  # never writes over a child it does not own
        if blocked is not None:
            events.warning(body, blocked.reason, blocked.message)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def handle_deployment(deployment: Mapping[str, Any], *, now: Clock = utcnow) -> None:
    """The serving Deployment changed: finish, or roll back, the rollout in flight."""
    meta = deployment.get("metadata") or {}
    monitor = (meta.get("labels") or {}).get(c.LABEL_MONITOR)
    if not monitor:
        return
    actions: list[Action] = []
    applied_args: list[list[str]] = []

    def decide(b: dict[str, Any], s: st.Status) -> st.Status | None:
        actions.clear()
        applied_args.clear()
        if (monitor_spec(b).get("deployment") or {}).get("name") != meta.get("name"):
            return None
        applied_args.append(builders.check_args(b))
        return decide_deployment(b, s, deployment, actions=actions, now=now())

    body = kube.update_status(str(meta.get("namespace")), str(monitor), decide)
    if body is not None:
        act(body, actions, now=now)
        if applied_args:
            reapply_cronjob_if_serving_moved(applied_args[0], body)


def apply_pin(namespace: str, name: str, *, now: Clock = utcnow) -> None:
    """Roll the Deployment to ``spec.pinnedVersion`` when the spec pins a version."""
    body = kube.get_monitor(namespace, name)
    if body is None or monitor_spec(body).get("pinnedVersion") is None:
        return
    serving = gather_serving(body)
    actions: list[Action] = []

    def decide(b: dict[str, Any], s: st.Status) -> st.Status | None:
        actions.clear()
        return decide_pin(b, s, serving, actions=actions, now=now())

    fresh = kube.update_status(namespace, name, decide)
    if fresh is not None:
        act(fresh, actions, now=now)
