"""Pure decisions on what the operator may touch or run. No API calls here.

* :func:`may_write_child` -- never adopt: a child is written only when absent or owned;
* :func:`deployment_claim` -- a serving Deployment is claimed by one monitor at most;
* :func:`image_allowed` -- a monitor runs only an image the operator's allowlist names.

Each returns a :class:`~modelwatch_operator.policies.Decision`: ``fire`` means go ahead;
otherwise ``reason`` and ``message`` go verbatim into the ``Ready`` condition.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Final

from modelwatch_operator import constants as c
from modelwatch_operator import objects
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document
from modelwatch_operator.policies import Decision

# Reasons (Ready=False) and the outcomes that let the operator go ahead.
NAME_CONFLICT: Final = "NameConflict"
DEPLOYMENT_CLAIMED: Final = "DeploymentClaimed"
IMAGE_NOT_ALLOWED: Final = "ImageNotAllowed"
ABSENT: Final = "Absent"
OWNED: Final = "Owned"
UNCLAIMED: Final = "Unclaimed"
CLAIMED_BY_US: Final = "ClaimedByThisMonitor"
STALE_CLAIM: Final = "StaleClaim"
IMAGE_ALLOWED: Final = "ImageAllowed"

# The operator Deployment's env var holding the monitor image allowlist.
ENV_ALLOWED_IMAGES: Final = "MODELWATCH_ALLOWED_MONITOR_IMAGES"


def owned_by(obj: Document, uid: str) -> bool:
    """True when ``obj`` has an owner reference to the object with ``uid``.

    >>> owned_by({"metadata": {"ownerReferences": [{"uid": "u1"}]}}, "u1")
    True
    >>> owned_by({"metadata": {"ownerReferences": [{"uid": "u1"}]}}, "")
    False
    """
    return bool(uid) and objects.meta(obj).owned_by(uid)


def may_write_child(existing: Document | None, *, kind: str, name: str, owner_uid: str) -> Decision:
    """Decide whether the operator may create or update child ``kind``/``name``.

    ``existing`` is the object of that name as read from the cluster (None: absent), and
    ``owner_uid`` the ModelMonitor's uid. Only an absent object, or one whose owner
    references name this monitor, may be written; anything else is the user's.

    >>> may_write_child(None, kind="ConfigMap", name="app-config", owner_uid="u1").reason
    'Absent'
    >>> may_write_child({"metadata": {}}, kind="ConfigMap", name="app-config",
    ...                 owner_uid="u1").reason
    'NameConflict'
    """
    if existing is None:
        return Decision(True, ABSENT, f'{kind} "{name}" does not exist yet')
    if owned_by(existing, owner_uid):
        return Decision(True, OWNED, f'{kind} "{name}" is owned by this ModelMonitor')
    return Decision(
        False,
        NAME_CONFLICT,
        f'{kind} "{name}" already exists and is not owned by this ModelMonitor; rename the '
        f"monitor or the {kind} (modelwatch never adopts an object)",
    )


def deployment_claim(
    deployment: Document,
    *,
    monitor: str,
    claimant: Monitor | None,
) -> Decision:
    """Decide whether monitor ``monitor`` may take over (label, roll) ``deployment``.

    The claim is the Deployment's ``modelwatch.io/monitor`` label. ``claimant`` is the
    ModelMonitor that label names, as read from the cluster (None: gone). A claim holds
    while that monitor exists, is not being deleted (``metadata.deletionTimestamp`` of its
    body), and still names this Deployment in ``spec.deployment.name``; a stale claim (the
    monitor was deleted or now serves another Deployment) may be taken over.

    >>> from modelwatch_operator.monitors import read_monitor
    >>> dep = {"metadata": {"name": "srv", "labels": {"modelwatch.io/monitor": "a"}}}
    >>> a = read_monitor({"metadata": {"name": "a"}, "spec": {
    ...     "model": {"name": "iris", "target": "y"}, "store": {"uri": "/store"},
    ...     "data": {"reference": {"uri": "/store/ref.csv"}}, "deployment": {"name": "srv"}}})
    >>> deployment_claim(dep, monitor="b", claimant=a).reason
    'DeploymentClaimed'
    >>> deployment_claim(dep, monitor="b", claimant=None).reason
    'StaleClaim'
    """
    meta = objects.meta(deployment)
    dep_name, holder = meta.name, meta.labels.get(c.LABEL_MONITOR)
    if not holder:
        return Decision(True, UNCLAIMED, f'deployment "{dep_name}" is not claimed by a monitor')
    if holder == monitor:
        return Decision(True, CLAIMED_BY_US, f'deployment "{dep_name}" is claimed by this monitor')
    if claimant is None:
        return Decision(
            True,
            STALE_CLAIM,
            f'ModelMonitor "{holder}" that claimed deployment "{dep_name}" is gone',
        )
    if claimant.deleting:
        return Decision(
            True,
            STALE_CLAIM,
            f'ModelMonitor "{holder}" that claimed deployment "{dep_name}" is being deleted',
        )
    named = claimant.spec.deployment.name if claimant.spec.deployment is not None else None
    if named != dep_name:
        return Decision(
            True,
            STALE_CLAIM,
            f'ModelMonitor "{holder}" that claimed deployment "{dep_name}" now names '
            f'deployment "{named}"',
        )
    return Decision(
        False,
        DEPLOYMENT_CLAIMED,
        f'spec.deployment.name: deployment "{dep_name}" is claimed by ModelMonitor "{holder}" '
        f"(label {c.LABEL_MONITOR}); one Deployment is served by one monitor. Delete that "
        "monitor or point this one at another Deployment",
    )


def parse_allowed_images(value: str | None, *, default: Sequence[str]) -> tuple[str, ...]:
    """Return the allowlist patterns from the env var's ``value``: comma-separated, blanks
    dropped; unset or blank gives ``default``.

    >>> parse_allowed_images(" a/b:1 , c/*,", default=("x",))
    ('a/b:1', 'c/*')
    >>> parse_allowed_images(None, default=("x",))
    ('x',)
    """
    patterns = tuple(p.strip() for p in (value or "").split(",") if p.strip())
    return patterns or tuple(default)


def image_allowed(image: str, patterns: Sequence[str], *, field: str) -> Decision:
    """Decide whether ``image`` (found at ``field``) matches one of the allowlist ``patterns``.

    Patterns are shell globs (``*``, ``?``, ``[...]``) matched against the image reference
    exactly as written, case-sensitive: ``registry.example/modelwatch/monitor:*`` allows
    every tag of one repository, and ``modelwatch/monitor:dev`` does not allow
    ``docker.io/modelwatch/monitor:dev``.

    >>> image_allowed("reg/monitor:1.2", ["reg/monitor:*"], field="spec.images.monitor").fire
    True
    >>> image_allowed("evil/x:1", ["reg/monitor:*"], field="spec.images.monitor").reason
    'ImageNotAllowed'
    """
    if any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns):
        return Decision(True, IMAGE_ALLOWED, f'image "{image}" is allowed')
    return Decision(
        False,
        IMAGE_NOT_ALLOWED,
        f'{field}: image "{image}" is not allowed by the operator; its env var '
        f"{ENV_ALLOWED_IMAGES} allows {', '.join(patterns) or 'nothing'} (comma-separated "
        "glob patterns, set on the modelwatch-operator Deployment)",
    )


def manifest_images(manifest: Document) -> list[str]:
    """Return the images of every container (and init container) of a Job or CronJob.

    >>> manifest_images({"kind": "Job", "spec": {"template": {"spec": {
    ...     "containers": [{"image": "a"}], "initContainers": [{"image": "b"}]}}}})
    ['a', 'b']
    """
    pod = objects.pod_spec(manifest)
    return [cont.image for cont in (*pod.containers, *pod.init_containers)]
