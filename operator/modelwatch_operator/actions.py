"""What a decision asks the operator to do once status records it: plain data, no API.

Pure code (the closures given to :func:`kube.update_status`, the resync plan) returns a list
of these; :mod:`modelwatch_operator.acting` performs them after the status write.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PatchDeployment:
    """Roll the serving Deployment ``name`` to ``version`` (its env and pod annotation).

    ``container`` is ``spec.deployment.container`` (None: the first container); ``kind`` is
    the rollout's kind, so the acknowledgement lands on the rollout it belongs to.
    """

    name: str
    container: str | None
    version: int
    sha256: str
    kind: str


@dataclass(frozen=True)
class ClaimDeployment:
    """Label the serving Deployment ``name`` with this monitor (take it over).

    ``resource_version`` is the one the claim was decided on: a claim by another monitor
    meanwhile makes the patch answer 409 instead of overwriting that claim.
    """

    name: str
    resource_version: str | None


@dataclass(frozen=True)
class PostEvent:
    """Post one Event on the ModelMonitor."""

    type: str
    reason: str
    message: str


Action = ClaimDeployment | PatchDeployment | PostEvent
