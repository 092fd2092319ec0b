"""The one interval type of the evidence package (no numpy: the operator reads it too)."""

from __future__ import annotations

import math
from typing import NamedTuple


class Interval(NamedTuple):
    """A point estimate and the confidence sequence's bounds around it at one look.

    ``lower`` and ``upper`` may be infinite: no evidence yet.
    """

    estimate: float
    lower: float
    upper: float

    @property
    def width(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower

    def __format__(self, spec: str) -> str:
        """``+0.0310 [+0.0120, +0.0500]`` with ``spec`` (default ``+.4f``) for each figure."""
        spec = spec or "+.4f"

        def one(x: float) -> str:
            return format(x, spec) if math.isfinite(x) else ("-inf" if x < 0 else "+inf")

        return f"{one(self.estimate)} [{one(self.lower)}, {one(self.upper)}]"


#: The interval of a quantity nothing is known about yet.
UNKNOWN = Interval(math.nan, -math.inf, math.inf)

__all__ = ["UNKNOWN", "Interval"]
