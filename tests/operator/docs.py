"""Reading status documents in tests, through the operator's typed view."""

from __future__ import annotations

from collections.abc import Mapping

from modelwatch_operator import status as st


def condition_doc(status_doc: Mapping[str, object], ctype: str) -> dict[str, object]:
    """The condition ``ctype`` of a status document as written ({} without one)."""
    found = st.view(status_doc).condition(ctype)
    return found.to_doc() if found is not None else {}
