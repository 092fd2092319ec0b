"""Job results: what a Job writes to its termination message, as models.

Every result carries ``schema``, ``kind`` (``check`` | ``retrain``), ``ok`` and ``message``.
:data:`Result` is a tagged union on kind and ok (a check with ``ok`` and reason ``NoData``
or ``AwaitingTraffic`` is a :class:`CheckNoVerdict`). The models are the validation: numbers
finite and in range, integers within int64, a 64-hex sha256, reasons from the vocabulary,
strings and lists bounded. Fields a model does not name are kept (a newer image may add
some) but hold to the same bounds. A Job writes at most ``MAX_RESULT_BYTES``; no number in
it is NaN or infinite: :func:`encode_result` turns those into null and lists each path
under ``notFinite`` (the API server refuses NaN in a status patch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
)

from modelwatch_monitor.contract.base import (
    Bool,
    Bounded,
    ContractModel,
    Count,
    Float,
    Fraction,
    Identifier,
    Version,
)
from modelwatch_monitor.contract.constants import (
    INT64_MAX,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_LISTED,
    MAX_MESSAGE_CHARS,
    MAX_RESULT_BYTES,
    MAX_STRING_CHARS,
    REPORT_ID_PATTERN,
    SCHEMA_VERSION,
    SHA256_PATTERN,
    TERMINATION_MESSAGE_PATH,
)
from modelwatch_monitor.contract.errors import ContractError, problems, show
from modelwatch_monitor.contract.vocabulary import (
    RESULT_KINDS,
    BaselineSource,
    CheckFailureReason,
    CheckNoVerdictReason,
    PromotionReason,
    RetrainFailureReason,
)

Message = Annotated[str, Field(strict=True), StringConstraints(max_length=MAX_MESSAGE_CHARS)]
ReportId = Annotated[str, Field(strict=True), StringConstraints(pattern=REPORT_ID_PATTERN)]
Sha256 = Annotated[str, Field(strict=True), StringConstraints(pattern=SHA256_PATTERN)]
Listed = Annotated[tuple[Bounded, ...], Field(max_length=MAX_LISTED)]
RowCounts = Annotated[dict[str, Count | None], Field(max_length=MAX_ITEMS)]


def _bounded(value: object, depth: int = 0) -> object:
    """Hold a field no model names to the bounds of the named ones; return it unchanged."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > INT64_MAX:
            raise ValueError("does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {show(value)}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise ValueError(f"must be at most {MAX_STRING_CHARS} characters, got {len(value)}")
        return value
    if isinstance(value, list | dict):
        if depth >= MAX_DEPTH:
            raise ValueError(f"nests deeper than {MAX_DEPTH} levels")
        if len(value) > MAX_ITEMS:
            raise ValueError(f"must hold at most {MAX_ITEMS} entries, got {len(value)}")
        for item in value.values() if isinstance(value, dict) else value:
            _bounded(item, depth + 1)
        return value
    raise ValueError(f"has unsupported type {type(value).__name__}")


def _bounded_extra(value: object) -> object:
    return _bounded(value, depth=1)  # an extra field is one level below the result


ExtraValue = Annotated[object, AfterValidator(_bounded_extra)]


class ResultModel(ContractModel):
    """Every result: the envelope, and room for fields a newer image adds."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, ExtraValue] = Field(init=False)  # type: ignore[assignment]

    schema_version: Annotated[Literal[1], Field(alias="schema")] = SCHEMA_VERSION
    message: Message = ""
    not_finite: Annotated[list[Bounded], Field(max_length=MAX_ITEMS)] | None = None

    def to_doc(self) -> dict[str, JsonValue]:
        """Return the document as written: camelCase, explicit nulls kept."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True) | {
            "schema": SCHEMA_VERSION,
            "kind": getattr(self, "kind"),  # noqa: B009 - every concrete result has one
            "ok": getattr(self, "ok"),  # noqa: B009
        }


