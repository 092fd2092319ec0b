"""Live evidence: confidence sequences that compare a challenger with the champion.

A shadow or canary evaluation looks at its figures after every check, so a test valid at
one fixed sample size would promote a challenger no better than the champion far more often
than ``alpha`` (every look is one more chance). These modules use confidence sequences
instead, valid over all looks at once:

- :mod:`.betting`: bounded values (accuracy), the predictable plug-in empirical-Bernstein
  sequence of Waudby-Smith and Ramdas (2024), nonasymptotic;
- :mod:`.mixture`: unbounded values (losses), the asymptotic normal-mixture sequence of
  Waudby-Smith, Arnold, Wu, Ramdas and Howard (2024);
- :mod:`.comparing`: per-row metric values and the paired (shadow) and unpaired (canary)
  comparisons built on them;
- :mod:`.deciding`: the one decision, promote, abort or continue, pure and numpy-free;
- :mod:`.intervals`: the interval type.

Only the numpy-free part is re-exported here, so the operator can import the package;
take the sequences from their modules.
"""

from __future__ import annotations

from modelwatch_monitor.evidence.deciding import *  # noqa: F403
from modelwatch_monitor.evidence.deciding import __all__ as _deciding
from modelwatch_monitor.evidence.intervals import *  # noqa: F403
from modelwatch_monitor.evidence.intervals import __all__ as _intervals

__all__ = [*_deciding, *_intervals]
