"""What a finished Job says: whether and when it finished, whether its check was read, and
its result from its pods' termination messages. Pure: the Job and its pods are read by the
caller (:func:`reconcile_jobs.gather_result`, the resync).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator.policies import parse_time


def job_finished(job: Mapping[str, Any]) -> tuple[bool, bool, str]:
    """Return (finished, succeeded, message) from a Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return True, True, ""
        if cond.get("type") == "Failed":
            return True, False, f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}"
    return False, False, ""


def job_finished_at(job: Mapping[str, Any]) -> dt.datetime | None:
    """When a finished Job finished: ``completionTime``, else (a failed Job) the time its
    Complete or Failed condition turned True."""
    status = job.get("status") or {}
    done = parse_time(status.get("completionTime"))
    if done is not None:
        return done
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return parse_time(cond.get("lastTransitionTime"))
    return None


def check_already_read(status: Mapping[str, Any], job: str, finished: dt.datetime | None) -> bool:
    """True when check Job ``job`` was read, or finished before the last check read (an
    operator restart lists the finished Jobs the CronJob keeps: read once, in order)."""
    if status.get("lastCheckJob") == job:
        return True
    watermark = parse_time(status.get("lastCheckFinishedAt"))
    return finished is not None and watermark is not None and finished < watermark


def completion_index(pod: Mapping[str, Any]) -> str | None:
    """The completion index of a pod of an Indexed Job (its annotation, else its label)."""
    meta = pod.get("metadata") or {}
    for where in ("annotations", "labels"):
        value = (meta.get(where) or {}).get(c.ANNOTATION_COMPLETION_INDEX)
        if value is not None:
            return str(value)
    return None


def result_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods whose termination message is the Job's result: every pod of a Job, or
    the pods of index 0 of an Indexed Job (a sharded check: index 0 merges and decides;
    the other shards leave their share in the store, not a result)."""
    if all(completion_index(p) is None for p in pods):
        return pods
    return [p for p in pods if completion_index(p) == contract.SHARD_RESULT_INDEX]


@dataclass(frozen=True)
class Unread:
    """A finished Job whose result could not be read: no termination message (the pod
    was killed, ``JobFailed``/``NoResult``) or one that breaks the contract
    (``InvalidResult``, every problem named). Recorded as a failed Job of ``kind``."""

    kind: str
    reason: str
    message: str
    ok: bool = False


#: What a finished Job gave: its typed result, or why there is none.
JobResult = contract.Result | Unread


def read_result(
    pods: list[dict[str, Any]],
    *,
    kind: str,
    container: str,
    succeeded: bool,
    job_message: str,
) -> JobResult:
    """Return the typed result of a finished Job from its pods' termination messages
    (of index 0 in an Indexed Job; the newest pod's when the index was retried)."""
    messages: list[str] = []
    pods = result_pods(pods)
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp"))):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != container:
                continue
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                messages.append(str(terminated["message"]))
    text = messages[-1] if messages else None
    try:
        doc = contract.parse_result(text)
    except contract.ContractError as exc:
        reason = "JobFailed" if not succeeded else "NoResult"
        detail = str(exc) if text or not job_message else job_message
        return Unread(kind, reason, detail)
    try:
        result = contract.read_result(doc)
    except contract.ContractError as exc:
        return Unread(kind, contract.REASON_INVALID_RESULT, str(exc))
    if result.kind != kind:
        return Unread(kind, contract.REASON_INVALID_RESULT, f"kind: must be {kind}")
    if not succeeded and result.ok:
        return Unread(kind, "JobFailed", job_message)
    return result