# --- check --------------------------------------------------------------------------------


class FeatureSummary(ContractModel):
    """One of ``topFeatures``: a drifted feature, most drifted first."""

    name: Bounded
    test: Identifier
    statistic: Float | None = None
    p_value: Fraction | None = None


class MetricSummary(ContractModel):
    """``metric``: the realized metric; ``degraded`` None (no verdict) says why in
    ``undefined_reason`` (``NoBaseline``, too few labels)."""

    name: Identifier
    value: Float | None = None
    baseline: Float | None = None
    relative_change: Float | None = None
    baseline_source: BaselineSource | None = None
    degraded: Bool | None = None
    undefined_reason: Bounded | None = None


class EstimateSummary(MetricSummary):
    """``estimatedMetric``: the metric estimated without labels, with its band; the fields
    of :class:`MetricSummary` mean the same here."""

    estimated: Bool = True
    lower: Float | None = None
    upper: Float | None = None
    level: Float | None = None
    overridden: Bool | None = None
    rows: Count | None = None


class CheckOk(ResultModel):
    """A check that gave a verdict: drift, quality, the metric and its estimate."""

    kind: Literal["check"] = "check"
    ok: Literal[True] = True
    report_id: ReportId
    report_uri: Bounded | None = None
    serving_version: Version | None = None
    dataset_drift: Bool
    drift_share: Fraction
    n_drifted: Count
    n_features: Count
    top_features: Annotated[tuple[FeatureSummary, ...], Field(max_length=MAX_LISTED)] = ()
    quality_findings: Count = 0
    quality: Listed = ()
    metric: MetricSummary | None = None
    estimated_metric: EstimateSummary | None = None
    rows: RowCounts | None = None


class CheckNoVerdict(ResultModel):
    """A check with no verdict and no report: an empty window (``NoData``) or too little of
    the serving version's traffic (``AwaitingTraffic``). Not a failure: the Job succeeds."""

    kind: Literal["check"] = "check"
    ok: Literal[True] = True
    reason: CheckNoVerdictReason
    serving_version: Version | None = None
    rows: RowCounts | None = None


class CheckFailed(ResultModel):
    """A check that could not do its job."""

    kind: Literal["check"] = "check"
    ok: Literal[False] = False
    reason: CheckFailureReason


# --- retrain ------------------------------------------------------------------------------


class ChallengerScore(ContractModel):
    score: Float | None = None


class ChampionScore(ContractModel):
    version: Version
    score: Float | None = None


class RetrainOk(ResultModel):
    """Version N written; ``promote``/``reason``/``message`` are ``decide_promotion``'s."""

    kind: Literal["retrain"] = "retrain"
    ok: Literal[True] = True
    version: Version
    sha256: Sha256
    metric: Identifier
    greater_is_better: Bool | None = None
    challenger: ChallengerScore
    champion: ChampionScore | None = None
    promote: Bool
    reason: PromotionReason
    improvement: Float | None = None
    min_improvement: Float | None = None
    report_id: (
        Annotated[str, Field(strict=True), StringConstraints(pattern=f"^$|{REPORT_ID_PATTERN}")]
        | None
    ) = None
    best_estimator: Identifier | None = None
    rows: RowCounts | None = None
    uri: Bounded | None = None
    seconds: Annotated[Float, Field(ge=0.0)] | None = None
    libraries: Annotated[dict[str, Bounded], Field(max_length=MAX_ITEMS)] | None = None


class RetrainFailed(ResultModel):
    """A retrain that wrote no version."""

    kind: Literal["retrain"] = "retrain"
    ok: Literal[False] = False
    version: Version | None = None
    reason: RetrainFailureReason
    report_id: (
        Annotated[str, Field(strict=True), StringConstraints(pattern=f"^$|{REPORT_ID_PATTERN}")]
        | None
    ) = None
    seconds: Annotated[Float, Field(ge=0.0)] | None = None


