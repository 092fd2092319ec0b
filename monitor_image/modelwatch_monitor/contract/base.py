"""The base of every contract model and the scalar types the models are built from.

Scalars are strict (``true`` is not an integer, ``"0.5"`` is not a number) and floats are
finite; containers are lax (a JSON list reads as a tuple). A key whose value is ``null``
counts as absent, so it takes the field's default, as the API server's defaulting does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from modelwatch_monitor.contract.constants import (
    DURATION_PATTERN,
    IDENTIFIER_PATTERN,
    INT64_MAX,
    MAX_STRING_CHARS,
)

Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict(), Field(le=INT64_MAX)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
Version = Annotated[int, Strict(), Field(ge=1, le=INT64_MAX)]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Fraction = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.0, le=1.0)]
Str = Annotated[str, Strict()]
#: A spec string: never empty.
Text = Annotated[str, Strict(), StringConstraints(min_length=1)]
#: A result string: bounded.
Bounded = Annotated[str, Strict(), StringConstraints(max_length=MAX_STRING_CHARS)]
Identifier = Annotated[str, Strict(), StringConstraints(pattern=IDENTIFIER_PATTERN)]
Duration = Annotated[str, Strict(), StringConstraints(pattern=DURATION_PATTERN)]


class ContractModel(BaseModel):
    """Frozen, camelCase on the wire (``min_effect_size`` is ``minEffectSize``)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: object) -> object:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data

    def to_doc(self) -> dict[str, Any]:
        """Return the JSON document (camelCase keys, no nulls)."""
        # Left loose (not JsonValue): the operator reads these fields without narrowing.
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


__all__ = [
    "ContractModel",
]
