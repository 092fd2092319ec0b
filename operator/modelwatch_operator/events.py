"""Kubernetes Events on the ModelMonitor, posted through kopf's event poster."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from modelwatch_operator import constants as c

log = logging.getLogger(__name__)


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion") or c.API_VERSION,
        "kind": body.get("kind") or c.KIND,
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
    }


def post(body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
    """Post one Event about ``body``; outside a running operator, only log it."""
    try:
        kopf.event(_ref(body), type=type, reason=reason, message=message[:1024])  # type: ignore[arg-type]
    except LookupError:  # no kopf context (unit tests, scripts)
        log.info("event %s %s: %s", type, reason, message)


def normal(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, type="Normal", reason=reason, message=message)


def warning(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, type="Warning", reason=reason, message=message)