CheckResult = CheckOk | CheckNoVerdict | CheckFailed
RetrainResult = RetrainOk | RetrainFailed


def _tag(doc: object) -> str | None:
    if isinstance(doc, ResultModel):
        doc = doc.to_doc()
    if not isinstance(doc, Mapping):
        return None
    kind, ok = doc.get("kind"), doc.get("ok")
    if kind not in RESULT_KINDS or not isinstance(ok, bool):
        return None
    if kind == "check" and ok and "reason" in doc:
        return "check-no-verdict"
    return f"{kind}-{'ok' if ok else 'failed'}"


Result = Annotated[
    Annotated[CheckOk, Tag("check-ok")]
    | Annotated[CheckNoVerdict, Tag("check-no-verdict")]
    | Annotated[CheckFailed, Tag("check-failed")]
    | Annotated[RetrainOk, Tag("retrain-ok")]
    | Annotated[RetrainFailed, Tag("retrain-failed")],
    Discriminator(_tag),
]
_RESULT: TypeAdapter[Result] = TypeAdapter(Result)


def _envelope_problems(doc: Mapping[str, object]) -> list[str]:
    out = []
    if doc.get("schema") != SCHEMA_VERSION:
        out.append(f"schema: must be {SCHEMA_VERSION}, got {show(doc.get('schema'))}")
    kind, ok = doc.get("kind"), doc.get("ok")
    if kind not in RESULT_KINDS:
        out.append(f"kind: must be one of {', '.join(RESULT_KINDS)}, got {show(kind)}")
    elif not isinstance(ok, bool):
        out.append(f"ok: must be true or false, got {show(ok)}")
    return out


def _validate(doc: object) -> tuple[Result | None, list[str]]:
    """Validate ``doc`` once: the typed result, or None and every problem."""
    if not isinstance(doc, Mapping):
        return None, [f"result: must be an object, got {show(doc)}"]
    envelope = _envelope_problems(doc)
    if _tag(doc) is None:
        return None, envelope
    try:
        result = _RESULT.validate_python({**doc, "schema": SCHEMA_VERSION})
    except ValidationError as exc:
        return None, sorted({*envelope, *(_untag(p) for p in problems(exc))})
    return (None, envelope) if envelope else (result, [])


def validate_result(doc: object) -> list[str]:
    """Return the problems of a parsed result, each ``"<field>: <why>"``; empty when valid.

    >>> validate_result({"schema": 1, "kind": "retrain", "ok": False, "reason": "DataError"})
    []
    >>> validate_result({"schema": 1, "kind": "check", "ok": True, "reportId": "r1",
    ...     "datasetDrift": False, "driftShare": float("nan"), "nDrifted": 0, "nFeatures": 2})
    ['driftShare: must be a finite number, got nan']
    """
    return _validate(doc)[1]


def _untag(problem: str) -> str:
    """Drop the union member pydantic names first in a location (``check-ok.x`` -> ``x``)."""
    head, _, why = problem.partition(": ")
    first, _, rest = head.partition(".")
    if first.startswith(("check-", "retrain-")):
        head = rest or "result"
    return f"{head}: {why}"


def read_result(doc: object) -> Result:
    """Return the typed result of a parsed document; raise :class:`ContractError` listing
    every problem (the operator records them under reason ``InvalidResult``)."""
    result, found = _validate(doc)
    if result is None:
        raise ContractError("; ".join(found))
    return result


