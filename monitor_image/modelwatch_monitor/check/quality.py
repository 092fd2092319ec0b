"""Data-quality findings: each names its column; none of them stops the check.

Rules (all compare the current window with the reference profile):

- ``missing_column``: a reference column that the current data lacks and that the
  check does not need (a missing *feature* is a DataError: the check cannot run);
- ``new_column``: a current column the reference does not have (role columns such as
  ``prediction``, ``request_id`` and ``timestamp`` excepted);
- ``dtype_change``: the Arrow type differs (e.g. ``int64`` -> ``double``);
- ``null_rate_jump``: the null rate rose by at least ``NULL_RATE_JUMP`` (0.05);
- ``out_of_range``: more than ``OUT_OF_RANGE_SHARE`` (0.1%) of the values lie outside
  the reference ``[min, max]``;
- ``unseen_categories``: categories never seen in the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypedDict

from modelwatch_monitor.check.drift import Counts, Distribution
from modelwatch_monitor.check.profile import ColumnProfile

NULL_RATE_JUMP: Final = 0.05
OUT_OF_RANGE_SHARE: Final = 0.001


#: One value in a finding's ``details``: a number, a type name, or category names.
Detail = float | str | list[str]


class Finding(TypedDict):
    """One data-quality finding."""

    kind: str
    column: str
    message: str
    details: dict[str, Detail]


def _finding(kind: str, column: str, message: str, **details: Detail) -> Finding:
    return {"kind": kind, "column": column, "message": message, "details": details}


def _canonical(arrow_type: str) -> str:
    """Arrow types that hold the same values compare equal (pandas 3 writes large_string).

    >>> _canonical("large_string") == _canonical("string")
    True
    """
    t = arrow_type.replace("large_", "")
    return {"utf8": "string", "binary": "binary"}.get(t, t)


def schema_findings(
    reference_columns: Mapping[str, str],
    current_columns: Mapping[str, str],
    *,
    ignore: Iterable[str] = (),
) -> list[Finding]:
    """Missing, new and retyped columns.

    Parameters
    ----------
    reference_columns, current_columns : mapping of column name to Arrow type string
    ignore : iterable of str
        Columns that are expected on one side only (roles).
    """
    skip = set(ignore)
    out: list[Finding] = []
    for name, dtype in reference_columns.items():
        if name in skip:
            continue
        if name not in current_columns:
            out.append(
                _finding(
                    "missing_column", name, f"column {name!r} is missing from the current data"
                )
            )
        elif _canonical(current_columns[name]) != _canonical(dtype):
            out.append(
                _finding(
                    "dtype_change",
                    name,
                    f"column {name!r} changed type from {dtype} to {current_columns[name]}",
                    reference=dtype,
                    current=current_columns[name],
                )
            )
    for name in current_columns:
        if name not in reference_columns and name not in skip:
            out.append(_finding("new_column", name, f"column {name!r} is new in the current data"))
    return out


def column_findings(reference: ColumnProfile, current: ColumnProfile) -> list[Finding]:
    """Null-rate jumps, out-of-range values and unseen categories of one column."""
    name = reference.name
    out: list[Finding] = []
    jump = current.null_rate - reference.null_rate
    if jump >= NULL_RATE_JUMP:
        out.append(
            _finding(
                "null_rate_jump",
                name,
                f"column {name!r} null rate rose from {reference.null_rate:.1%} "
                f"to {current.null_rate:.1%}",
                reference=reference.null_rate,
                current=current.null_rate,
            )
        )
    r, c = reference.summary, current.summary
    if isinstance(r, Distribution) and isinstance(c, Distribution):
        below = float(c.before([r.min])[0])
        above = float(1.0 - c.at([r.max])[0])
        share = below + above
        if share > OUT_OF_RANGE_SHARE:
            out.append(
                _finding(
                    "out_of_range",
                    name,
                    f"column {name!r} has {share:.2%} of values outside the reference range "
                    f"[{r.min:.6g}, {r.max:.6g}] (current range [{c.min:.6g}, {c.max:.6g}])",
                    share=share,
                    below=below,
                    above=above,
                    referenceMin=r.min,
                    referenceMax=r.max,
                    currentMin=c.min,
                    currentMax=c.max,
                )
            )
    elif isinstance(r, Counts) and isinstance(c, Counts):
        unseen = {k: v for k, v in c.counts.items() if k not in r.counts}
        if unseen:
            total = max(c.n, 1)
            top = sorted(unseen, key=lambda k: -unseen[k])
            out.append(
                _finding(
                    "unseen_categories",
                    name,
                    f"column {name!r} has {len(unseen)} categories never seen in the reference "
                    f"({', '.join(map(repr, top[:5]))}{', ...' if len(top) > 5 else ''}; "
                    f"{sum(unseen.values()) / total:.2%} of values)",
                    categories=top[:20],
                    share=sum(unseen.values()) / total,
                )
            )
    return out
