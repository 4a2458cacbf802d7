"""EPCIS 2.0 event models (JSON-LD binding) with CBV 2.0 and GS1 identifier validation.

``parse_event`` turns untrusted JSON into a validated event or raises
``EventValidationError`` naming the offending field (``epcList[0]``, ``bizStep``...); the
event's ``to_jsonld()`` is the canonical JSON we store, hash and publish. Events are
append-only: a correction is a new event carrying an ``errorDeclaration``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from traceability.errors import EventValidationError, IdentifierError
from traceability.hashing import EPCIS_CONTEXT_URL, namespaces_from_context
from traceability.identifiers import validate_identifier
from traceability.vocab import (
    BIZ_STEP,
    BIZ_TRANSACTION_TYPE,
    DISPOSITION,
    ERROR_REASON,
    SOURCE_DEST_TYPE,
    Vocabulary,
)

TUANBOX_NS = "https://tuanbox.dev/voc/"
"""Namespace of our own extension fields (prefix ``tb:``)."""

DEFAULT_CONTEXT: list[Any] = [
    EPCIS_CONTEXT_URL,
    {"tb": TUANBOX_NS},
]

Action = Literal["ADD", "OBSERVE", "DELETE"]
TimeZoneOffset = Annotated[str, Field(pattern=r"^[+-]((0\d|1[0-3]):[0-5]\d|14:00)$")]


def _identifier(value: str) -> str:
    try:
        return validate_identifier(value, "value")
    except IdentifierError as exc:
        raise ValueError(exc.detail) from exc


def _vocab(vocabulary: Vocabulary, value: str) -> str:
    problem = vocabulary.check(value)
    if problem:
        raise ValueError(problem)
    return value


def _fail(field: str, message: str) -> typing.NoReturn:
    """Raise from a whole-model check so that ``parse_event`` still names the field."""
    raise ValueError(f"[{field}] {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Extensible(BaseModel):
    """A part of an event that may carry user extensions (namespaced keys such as ``tb:x``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class QuantityElement(_Strict):
    epcClass: str
    quantity: float | None = Field(default=None, ge=0)
    uom: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,3}$")

    _epc_class = field_validator("epcClass")(classmethod(lambda cls, v: _identifier(v)))

    @model_validator(mode="after")
    def _uom_needs_quantity(self) -> QuantityElement:
        if self.uom is not None and self.quantity is None:
            _fail("uom", "uom given without quantity")
        return self


class Location(_Extensible):
    id: str

    _id = field_validator("id")(classmethod(lambda cls, v: _identifier(v)))


class BizTransaction(_Strict):
    type: str | None = None
    bizTransaction: str

    _type = field_validator("type")(
        classmethod(lambda cls, v: v if v is None else _vocab(BIZ_TRANSACTION_TYPE, v))
    )


class Source(_Strict):
    type: str
    source: str

    _type = field_validator("type")(classmethod(lambda cls, v: _vocab(SOURCE_DEST_TYPE, v)))
    _source = field_validator("source")(classmethod(lambda cls, v: _identifier(v)))


class Destination(_Strict):
    type: str
    destination: str

    _type = field_validator("type")(classmethod(lambda cls, v: _vocab(SOURCE_DEST_TYPE, v)))
    _dest = field_validator("destination")(classmethod(lambda cls, v: _identifier(v)))


