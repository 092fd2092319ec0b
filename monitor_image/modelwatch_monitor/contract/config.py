"""The job config: the spec, defaults applied, as the operator mounts it into every job pod.

::

    {"schema": 1, "monitor": {"name": "iris", "namespace": "default", "uid": "..."},
     "spec": { ...the ModelMonitor spec, defaults applied... }}

:func:`parse_job_config` is the CLI's door; :func:`parse_spec` the operator's. Both raise
:class:`ContractError` naming every field that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from modelwatch_monitor.contract.base import ContractModel
from modelwatch_monitor.contract.constants import SCHEMA_VERSION
from modelwatch_monitor.contract.errors import ContractError, contract_error
from modelwatch_monitor.contract.spec import Spec

_M = TypeVar("_M", bound=BaseModel)


class MonitorRef(ContractModel):
    """Which ModelMonitor a job works for."""

    name: str = ""
    namespace: str = ""
    uid: str = ""


class JobConfig(ContractModel):
    """The parsed job config document."""

    monitor: MonitorRef = MonitorRef()
    spec: Spec


def camel(name: str) -> str:
    """Return the CRD's spelling of a field name.

    >>> camel("min_effect_size")
    'minEffectSize'
    """
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def parse_section(cls: type[_M], doc: object, path: str) -> _M:
    """Parse one spec object (camelCase keys) into model ``cls``; raise ContractError.

    A missing key takes the field's default; a key the model does not know is ignored
    (the API server prunes those anyway).
    """
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        raise contract_error(exc, prefix=path) from None


def parse_field(cls: type[BaseModel], name: str, value: object, path: str) -> object:
    """Check ``value`` as the spec checks field ``name`` of ``cls``: its type and bounds.

    For a command-line option that stands in for one spec field (``--min-rows`` for
    ``spec.data.current.minRows``): the same check, a :class:`ContractError` naming ``path``.

    >>> from modelwatch_monitor.contract.spec import CurrentSpec
    >>> parse_field(CurrentSpec, "min_rows", 10, "--min-rows")
    10
    >>> parse_field(CurrentSpec, "min_rows", 0, "--min-rows")
    Traceback (most recent call last):
    ...
    modelwatch_monitor.contract.errors.ContractError: --min-rows: must be >= 1, got 0
    """
    info = cls.model_fields[name]
    adapter: TypeAdapter[object] = TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[arg-type]
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise contract_error(exc, prefix=path) from None


def parse_spec(spec: object) -> Spec:
    """Parse and check a ``ModelMonitor`` spec; raise :class:`ContractError` naming the field."""
    return parse_section(Spec, spec, "spec")


def build_job_config(
    *, name: str, namespace: str, spec: Spec | Mapping[str, object], uid: str = ""
) -> dict[str, object]:
    """Return the job config document for one ModelMonitor.

    The operator passes the parsed :class:`Spec`, so every default is written out; a
    mapping (tests, tools) is passed through as it is and checked by the Job's door.
    """
    return {
        "schema": SCHEMA_VERSION,
        "monitor": {"name": name, "namespace": namespace, "uid": uid},
        "spec": spec.to_doc() if isinstance(spec, Spec) else dict(spec),
    }


def parse_job_config(text: str | bytes) -> JobConfig:
    """Parse and validate a job config document; raise :class:`ContractError`."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"job config is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ContractError("job config must be a JSON object")
    schema = doc.get("schema")
    if schema != SCHEMA_VERSION:
        raise ContractError(
            f"job config schema {schema!r} is not supported; this image reads schema "
            f"{SCHEMA_VERSION}"
        )
    if not isinstance(doc.get("spec"), dict):
        raise ContractError("job config has no 'spec' object")
    monitor = parse_section(MonitorRef, doc.get("monitor") or {}, "monitor")
    return JobConfig(monitor=monitor, spec=parse_spec(doc["spec"]))


__all__ = [
    "JobConfig",
    "MonitorRef",
    "build_job_config",
    "camel",
    "parse_field",
    "parse_job_config",
    "parse_section",
    "parse_spec",
]
