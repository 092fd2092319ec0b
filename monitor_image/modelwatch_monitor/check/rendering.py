"""The Jinja environment of the HTML report: templates from the package, autoescaped.

The templates live in ``modelwatch_monitor/templates/`` (package data): ``report.html``
the page, ``history.html`` its history section, ``svg.html`` the plots. Every value put
into a page is escaped; only the output of a template (:class:`markupsafe.Markup`) is
inserted as it is.
"""

from __future__ import annotations

import functools

import jinja2
from markupsafe import Markup


def fmt(value: object) -> str:
    """A value as the report shows it: ``-`` for None, yes/no, floats to 4 digits.

    >>> [fmt(None), fmt(True), fmt(0.123456), fmt(3), fmt("ks")]
    ['-', 'yes', '0.1235', '3', 'ks']
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def coordinate(value: float) -> str:
    """An SVG coordinate or length, to a tenth of a pixel."""
    return f"{value:.1f}"


def percent(value: float) -> str:
    """A share as a whole percentage: ``0.95`` is ``95%``."""
    return f"{value:.0%}"


@functools.cache
def environment() -> jinja2.Environment:
    """The report's environment (made once): package templates, autoescape on, strict
    about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelwatch_monitor", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, coordinate=coordinate, percent=percent)
    return env


def render(template: str, **context: object) -> str:
    """Render the template named ``template`` with ``context``."""
    return environment().get_template(template).render(**context)


def call_macro(template: str, name: str, *args: object) -> Markup:
    """Call the macro ``name`` of the template ``template`` (its output is escaped HTML)."""
    macro = getattr(environment().get_template(template).module, name)
    return Markup(macro(*args))
