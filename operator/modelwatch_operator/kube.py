"""Kubernetes IO: the only module that calls the API (besides kopf itself).

Synchronous client calls; kopf runs sync handlers in its thread pool. Status writes for one
ModelMonitor are serialised by an in-process lock and go out as JSON merge patches of the
changed top-level fields, conditional on the ``resourceVersion`` they were computed from: a
write from another process in between (a second replica, or one stuck terminating) makes
the apiserver answer 409, and the update is computed again from the fresh object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, config

from modelwatch_operator import constants as c
from modelwatch_operator import status as st
from modelwatch_operator.monitors import Monitor, read_monitor
from modelwatch_operator.objects import Document, Manifest

ApiException = client.ApiException

_MERGE = "application/merge-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"

_locks: dict[tuple[str, str], threading.RLock] = {}
_locks_guard = threading.Lock()


_client: list[client.ApiClient] = []

POOL_SIZE = 16  # as many connections as kopf's handler threads


def load_config() -> None:
    """Load in-cluster credentials, else the kubeconfig; share one connection pool."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = POOL_SIZE
    _client[:] = [client.ApiClient(configuration)]


def api_client() -> client.ApiClient:
    """Return the shared API client (one keep-alive pool for every call)."""
    if not _client:
        load_config()
    return _client[0]


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def _batch() -> client.BatchV1Api:
    return client.BatchV1Api(api_client())


def _apps() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def _plain(obj: Any) -> Manifest:
    if isinstance(obj, dict):
        return obj
    result: Manifest = api_client().sanitize_for_serialization(  # type: ignore[no-untyped-call]
        obj
    )
    return result


def monitor_lock(namespace: str, name: str) -> threading.RLock:
    """Return the lock serialising status writes of one ModelMonitor."""
    with _locks_guard:
        return _locks.setdefault((namespace, name), threading.RLock())


def forget_monitor(namespace: str, name: str) -> None:
    with _locks_guard:
        _locks.pop((namespace, name), None)


# --- ModelMonitor ---------------------------------------------------------------------


