"""Create or update a monitor's children without ever adopting an object.

Read, decide with :mod:`guards`, then act: an absent child is created (POST, so a name taken
meanwhile answers 409 instead of being merged into), an owned child is replaced (PUT) with
the resourceVersion that was read (so a child changed, deleted or recreated meanwhile answers
409 or 404 instead of being overwritten), and anything else is left alone and reported as a
:class:`~modelwatch_operator.policies.Decision` that does not fire. A 409 or 404 reads again.

Not server-side apply: it creates an absent object but merges into an existing one, which is
exactly the adoption this module prevents; and fields set by a create would stay owned by
that create, so a later apply could never remove them (a dropped store volume, say).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from modelwatch_monitor import contract
from modelwatch_operator import builders, guards, kube
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document, Manifest
from modelwatch_operator.policies import Decision

MAX_ATTEMPTS: Final = 3

Reader = Callable[[str, str], Manifest | None]
Creator = Callable[[Document], bool]
Replacer = Callable[[Document], None]


class ChildRaceError(RuntimeError):
    """A child kept changing between read and write; the handler fails and is retried."""


def allowed_monitor_images() -> tuple[str, ...]:
    """Return the monitor image allowlist of this operator (its env, else the default image)."""
    return guards.parse_allowed_images(
        os.environ.get(guards.ENV_ALLOWED_IMAGES), default=(contract.DEFAULT_MONITOR_IMAGE,)
    )


def check_images(manifest: Document) -> Decision:
    """Decide whether every container image of a Job or CronJob manifest is allowed."""
    patterns = allowed_monitor_images()
    for image in guards.manifest_images(manifest):
        decision = guards.image_allowed(image, patterns, field="spec.images.monitor")
        if not decision.fire:
            return decision
    return Decision(True, guards.IMAGE_ALLOWED, "every image is allowed")


def updated_child(existing: Document, desired: Document) -> Manifest:
    """Return ``desired`` as the replacement of the owned child ``existing``.

    It carries ``existing``'s resourceVersion (the write's precondition) and keeps what
    others added to its metadata: labels and annotations (ours win on the same key),
    finalizers, and owner references other than ours that are not controllers.

    >>> old = {"metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "1"},
    ...        "annotations": {"note": "kept"}}, "data": {"k": "old"}}
    >>> new = updated_child(old, {"metadata": {"name": "a", "labels": {"y": "2"}},
    ...                           "data": {"k": "new"}})
    >>> new["metadata"]["resourceVersion"], new["metadata"]["labels"], new["data"]
    ('7', {'x': '1', 'y': '2'}, {'k': 'new'})
    >>> new["metadata"]["annotations"]
    {'note': 'kept'}
    """
    old: Document = existing.get("metadata") or {}
    meta = dict(desired["metadata"])
    ours = [dict(ref) for ref in meta.get("ownerReferences") or []]
    our_uids = {ref.get("uid") for ref in ours}
    others = [
        dict(ref)
        for ref in old.get("ownerReferences") or []
        if ref.get("uid") not in our_uids and not ref.get("controller")
    ]
    meta["resourceVersion"] = old.get("resourceVersion")
    meta["labels"] = {**(old.get("labels") or {}), **(meta.get("labels") or {})}
    annotations = {**(old.get("annotations") or {}), **(meta.get("annotations") or {})}
    if annotations:
        meta["annotations"] = annotations
    if ours or others:
        meta["ownerReferences"] = [*others, *ours]
    if old.get("finalizers"):
        meta["finalizers"] = list(old["finalizers"])
    return {**desired, "metadata": meta}


def ensure_child(
    mm: Monitor,
    manifest: Document,
    *,
    read: Reader,
    create: Creator,
    replace: Replacer,
) -> Decision:
    """Create ``manifest`` when absent, replace the child when this monitor owns it, else
    leave it alone and return the ``NameConflict``."""
    meta = manifest["metadata"]
    kind, name, namespace = str(manifest["kind"]), str(meta["name"]), str(meta["namespace"])
    for _ in range(MAX_ATTEMPTS):
        existing = read(namespace, name)
        decision = guards.may_write_child(existing, kind=kind, name=name, owner_uid=mm.uid)
        if not decision.fire:
            return decision
        if existing is None:
            if create(manifest):
                return decision
            continue  # created by someone else meanwhile: read again
        try:
            replace(updated_child(existing, manifest))
        except kube.ApiException as exc:
            if exc.status in (404, 409):
                continue  # changed, deleted or recreated meanwhile: read again
            raise
        return decision
    raise ChildRaceError(f"{kind} {namespace}/{name} changed {MAX_ATTEMPTS} times while written")


def ensure_children(mm: Monitor) -> Decision | None:
    """Ensure ConfigMap ``<mm>-config`` and CronJob ``<mm>-check``; None when both are in place.

    Otherwise return why not (``ImageNotAllowed`` or ``NameConflict``), having written
    nothing further: the CronJob mounts the ConfigMap by name, so it is not written while the
    ConfigMap of that name is someone else's.
    """
    cronjob = builders.build_cronjob(mm)
    image = check_images(cronjob)
    if not image.fire:
        return image
    config = ensure_child(
        mm,
        builders.build_config_map(mm),
        read=kube.get_config_map,
        create=kube.create_config_map,
        replace=kube.replace_config_map,
    )
    if not config.fire:
        return config
    cron = ensure_child(
        mm,
        cronjob,
        read=kube.get_cronjob,
        create=kube.create_cronjob,
        replace=kube.replace_cronjob,
    )
    return None if cron.fire else cron


def create_job(mm: Monitor, manifest: Document) -> Decision:
    """Create a check or retrain Job; fire when it now exists and is this monitor's.

    A Job is never updated: when the name is taken (409), the Job found is this monitor's
    (a retried create) or the user's (``NameConflict``, left alone).
    """
    image = check_images(manifest)
    if not image.fire:
        return image
    meta = manifest["metadata"]
    if kube.create_job(manifest):
        return Decision(True, guards.ABSENT, f"Job {meta['name']} created")
    existing = kube.get_job(str(meta["namespace"]), str(meta["name"]))
    if existing is None:  # deleted right after the 409: the next resync creates it
        return Decision(True, guards.OWNED, f"Job {meta['name']} existed and is gone")
    return guards.may_write_child(existing, kind="Job", name=str(meta["name"]), owner_uid=mm.uid)
