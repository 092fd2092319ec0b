"""The kopf door: a ModelMonitor body in, a :class:`Monitor` with typed spec and status out.

Every handler reads the monitor once through :func:`read_monitor`; the builders, policies
and reconcile steps take the :class:`Monitor` (or its ``spec`` and ``status`` models), never
the raw body. A spec the models refuse (a document the API server's schema let through, or
an older CRD) raises :class:`InvalidSpec`, which the reconcile shows as ``Ready=False``
with reason ``InvalidSpec`` and the fields named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from modelwatch_monitor import contract
from modelwatch_operator import objects
from modelwatch_operator.objects import Document


class InvalidSpec(contract.ContractError):
    """The monitor's spec does not follow the contract; the message names each field."""


@dataclass(frozen=True)
class Monitor:
    """A ModelMonitor as the operator reads it.

    ``body`` is kept only for what needs the object itself (an owner reference's uid is
    here too, so only Events and patches of the whole object use it).
    """

    name: str
    namespace: str
    spec: contract.Spec
    status: contract.MonitorStatus = field(default_factory=contract.MonitorStatus)
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    body: Document = field(default_factory=dict, repr=False, compare=False)
    deleting: bool = False

    def with_status(self, status_doc: Document) -> Monitor:
        """Return this monitor with status ``status_doc`` (just written)."""
        return replace(
            self, status=read_status(status_doc), body={**self.body, "status": dict(status_doc)}
        )


def read_status(doc: object) -> contract.MonitorStatus:
    """Parse a status document; a part the model refuses is dropped, never fatal.

    Status is written by the operator alone, so a part that does not parse was written by
    something else (an older operator, a hand edit): reading it as absent lets the
    reconcile rewrite it, where failing would wedge the monitor.
    """
    if not isinstance(doc, Mapping):
        return contract.MonitorStatus()
    try:
        return contract.MonitorStatus.model_validate(doc)
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        return contract.MonitorStatus.model_validate({k: v for k, v in doc.items() if k not in bad})


def read_monitor(body: Document) -> Monitor:
    """Return the typed view of a ModelMonitor body; raise :class:`InvalidSpec`."""
    meta = objects.meta(body)
    try:
        spec = contract.parse_spec(body.get("spec") or {})
    except contract.ContractError as exc:
        raise InvalidSpec(str(exc)) from None
    return Monitor(
        name=meta.name,
        namespace=meta.namespace or "default",
        spec=spec,
        status=read_status(body.get("status")),
        uid=meta.uid,
        generation=meta.generation,
        resource_version=meta.resource_version,
        annotations=meta.annotations,
        body=body,
        deleting=meta.deletion_timestamp is not None,
    )
