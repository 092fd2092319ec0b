"""kopf entry point: settings and thin handlers. Run with::

    kopf run -m modelwatch_operator.main --all-namespaces --peering=modelwatch \\
        --liveness=http://0.0.0.0:8080/healthz

(``--standalone`` instead of ``--peering`` for a single process outside the cluster.) With
peering, replicas stand by while an older one runs: see :func:`peering_priority`.

Handlers hand off by verb, each module a gather -> decide -> act:
:mod:`~modelwatch_operator.reconcile_monitor` (the monitor),
:mod:`~modelwatch_operator.reconcile_jobs` (its Jobs),
:mod:`~modelwatch_operator.reconcile_rollout` (its Deployment) and
:mod:`~modelwatch_operator.resync` (the timer). They return None and write status through the
API (serialised per monitor), never through kopf's result storage.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import kopf

from modelwatch_operator import constants as c
from modelwatch_operator import (
    kube,
    metrics,
    objects,
    reconcile_jobs,
    reconcile_monitor,
    reconcile_rollout,
    resync,
)
from modelwatch_operator.monitors import InvalidSpec, read_monitor

RETRY_SECONDS = 15  # until the serving Deployment exists
# The periodic resync of each monitor (see modelwatch_operator.resync): every 30 s, once the
# monitor has been quiet for 10 s (its own status writes count: a busy loop is driven by
# events, the resync catches what they missed); a failed step is retried after 10 s.
RESYNC_INTERVAL_SECONDS = 30.0
RESYNC_IDLE_SECONDS = 10.0
RESYNC_BACKOFF_SECONDS = 10.0

P = ParamSpec("P")
R = TypeVar("R")


PRIORITY_EPOCH_MS = 4_000_000_000_000  # keeps priorities positive until the year 2096


def peering_priority(started: float, jitter: int) -> int:
    """Return this replica's kopf peering priority: the older the process, the higher.

    kopf pauses every operator that sees a live peer of higher *or equal* priority, so
    replicas need distinct priorities; the oldest one keeps running and a new replica (a
    rolling update, a restarted pod) stands by until it is gone. ``started`` counts in
    milliseconds; ``jitter`` (0-999) separates replicas started in the same millisecond.
    The result stays below 2**53, exact as a JSON number.

    >>> peering_priority(1_800_000_000.5, 7) > peering_priority(1_800_000_000.501, 999)
    True
    >>> peering_priority(1_800_000_000.0, 999) < 2**53
    True
    """
    return (PRIORITY_EPOCH_MS - int(started * 1000)) * 1000 + int(jitter) % 1000


def _counting_errors(handler: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count exceptions of a handler in ``modelwatch_reconcile_errors_total`` and re-raise."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except kopf.TemporaryError:
                raise  # waiting, not an error
            except Exception:
                metrics.RECONCILE_ERRORS.labels(handler).inc()
                raise

        return wrapper

    return decorate


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: object) -> None:
    """Operator settings, chosen deliberately (see the comments)."""
    kube.load_config()
    # The liveness probe hits /healthz every few seconds: keep its access log out.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Post handler log records of WARNING and above as Events too (errors show in describe);
    # the loop's own Events are posted explicitly by modelwatch_operator.events.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = c.OPERATOR_NAME
    settings.posting.reporting_instance = os.environ.get("POD_NAME", c.OPERATOR_NAME)
    # Peering (kopf run --peering=...): one active replica, the oldest; keep-alives unlogged.
    settings.peering.priority = peering_priority(time.time(), random.randrange(1000))
    settings.peering.stealth = True
    peering = settings.peering
    # kopf starts paused with a mandatory peering, until its first peering event.
    metrics.watch_leadership(paused=peering.mandatory and not peering.standalone)
    wanted = peering.mandatory and peering.clusterwide and not peering.standalone
    if wanted and not kube.cluster_peering_exists(peering.name):
        # kopf waits silently for it (its keep-alive 404s at debug level): say so.
        logger.error(
            "ClusterKopfPeering %r not found: this operator stays paused until it exists "
            "(kubectl apply -k manifests/operator, after the CRDs in crds/)",
            peering.name,
        )
    # Progress and diff-base in annotations with our prefix: nothing kopf-specific in status,
    # whose schema the CRD declares in full.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{c.KOPF_PREFIX}/finalizer"
    # Server-side label selectors: watch only the Jobs and Deployments modelwatch owns.
    settings.watching.label_selectors["batch", "v1", "jobs"] = (
        f"{c.LABEL_MONITOR},{c.LABEL_JOB_KIND}"
    )
    settings.watching.label_selectors["apps", "v1", "deployments"] = c.LABEL_MONITOR
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Retry a failed reconcile quickly first, then back off to a minute.
    settings.queueing.error_delays = (1, 2, 5, 10, 20, 30, 60)
    settings.execution.max_workers = 16
    # At most 50 objects in flight at once (kopf's per-object workers, each patching its
    # finalizer and progress before any handler runs): 1,000 monitors applied together would
    # otherwise send 1,000 PATCHes at once, and the API server's priority-and-fairness
    # queues answer 429. An idle worker gives its slot back after a second, not five.
    settings.queueing.worker_limit = 50
    settings.queueing.idle_timeout = 1.0
    settings.posting.worker_limit = 20
    settings.networking.error_backoffs = (1, 2, 4, 8, 16)
    # The operator only needs its own resources: no CRD or namespace scanning (and no RBAC).
    settings.scanning.disabled = True
    port = int(os.environ.get("MODELWATCH_METRICS_PORT", c.METRICS_PORT))
    if port:
        metrics.serve(port)
        logger.info("metrics on port %d", port)


@kopf.on.resume(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.PLURAL)
@_counting_errors("reconcile")
def reconcile(body: kopf.Body, name: str, namespace: str | None, **_: object) -> None:
    """Ensure the ConfigMap and CronJob, take over the Deployment, apply manual controls."""
    try:
        mm = read_monitor(body)
    except InvalidSpec as exc:
        reconcile_monitor.reconcile_invalid(namespace or "default", name, str(exc))
        raise kopf.PermanentError(f"spec refused: {exc}") from None
    retry = reconcile_monitor.reconcile(mm)
    if retry:
        raise kopf.TemporaryError(retry, delay=RETRY_SECONDS)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={c.LABEL_MONITOR: kopf.PRESENT, c.LABEL_JOB_KIND: kopf.PRESENT},
)
@_counting_errors("job")
def job_event(type: str | None, body: kopf.Body, **_: object) -> None:
    """A modelwatch Job changed; once it has finished, read its result."""
    if type == "DELETED":
        return
    metrics.show_job(objects.job(body))
    reconcile_jobs.handle_job(dict(body))


@kopf.on.event("apps", "v1", "deployments", labels={c.LABEL_MONITOR: kopf.PRESENT})
@_counting_errors("deployment")
def deployment_event(type: str | None, body: kopf.Body, **_: object) -> None:
    """A serving Deployment changed; follow the rollout in flight, if any."""
    if type == "DELETED":
        return
    reconcile_rollout.handle_deployment(dict(body))


@kopf.timer(
    c.GROUP,
    c.VERSION,
    c.PLURAL,
    id="resync",
    interval=RESYNC_INTERVAL_SECONDS,
    idle=RESYNC_IDLE_SECONDS,
    backoff=RESYNC_BACKOFF_SECONDS,
)
def resync_timer(name: str, namespace: str | None, **_: object) -> None:
    """Re-derive what is in flight from the cluster; heal what a lost event left undone."""
    if not namespace:
        return
    errors = resync.resync_monitor(namespace, name)
    if errors:
        raise kopf.TemporaryError("; ".join(errors)[:1000], delay=RESYNC_BACKOFF_SECONDS)


@kopf.on.event(c.GROUP, c.VERSION, c.PLURAL)
def monitor_event(
    type: str | None, body: kopf.Body, name: str, namespace: str | None, **_: object
) -> None:
    """Show a monitor's status as gauges (each status write is an event, and so is each
    monitor listed when the operator starts); once it is gone, drop its series and its
    lock (children go by ownership)."""
    if not namespace:
        return
    if type == "DELETED":
        metrics.forget_monitor(namespace, name)
        kube.forget_monitor(namespace, name)
        return
    try:
        mm = read_monitor(body)
    except InvalidSpec:
        return  # the reconcile reports it; the series keep their last values
    metrics.show_monitor(mm)
