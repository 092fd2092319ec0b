"""What a decision asks the operator to do once status records it: plain data, no API.

The one vocabulary of actions. Pure code (the closures given to :func:`kube.update_status`,
the resync plan) returns a list of these; :mod:`modelwatch_operator.acting` performs them
after the status write: Deployment claims and patches, then Events, then metrics. So an
Event or a counted promotion says what happened only once status recorded it, and a
decision that ran twice (a write conflict) counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from modelwatch_monitor import contract
from modelwatch_operator import objects
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document


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
    kind: contract.RolloutKind


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


#: The operator's counters (:mod:`modelwatch_operator.metrics`) an action may move.
Counter = Literal["checks", "retrains", "promotions", "rollbacks"]


@dataclass(frozen=True)
class Count:
    """Add one to counter ``counter`` of this monitor, with ``label`` (its outcome or event)
    where the counter has one."""

    counter: Counter
    label: str | None = None


@dataclass(frozen=True)
class ShowCheck:
    """Set the gauges of the last check's verdict (drift share, metric, its estimate)."""

    result: contract.CheckOk


@dataclass(frozen=True)
class ShowServingVersion:
    """Set the serving-version gauge."""

    version: int


Action = ClaimDeployment | PatchDeployment | PostEvent | Count | ShowCheck | ShowServingVersion


class Serving(NamedTuple):
    """The serving Deployment as read (None: unnamed or missing), and the ModelMonitor its
    ``modelwatch.io/monitor`` label names when that is another monitor (None: no other
    claim, or that monitor is gone)."""

    deployment: Document | None
    claimant: Monitor | None = None

    def view(self) -> objects.Deployment | None:
        """The typed view of the Deployment, or None."""
        return objects.deployment(self.deployment) if self.deployment is not None else None


# --- the resync's steps: each gathers again and runs its own gather -> decide -> act ------


@dataclass(frozen=True)
class ReadJob:
    """Fold the result of a finished Job that was not read."""

    job: Document


@dataclass(frozen=True)
class CreateRetrainJob:
    """Create the Job of the retrain recorded in status."""

    job: str
    version: int


@dataclass(frozen=True)
class FollowRollout:
    """Evaluate the rollout in flight against the Deployment as it is now."""

    deployment: Document


@dataclass(frozen=True)
class ReapplyRollout:
    """Patch the Deployment to the rollout's target again."""

    version: int
    kind: contract.RolloutKind
    reason: str
    message: str


@dataclass(frozen=True)
class FailRollout:
    """Give the rollout in flight up (roll back when possible)."""

    version: int
    kind: contract.RolloutKind
    reason: str
    message: str
    serving: Serving


Step = ReadJob | CreateRetrainJob | FollowRollout | ReapplyRollout | FailRollout
