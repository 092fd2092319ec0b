"""The contract's one error type and the one wording of a validation problem.

Pydantic finds the problems; :func:`problems` words each as ``"<field>: <why>, got <value>"``
with the field spelled as the document spells it (``spec.data.current.minRows``,
``topFeatures[0].pValue``), so a condition or a failed check names the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from modelwatch_monitor.contract.constants import (
    DNS_SUBDOMAIN_PATTERN,
    DURATION_PATTERN,
    INT64_MAX,
    NAME_PATTERN,
)

#: Patterns a user meets in the spec, said in words.
_PATTERN_WORDS = {
    NAME_PATTERN: "a DNS-1123 label (lowercase letters, digits and '-')",
    DNS_SUBDOMAIN_PATTERN: "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
}


class ContractError(ValueError):
    """A config or result document does not follow the contract."""


def show(value: object) -> str:
    """Return ``repr(value)``, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(loc: Sequence[int | str], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part in ("function-after", "function-before"):
            continue  # a union or validator step pydantic names in the location
        else:
            out += f".{part}" if out else part
    return out or "result"


def _why(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "is required"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {show(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {show(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {show(value)}"
    if kind == "bool_type":
        return f"must be true or false, got {show(value)}"
    if kind in ("string_type",):
        return f"must be a string, got {show(value)}"
    if kind == "string_too_short":
        return f"must be a non-empty string, got {show(value)}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters, got {len(value)}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == DURATION_PATTERN:
            return f"must be a number followed by s, m, h or d (e.g. '7d'), got {show(value)}"
        if ctx.get("pattern") in _PATTERN_WORDS:
            return f"must be {_PATTERN_WORDS[ctx['pattern']]}, got {show(value)}"
        return f"must match {ctx['pattern']}, got {show(value)}"
    if kind == "too_long":
        noun = "items" if isinstance(value, list | tuple) else "entries"
        return f"must hold at most {ctx['max_length']} {noun}, got {ctx['actual_length']}"
    if kind == "less_than_equal" and ctx.get("le") == INT64_MAX:
        return "does not fit in 64 bits"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}
        (key, bound), *_ = ctx.items()
        return f"must be {op[key]} {bound}, got {show(value)}"
    if kind == "literal_error":
        choices = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        return f"must be one of {choices}, got {show(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object, got {show(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {show(value)}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"])
    if kind == "union_tag_invalid":
        return f"must be one of {ctx['expected_tags']}, got {show(ctx.get('tag'))}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {show(value)}"


def problems(exc: ValidationError, *, prefix: str = "") -> list[str]:
    """Return every problem of ``exc`` as ``"<field>: <why>"``, in the document's spelling."""
    out: list[str] = []
    for error in exc.errors(include_url=False):
        if error["type"] == "value_error" and not error["loc"]:
            line = _why(error)  # a rule over several fields names them itself
        else:
            line = f"{_where(error['loc'], prefix)}: {_why(error)}"
        if line not in out:
            out.append(line)
    return out


def contract_error(exc: ValidationError, *, prefix: str = "") -> ContractError:
    """Return one :class:`ContractError` listing every problem of ``exc``."""
    return ContractError("; ".join(problems(exc, prefix=prefix)))


__all__ = [
    "ContractError",
    "contract_error",
    "problems",
]
