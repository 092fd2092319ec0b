"""The reasons a retrain Job reports, each defined once, and the error that carries one.

A reason is a CamelCase word the operator copies verbatim into a condition. A failed
retrain (``ok: false``) reports one of :data:`FAILURE_REASONS`; a successful one reports
the promotion reason of :func:`modelwatch_monitor.contract.decide_promotion`.
"""

from __future__ import annotations

from typing import Final

from modelwatch_monitor import contract

# Failures (ok: false): nothing is written under versions/N. The words are the contract's.
CONFIG_ERROR: Final = contract.REASON_CONFIG_ERROR
DATA_ERROR: Final = contract.REASON_DATA_ERROR
NOT_ENOUGH_LABELS: Final = contract.REASON_NOT_ENOUGH_LABELS
STORE_ERROR: Final = contract.REASON_STORE_ERROR
TRAINING_FAILED: Final = contract.REASON_TRAINING_FAILED
VERSION_EXISTS: Final = contract.REASON_VERSION_EXISTS
CHAMPION_HASH_MISMATCH: Final = contract.REASON_CHAMPION_HASH_MISMATCH

FAILURE_REASONS: Final = contract.RETRAIN_FAILURE_REASONS

# Promotion decisions (ok: true), made by contract.decide_promotion; named here for reading.
FIRST_VERSION: Final = contract.PROMOTE_FIRST_VERSION
CHALLENGER_BETTER: Final = contract.PROMOTE_CHALLENGER_BETTER
BELOW_MIN_IMPROVEMENT: Final = contract.PROMOTE_BELOW_MIN_IMPROVEMENT
CHAMPION_UNUSABLE: Final = contract.PROMOTE_CHAMPION_UNUSABLE
SCORE_UNDEFINED: Final = contract.PROMOTE_SCORE_UNDEFINED


class RetrainError(Exception):
    """The retrain cannot do its job.

    Parameters
    ----------
    reason : str
        One of :data:`FAILURE_REASONS`.
    message : str
        What went wrong, naming the file, column or parameter.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
