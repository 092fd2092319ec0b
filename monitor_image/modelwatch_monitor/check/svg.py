"""The shapes of the report's inline SVG plots, as data.

The plots of the report (:mod:`modelwatch_monitor.check.report`) and of its history
(:mod:`modelwatch_monitor.check.history`) are pure functions that return a
:class:`Figure`; the ``figure`` macro of ``templates/svg.html`` draws it, escaping every
text. Coordinates are in pixels from the top left corner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

Point = tuple[float, float]


@dataclass(frozen=True)
class Rect:
    """A filled rectangle, with an optional tooltip."""

    kind: ClassVar[str] = "rect"
    x: float
    y: float
    width: float
    height: float
    fill: str
    opacity: float | None = None
    tip: str | None = None


@dataclass(frozen=True)
class Line:
    """A straight line, dashed with ``dash`` (an SVG dash array), with an optional tooltip."""

    kind: ClassVar[str] = "line"
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    dash: str | None = None
    tip: str | None = None


@dataclass(frozen=True)
class Text:
    """A label; ``anchor`` is the SVG ``text-anchor`` (start by default)."""

    kind: ClassVar[str] = "text"
    x: float
    y: float
    text: str
    size: int
    anchor: str | None = None
    fill: str | None = None


@dataclass(frozen=True)
class Polyline:
    """An open line through ``points``, not filled."""

    kind: ClassVar[str] = "polyline"
    points: tuple[Point, ...]
    stroke: str


@dataclass(frozen=True)
class Polygon:
    """A filled closed shape through ``points``, with an optional tooltip."""

    kind: ClassVar[str] = "polygon"
    points: tuple[Point, ...]
    fill: str
    opacity: float | None = None
    tip: str | None = None


@dataclass(frozen=True)
class Circle:
    """A filled dot, with an optional tooltip."""

    kind: ClassVar[str] = "circle"
    cx: float
    cy: float
    r: float
    fill: str
    tip: str | None = None


Shape = Rect | Line | Text | Polyline | Polygon | Circle


@dataclass(frozen=True)
class Figure:
    """One inline SVG: its size, its accessible label and its shapes, drawn in order."""

    width: int
    height: int
    label: str
    shapes: Sequence[Shape]
