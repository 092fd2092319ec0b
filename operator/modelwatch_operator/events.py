"""Kubernetes Events on the ModelMonitor, posted through kopf's event poster."""

from __future__ import annotations

import logging

import kopf

from modelwatch_operator import constants as c
from modelwatch_operator.monitors import Monitor

log = logging.getLogger(__name__)


def _ref(mm: Monitor) -> dict[str, str | dict[str, str]]:
    """Return the object reference kopf posts the Event about."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": mm.name, "namespace": mm.namespace, "uid": mm.uid},
    }


def post(mm: Monitor, *, type: str, reason: str, message: str) -> None:
    """Post one Event about ``mm``; outside a running operator, only log it."""
    try:
        kopf.event(_ref(mm), type=type, reason=reason, message=message[:1024])  # type: ignore[arg-type]
    except LookupError:  # no kopf context (unit tests, scripts)
        log.info("event %s %s: %s", type, reason, message)


def normal(mm: Monitor, reason: str, message: str) -> None:
    post(mm, type="Normal", reason=reason, message=message)


def warning(mm: Monitor, reason: str, message: str) -> None:
    post(mm, type="Warning", reason=reason, message=message)
