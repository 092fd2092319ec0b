"""Kubernetes objects as the operator reads them: typed views of the fields it uses.

The API's objects arrive as JSON documents (from kopf, or the client's
``sanitize_for_serialization``). The operator reads a handful of their fields; each view
declares those, with the API's defaults, and ignores the rest. Manifests the operator writes
stay plain documents (:data:`Document`): they are sent, never read back through these views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from modelwatch_monitor import contract

#: A Kubernetes object or manifest as a JSON document, read-only.
Document = Mapping[str, Any]
#: A JSON object being built (a manifest, a patch, a status document).
Manifest = dict[str, Any]


class View(BaseModel):
    """A read-only view: camelCase names, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class OwnerReference(View):
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class ObjectMeta(View):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str = ""
    deletion_timestamp: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    owner_references: tuple[OwnerReference, ...] = ()
    finalizers: tuple[str, ...] = ()

    def owned_by(self, uid: str) -> bool:
        """True when an owner reference names ``uid``."""
        return any(ref.uid == uid for ref in self.owner_references)


class EnvVar(View):
    name: str
    value: str | None = None


class Container(View):
    name: str = ""
    image: str = ""
    env: tuple[EnvVar, ...] = ()

    def model_env(self) -> tuple[int | None, str | None]:
        """Return (MODEL_VERSION, MODEL_SHA256) from the literal env.

        >>> Container(env=(EnvVar(name="MODEL_VERSION", value="2"),)).model_env()
        (2, None)
        >>> Container(env=(EnvVar(name="MODEL_VERSION", value="x"),)).model_env()
        (None, None)
        """
        env = {e.name: e.value for e in self.env}
        raw = env.get(contract.ENV_MODEL_VERSION)
        try:
            version = int(raw) if raw else None
        except ValueError:
            version = None
        return version, env.get(contract.ENV_MODEL_SHA256) or None


class PodSpec(View):
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()


class PodTemplate(View):
    spec: PodSpec = PodSpec()


class Condition(View):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    last_update_time: str | None = None


class DeploymentSpec(View):
    replicas: int | None = None
    progress_deadline_seconds: int | None = None
    template: PodTemplate = PodTemplate()


class DeploymentStatus(View):
    observed_generation: int = 0
    replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    conditions: tuple[Condition, ...] = ()


class Deployment(View):
    metadata: ObjectMeta = ObjectMeta()
    spec: DeploymentSpec = DeploymentSpec()
    status: DeploymentStatus = DeploymentStatus()

    def container(self, name: str | None) -> Container | None:
        """Return the serving container (by name, else the first), or None."""
        containers = self.spec.template.spec.containers
        if not name:
            return containers[0] if containers else None
        return next((cont for cont in containers if cont.name == name), None)


class JobStatus(View):
    start_time: str | None = None
    completion_time: str | None = None
    conditions: tuple[Condition, ...] = ()


class Job(View):
    metadata: ObjectMeta = ObjectMeta()
    status: JobStatus = JobStatus()

    def finished(self) -> tuple[bool, bool, str]:
        """Return (finished, succeeded, message) from the Job's conditions."""
        for cond in self.status.conditions:
            if cond.status != "True":
                continue
            if cond.type == "Complete":
                return True, True, ""
            if cond.type == "Failed":
                return True, False, f"{cond.reason or 'Failed'}: {cond.message}"
        return False, False, ""

    def finished_at(self) -> dt.datetime | None:
        """When the Job finished: ``completionTime``, else (a failed Job) the time its
        Complete or Failed condition turned True."""
        done = parse_time(self.status.completion_time)
        if done is not None:
            return done
        for cond in self.status.conditions:
            if cond.status == "True" and cond.type in ("Complete", "Failed"):
                return parse_time(cond.last_transition_time)
        return None


class Terminated(View):
    message: str | None = None
    exit_code: int | None = None


class ContainerState(View):
    terminated: Terminated | None = None


class ContainerStatus(View):
    name: str = ""
    state: ContainerState = ContainerState()


class PodStatus(View):
    container_statuses: tuple[ContainerStatus, ...] = ()


class Pod(View):
    metadata: ObjectMeta = ObjectMeta()
    status: PodStatus = PodStatus()

    def termination_message(self, container: str) -> str | None:
        """The termination message of ``container``, or None."""
        for cs in self.status.container_statuses:
            if cs.name == container and cs.state.terminated is not None:
                return cs.state.terminated.message or None
        return None


class TemplateSpec(View):
    template: PodTemplate = PodTemplate()


class Templated(View):
    """A Deployment or Job manifest, by its pod template."""

    kind: str = ""
    spec: TemplateSpec = TemplateSpec()


class CronJobSpec(View):
    job_template: Templated = Templated()


class CronJob(View):
    spec: CronJobSpec = CronJobSpec()


def pod_spec(obj: Document) -> PodSpec:
    """Return the pod spec of a Deployment, Job or CronJob (the CronJob's Job template's).

    >>> pod_spec({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {
    ...     "spec": {"containers": [{"name": "check"}]}}}}}}).containers[0].name
    'check'
    >>> pod_spec({"kind": "Deployment"}).containers
    ()
    """
    if Templated.model_validate(obj).kind == "CronJob":
        return CronJob.model_validate(obj).spec.job_template.spec.template.spec
    return Templated.model_validate(obj).spec.template.spec


class Workload(View):
    """An object by its metadata alone (a ConfigMap, a CronJob, a ModelMonitor)."""

    metadata: ObjectMeta = ObjectMeta()


def meta(obj: Document) -> ObjectMeta:
    """Return the metadata of any object."""
    return Workload.model_validate(obj).metadata


def deployment(obj: Document) -> Deployment:
    return Deployment.model_validate(obj)


def job(obj: Document) -> Job:
    return Job.model_validate(obj)


def pod(obj: Document) -> Pod:
    return Pod.model_validate(obj)


def parse_time(text: str | None) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp (as the API and status write it); None when absent or
    invalid.

    >>> parse_time("2026-11-23T12:00:00Z").hour
    12
    >>> parse_time("soon") is None
    True
    """
    if not text:
        return None
    try:
        return contract.parse_timestamp(text, "time")
    except contract.ContractError:
        return None