def get_monitor(namespace: str, name: str) -> Manifest | None:
    try:
        return _plain(
            _custom().get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def get_typed_monitor(namespace: str, name: str) -> Monitor | None:
    """Read the monitor through the kopf door (:func:`monitors.read_monitor`); None when gone."""
    body = get_monitor(namespace, name)
    return None if body is None else read_monitor(body)


def patch_monitor_status(
    namespace: str, name: str, patch: Document, *, resource_version: str | None = None
) -> None:
    """Merge-patch the status; with ``resource_version``, only if the object is unchanged
    since (the apiserver answers 409 Conflict otherwise)."""
    doc: Manifest = {"status": dict(patch)}
    if resource_version:
        doc["metadata"] = {"resourceVersion": resource_version}
    _custom().patch_namespaced_custom_object_status(
        c.GROUP,
        c.VERSION,
        namespace,
        c.PLURAL,
        name,
        doc,
        _content_type=_MERGE,
    )


def patch_monitor_annotations(namespace: str, name: str, annotations: Document) -> None:
    _custom().patch_namespaced_custom_object(
        c.GROUP,
        c.VERSION,
        namespace,
        c.PLURAL,
        name,
        {"metadata": {"annotations": dict(annotations)}},
        _content_type=_MERGE,
    )


UpdateFn = Callable[[Monitor, st.Status], st.Status | None]


CONFLICT_RETRIES = 8


def update_status(namespace: str, name: str, fn: UpdateFn) -> Monitor | None:
    """Read the monitor, let ``fn(monitor, status_copy)`` build the new status, patch the diff.

    ``fn`` is pure (no API calls: it may run more than once) and returns None to write
    nothing. The patch is conditional on the resourceVersion that was read; on a conflict
    the monitor is read again and ``fn`` runs again, so a status change computed from a
    stale read never lands (two operator processes cannot fold one result twice). Returns
    the monitor with the new status, or None when the monitor is gone. A spec the models
    refuse raises :class:`~modelwatch_operator.monitors.InvalidSpec`.
    """
    written: list[Monitor] = []

    def typed(body: Document, s: st.Status) -> st.Status | None:
        mm = read_monitor(body)
        written[:] = [mm]
        return fn(mm, s)

    new = update_raw_status(namespace, name, typed)
    if new is None:
        return None
    return written[0] if new is _UNCHANGED else written[0].with_status(new)


_UNCHANGED: st.Status = {}


def update_raw_status(
    namespace: str, name: str, fn: Callable[[Document, st.Status], st.Status | None]
) -> st.Status | None:
    """:func:`update_status` on the raw body: for a spec the models refuse. Returns the
    status written (``_UNCHANGED`` when ``fn`` wrote nothing), or None when the monitor is
    gone."""
    with monitor_lock(namespace, name):
        for attempt in range(CONFLICT_RETRIES + 1):
            body = get_monitor(namespace, name)
            if body is None:
                return None
            old = st.copy_status(body)
            new = fn(body, st.copy_status(body))
            if new is None:
                return _UNCHANGED
            patch = st.diff(old, new)
            if patch:
                version = str((body.get("metadata") or {}).get("resourceVersion") or "")
                try:
                    patch_monitor_status(namespace, name, patch, resource_version=version or None)
                except ApiException as exc:
                    if exc.status == 409 and attempt < CONFLICT_RETRIES:
                        continue
                    raise
            return new
    return None  # unreachable: the last attempt returns or raises


def cluster_peering_exists(name: str) -> bool:
    """True when kopf's ClusterKopfPeering ``name`` exists (kopf.dev/v1)."""
    try:
        _custom().get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- children ---------------------------------------------------------------------------


def _replace(replace: Callable[..., object], manifest: Document) -> None:
    """Replace (PUT) an object with ``replace``, a ``replace_namespaced_*`` method.

    ``manifest`` carries the resourceVersion it was built from: a change meanwhile, or a
    deletion, answers 409 or 404 instead of being overwritten.
    """
    meta = manifest["metadata"]
    replace(meta["name"], meta["namespace"], dict(manifest), field_manager=c.FIELD_MANAGER)


def replace_config_map(manifest: Document) -> None:
    _replace(_core().replace_namespaced_config_map, manifest)


def replace_cronjob(manifest: Document) -> None:
    _replace(_batch().replace_namespaced_cron_job, manifest)


def _read(read: Callable[..., object], namespace: str, name: str) -> Manifest | None:
    """Read one object with ``read``, a ``read_namespaced_*`` method; None when absent."""
    try:
        return _plain(read(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _create(create: Callable[..., object], manifest: Document) -> bool:
    """Create ``manifest`` with ``create``; False when the name is taken (409 AlreadyExists)."""
    try:
        create(manifest["metadata"]["namespace"], dict(manifest), field_manager=c.FIELD_MANAGER)
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def get_config_map(namespace: str, name: str) -> Manifest | None:
    return _read(_core().read_namespaced_config_map, namespace, name)


def create_config_map(manifest: Document) -> bool:
    return _create(_core().create_namespaced_config_map, manifest)


def get_cronjob(namespace: str, name: str) -> Manifest | None:
    return _read(_batch().read_namespaced_cron_job, namespace, name)


def create_cronjob(manifest: Document) -> bool:
    return _create(_batch().create_namespaced_cron_job, manifest)


def get_job(namespace: str, name: str) -> Manifest | None:
    return _read(_batch().read_namespaced_job, namespace, name)


def create_job(manifest: Document) -> bool:
    """Create a Job; return False when it already exists (409), which makes creation idempotent."""
    try:
        _batch().create_namespaced_job(
            manifest["metadata"]["namespace"],
            dict(manifest),  # type: ignore[arg-type]  # the client serialises plain dicts as is
            field_manager=c.FIELD_MANAGER,
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def job_exists(namespace: str, name: str) -> bool:
    try:
        _batch().read_namespaced_job(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def list_monitor_jobs(namespace: str, monitor: str) -> list[Manifest]:
    """Return the check and retrain Jobs of one monitor (by label)."""
    jobs = _batch().list_namespaced_job(
        namespace, label_selector=f"{c.LABEL_MONITOR}={monitor},{c.LABEL_JOB_KIND}"
    )
    return [_plain(j) for j in _plain(jobs).get("items") or []]


def list_job_pods(namespace: str, job: str) -> list[Manifest]:
    pods = _core().list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
    )
    return [_plain(p) for p in _plain(pods).get("items") or []]


# --- serving Deployment -----------------------------------------------------------------


def pvc_exists(namespace: str, name: str) -> bool:
    try:
        _core().read_namespaced_persistent_volume_claim(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def get_deployment(namespace: str, name: str) -> Manifest | None:
    try:
        return _plain(_apps().read_namespaced_deployment(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_deployment(namespace: str, name: str, patch: Document) -> Manifest:
    """Strategic-merge-patch a Deployment (containers and env merge by name)."""
    return _plain(
        _apps().patch_namespaced_deployment(
            name, namespace, dict(patch), field_manager=c.FIELD_MANAGER, _content_type=_STRATEGIC
        )
    )