class PersistentDisposition(_Strict):
    set: list[str] | None = None
    unset: list[str] | None = None

    @field_validator("set", "unset")
    @classmethod
    def _known(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            _vocab(DISPOSITION, value)
        return values


class SensorMetadata(_Extensible):
    time: AwareDatetime | None = None
    startTime: AwareDatetime | None = None
    endTime: AwareDatetime | None = None
    deviceID: str | None = None
    deviceMetadata: str | None = None
    rawData: str | None = None
    dataProcessingMethod: str | None = None
    bizRules: str | None = None


class SensorReport(_Extensible):
    type: str | None = None
    exception: Literal["ALARM_CONDITION", "ERROR_CONDITION"] | None = None
    deviceID: str | None = None
    deviceMetadata: str | None = None
    rawData: str | None = None
    dataProcessingMethod: str | None = None
    time: AwareDatetime | None = None
    microorganism: str | None = None
    chemicalSubstance: str | None = None
    value: float | None = None
    component: str | None = None
    stringValue: str | None = None
    booleanValue: bool | None = None
    hexBinaryValue: str | None = None
    uriValue: str | None = None
    minValue: float | None = None
    maxValue: float | None = None
    meanValue: float | None = None
    sDev: float | None = None
    percRank: float | None = None
    percValue: float | None = None
    uom: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,3}$")
    coordinateReferenceSystem: str | None = None

    @model_validator(mode="after")
    def _range(self) -> SensorReport:
        low, high = self.minValue, self.maxValue
        if low is not None and high is not None and low > high:
            _fail("minValue", "minValue is above maxValue")
        return self


class SensorElement(_Extensible):
    sensorMetadata: SensorMetadata | None = None
    sensorReport: list[SensorReport] = Field(min_length=1)


class ErrorDeclaration(_Extensible):
    declarationTime: AwareDatetime
    reason: str | None = None
    correctiveEventIDs: list[str] | None = None

    _reason = field_validator("reason")(
        classmethod(lambda cls, v: v if v is None else _vocab(ERROR_REASON, v))
    )


