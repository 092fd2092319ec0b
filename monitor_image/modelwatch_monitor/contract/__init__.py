"""The contracts between the operator and the monitor image, as one package of models.

The only coupling between ``modelwatch_operator`` and ``modelwatch_monitor``; importable
without numpy, pandas or a Kubernetes client (the operator image has no numerical stack).

- :mod:`.spec`: the ``ModelMonitor`` spec, every field, default and bound once;
  :mod:`.config` the job config rendered from it (``parse_job_config``, ``parse_spec``).
- :mod:`.results`: what a Job writes to its termination message, a tagged union on kind
  and ok (``read_result``); :mod:`.status` the status the operator reads back.
- :mod:`.vocabulary`: every enum, reason and promotion word; :mod:`.promotion` the one
  promotion rule; :mod:`.metrics` the one table of metric directions; :mod:`.durations`
  the one duration and timestamp parser; :mod:`.layout` the store layout;
  :mod:`.constants` the names and bounds both sides agree on.

Everything public is re-exported here: ``from modelwatch_monitor import contract``.
"""

from __future__ import annotations

from modelwatch_monitor.contract import (
    base,
    config,
    constants,
    durations,
    errors,
    layout,
    metrics,
    promotion,
    results,
    spec,
    status,
    vocabulary,
)
from modelwatch_monitor.contract.base import *  # noqa: F403
from modelwatch_monitor.contract.config import *  # noqa: F403
from modelwatch_monitor.contract.constants import *  # noqa: F403
from modelwatch_monitor.contract.durations import *  # noqa: F403
from modelwatch_monitor.contract.errors import *  # noqa: F403
from modelwatch_monitor.contract.layout import *  # noqa: F403
from modelwatch_monitor.contract.metrics import *  # noqa: F403
from modelwatch_monitor.contract.promotion import *  # noqa: F403
from modelwatch_monitor.contract.results import *  # noqa: F403
from modelwatch_monitor.contract.spec import *  # noqa: F403
from modelwatch_monitor.contract.status import *  # noqa: F403
from modelwatch_monitor.contract.vocabulary import *  # noqa: F403

__all__ = [
    name
    for module in (
        base,
        config,
        constants,
        durations,
        errors,
        layout,
        metrics,
        promotion,
        results,
        spec,
        status,
        vocabulary,
    )
    for name in module.__all__
]