def _without_non_finite(value: object, path: str, found: list[str]) -> object:
    """Return ``value`` with every NaN or infinite float replaced by None; note each path."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(f"{path}={value!r}")
        return None
    if isinstance(value, dict):
        return {
            k: _without_non_finite(v, f"{path}.{k}" if path else str(k), found)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_without_non_finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _without_non_finite(value.item(), path, found)
    return value


def sanitize_result(result: Mapping[str, object] | ResultModel) -> dict[str, object]:
    """Return ``result`` as a document with no NaN or infinity in it, each replaced by null.

    The paths replaced are listed under ``notFinite``; an undefined metric value gets
    an ``undefinedReason`` when it had none.

    >>> sanitize_result({"kind": "check", "driftShare": float("nan")})
    {'kind': 'check', 'driftShare': None, 'notFinite': ['driftShare=nan']}
    """
    raw: Mapping[str, object] = result.to_doc() if isinstance(result, ResultModel) else result
    found: list[str] = []
    doc = {k: _without_non_finite(v, str(k), found) for k, v in raw.items()}
    if found:
        listed = doc.get("notFinite")
        doc["notFinite"] = [*(listed if isinstance(listed, list) else []), *found]
        metric = doc.get("metric")
        if (
            isinstance(metric, dict)
            and metric.get("value") is None
            and any(p.startswith("metric.value=") for p in found)
        ):
            metric["undefinedReason"] = metric.get("undefinedReason") or "the value is not finite"
    return doc


def encode_result(result: Mapping[str, object] | ResultModel) -> str:
    """Serialise a result, trimming list fields until it fits in ``MAX_RESULT_BYTES``.

    This is where every result is written: non-finite numbers become null here.
    """
    doc = sanitize_result(result)
    doc["schema"] = SCHEMA_VERSION
    if doc.get("kind") not in RESULT_KINDS:
        raise ContractError(f"result kind must be one of {RESULT_KINDS}; got {doc.get('kind')!r}")

    def dump() -> str:
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str, allow_nan=False)

    text = dump()
    trimmable = ("quality", "topFeatures", "notFinite")
    while len(text.encode()) > MAX_RESULT_BYTES:
        lists = [(k, v) for k in trimmable if isinstance(v := doc.get(k), list) and v]
        if lists:
            key, items = lists[0]
            doc[key] = items[:-1]
        elif len(str(doc.get("message", ""))) > 64:
            doc["message"] = str(doc["message"])[: len(str(doc["message"])) // 2] + "..."
        else:
            raise ContractError("result does not fit in the termination message")
        text = dump()
    return text


def write_result(
    result: Mapping[str, object] | ResultModel, path: str = TERMINATION_MESSAGE_PATH
) -> str:
    """Write the encoded result to the termination-message path and return it."""
    text = encode_result(result)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        # Outside a pod the path may not exist; stdout still carries the result.
        pass
    return text


def _finite_float(text: str) -> float | None:
    """Parse a JSON number; None when it overflows (``1e999``)."""
    value = float(text)
    return value if math.isfinite(value) else None


def parse_result(text: str | None) -> dict[str, JsonValue]:
    """Parse a termination message; raise :class:`ContractError` when it is not a result."""
    if not text:
        raise ContractError("the job left no termination message")
    try:
        # NaN and Infinity are not JSON; a result that holds them anyway reads them as null
        # (the API server refuses them in a status patch).
        doc = json.loads(text, parse_constant=lambda _: None, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        # FallbackToLogsOnError: the message is the tail of the log.
        raise ContractError(f"the job did not write a result: {text.strip()[-300:]}") from exc
    if not isinstance(doc, dict) or doc.get("kind") not in RESULT_KINDS:
        raise ContractError("the termination message is not a modelwatch result")
    if doc.get("schema") != SCHEMA_VERSION:
        raise ContractError(f"result schema {doc.get('schema')!r} is not supported")
    return doc


__all__ = [
    "ChallengerScore",
    "ChampionScore",
    "CheckFailed",
    "CheckNoVerdict",
    "CheckOk",
    "CheckResult",
    "EstimateSummary",
    "ExtraValue",
    "FeatureSummary",
    "Listed",
    "Message",
    "MetricSummary",
    "ReportId",
    "Result",
    "ResultModel",
    "RetrainFailed",
    "RetrainOk",
    "RetrainResult",
    "RowCounts",
    "Sha256",
    "encode_result",
    "parse_result",
    "read_result",
    "sanitize_result",
    "validate_result",
    "write_result",
]
