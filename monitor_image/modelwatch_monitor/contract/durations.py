"""The one duration parser and the one timestamp parser of modelwatch."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from modelwatch_monitor.contract.constants import DURATION_PATTERN
from modelwatch_monitor.contract.errors import ContractError

_DURATION_RE: Final = re.compile(DURATION_PATTERN)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Return the seconds of a duration such as ``"90s"``, ``"15m"``, ``"1h"`` or ``"7d"``.

    >>> parse_duration("1h"), parse_duration("7d")
    (3600.0, 604800.0)
    """
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ContractError(
            f"The duration must be a number followed by s, m, h or d. Got {text!r} instead."
        )
    return float(int(text.strip()[:-1]) * _UNIT_SECONDS[text.strip()[-1]])


def parse_timestamp(text: str, name: str) -> dt.datetime:
    """Return the time of an RFC 3339 string such as ``"2026-11-29T12:00:00Z"``, aware.

    A ``Z`` or an offset is kept; a time without one is UTC. Raise :class:`ContractError`
    naming ``name`` (the option or field) when ``text`` is not a time.

    >>> parse_timestamp("2026-11-29T12:00:00Z", "--since").isoformat()
    '2026-11-29T12:00:00+00:00'
    >>> parse_timestamp("2026-11-29T13:00:00+01:00", "--since").isoformat()
    '2026-11-29T13:00:00+01:00'
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        raise ContractError(
            f"The '{name}' parameter must be an RFC 3339 time such as 2026-11-29T12:00:00Z. "
            f"Got {text!r} instead."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


__all__ = [
    "parse_duration",
    "parse_timestamp",
]
