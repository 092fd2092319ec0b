"""The worked examples in the operator's docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from modelwatch_operator import builders, children, guards, main, metrics, policies, rollout, status


@pytest.mark.parametrize(
    "module",
    [builders, children, guards, main, metrics, policies, rollout, status],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