class EPCISEvent(_Extensible):
    """Fields every EPCIS 2.0 event type shares."""

    context: list[Any] | str | dict[str, Any] | None = Field(default=None, alias="@context")
    type: str
    eventTime: AwareDatetime
    eventTimeZoneOffset: TimeZoneOffset
    eventID: str | None = None
    recordTime: AwareDatetime | None = None
    errorDeclaration: ErrorDeclaration | None = None
    bizStep: str | None = None
    disposition: str | None = None
    persistentDisposition: PersistentDisposition | None = None
    readPoint: Location | None = None
    bizLocation: Location | None = None
    bizTransactionList: list[BizTransaction] | None = None
    sourceList: list[Source] | None = None
    destinationList: list[Destination] | None = None
    sensorElementList: list[SensorElement] | None = None

    _biz_step = field_validator("bizStep")(
        classmethod(lambda cls, v: v if v is None else _vocab(BIZ_STEP, v))
    )
    _disposition = field_validator("disposition")(
        classmethod(lambda cls, v: v if v is None else _vocab(DISPOSITION, v))
    )

    def to_jsonld(self) -> dict[str, Any]:
        """The canonical JSON-LD object for this event (what we store, hash and publish)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.setdefault("@context", DEFAULT_CONTEXT)
        return data


def _epc_list(values: list[str] | None) -> list[str] | None:
    for i, value in enumerate(values or []):
        try:
            validate_identifier(value, "value")
        except IdentifierError as exc:
            _fail(f"[{i}]", exc.detail)
    return values


class ObjectEvent(EPCISEvent):
    type: Literal["ObjectEvent"]
    action: Action
    epcList: list[str] | None = None
    quantityList: list[QuantityElement] | None = None
    ilmd: dict[str, Any] | None = None

    _epcs = field_validator("epcList")(classmethod(lambda cls, v: _epc_list(v)))

    @model_validator(mode="after")
    def _what(self) -> ObjectEvent:
        if not self.epcList and not self.quantityList:
            _fail("epcList", "epcList or quantityList must name at least one object")
        if self.ilmd and self.action != "ADD":
            _fail("ilmd", "ilmd is only allowed when action is ADD")
        return self


class AggregationEvent(EPCISEvent):
    type: Literal["AggregationEvent"]
    action: Action
    parentID: str | None = None
    childEPCs: list[str] | None = None
    childQuantityList: list[QuantityElement] | None = None

    _parent = field_validator("parentID")(
        classmethod(lambda cls, v: v if v is None else _identifier(v))
    )
    _children = field_validator("childEPCs")(classmethod(lambda cls, v: _epc_list(v)))

    @model_validator(mode="after")
    def _parent_required(self) -> AggregationEvent:
        if self.action in ("ADD", "DELETE") and not self.parentID:
            _fail("parentID", "parentID is required when action is ADD or DELETE")
        return self


class TransactionEvent(EPCISEvent):
    type: Literal["TransactionEvent"]
    action: Action
    bizTransactionList: list[BizTransaction] = Field(min_length=1)
    parentID: str | None = None
    epcList: list[str] | None = None
    quantityList: list[QuantityElement] | None = None

    _epcs = field_validator("epcList")(classmethod(lambda cls, v: _epc_list(v)))


class TransformationEvent(EPCISEvent):
    type: Literal["TransformationEvent"]
    inputEPCList: list[str] | None = None
    inputQuantityList: list[QuantityElement] | None = None
    outputEPCList: list[str] | None = None
    outputQuantityList: list[QuantityElement] | None = None
    transformationID: str | None = None
    ilmd: dict[str, Any] | None = None

    _inputs = field_validator("inputEPCList", "outputEPCList")(
        classmethod(lambda cls, v: _epc_list(v))
    )

    @model_validator(mode="after")
    def _has_io(self) -> TransformationEvent:
        if not (self.inputEPCList or self.inputQuantityList or self.transformationID):
            _fail("inputEPCList", "a transformation needs inputs or a transformationID")
        if not (self.outputEPCList or self.outputQuantityList or self.transformationID):
            _fail("outputEPCList", "a transformation needs outputs or a transformationID")
        return self


AnyEvent = Union[ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent]  # noqa: UP007

EVENT_TYPES: dict[str, type[EPCISEvent]] = {
    cls.__name__: cls
    for cls in (ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent)
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model nested in an annotation such as ``list[Location] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None


def _check_keys(
    model: type[BaseModel], data: Any, path: str, namespaces: Mapping[str, str]
) -> None:
    """Refuse unknown plain keys (typos) and undeclared CURIE prefixes, naming the field."""
    if not isinstance(data, Mapping):
        return
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key in fields:
            nested = _model_in(fields[key].annotation)
            if nested is None:
                if key == "ilmd":
                    _check_extension_keys(value, where, namespaces)
                continue
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                sub = f"{where}[{i}]" if isinstance(value, list) else where
                _check_keys(nested, item, sub, namespaces)
        elif model.model_config.get("extra") == "allow":
            _check_extension_keys({key: value}, path, namespaces)
        # strict models report their unknown keys through pydantic ("extra_forbidden")


def _check_extension_keys(data: Any, path: str, namespaces: Mapping[str, str]) -> None:
    if not isinstance(data, Mapping):
        return
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key.startswith("@") or key == "#text" or key.startswith(("http://", "https://")):
            pass
        elif ":" not in key:
            raise EventValidationError(
                where, "unknown field; user extensions need a namespace prefix such as 'tb:'"
            )
        elif key.split(":", 1)[0] not in namespaces:
            raise EventValidationError(
                where, f"namespace prefix {key.split(':', 1)[0]!r} is not declared in @context"
            )
        for item in value if isinstance(value, list) else [value]:
            _check_extension_keys(item, where, namespaces)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "event"


def parse_event(data: Any) -> EPCISEvent:
    """Validate untrusted JSON as one EPCIS 2.0 event; errors name the field."""
    if not isinstance(data, Mapping):
        raise EventValidationError("event", "must be a JSON object")
    event_type = data.get("type")
    model = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise EventValidationError(
            "type", f"must be one of {', '.join(sorted(EVENT_TYPES))}, got {event_type!r}"
        )
    namespaces = namespaces_from_context(data.get("@context", DEFAULT_CONTEXT))
    _check_keys(model, data, "", namespaces)
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        field = _path(loc)
        if message.startswith("[") and "] " in message:
            inner, message = message[1:].split("] ", 1)
            joiner = "" if inner.startswith("[") else "."
            field = f"{field}{joiner}{inner}" if loc else inner
        raise EventValidationError(field, message) from exc
