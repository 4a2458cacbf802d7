"""Hash version 1, frozen: the pre-hash this project anchored before it matched GS1's reference.

Kept byte for byte so that reports and anchors made with it still verify; new events use
``traceability.hashing`` (version 2).

The pre-hash string concatenates, without separators, ``eventType=…`` and then each present
field in the fixed CBV order (``key=value``; list headers such as ``epcList`` followed by their
children). Values are canonicalised first: times to UTC with milliseconds and a ``Z``; numbers
without trailing zeros; EPC URNs and foreign-host Digital Links to ``https://id.gs1.org``;
bare CBV terms to their web URIs; CURIE extension names to ``{namespace}local``. Children of an
unordered list are sorted lexically. ``eventID``, ``recordTime`` and ``errorDeclaration`` are
left out (an error declaration keeps the hash of the event it corrects). A second pass then
appends user extensions: those nested in readPoint, bizLocation and sensor elements (under
their parents' names, in CBV order), then the event's own, sorted. Checked against the
reference generator's vectors in tests/traceability/vectors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from traceability.identifiers import canonical_identifier
from traceability.vocab import (
    BIZ_STEP,
    BIZ_TRANSACTION_TYPE,
    DISPOSITION,
    SOURCE_DEST_TYPE,
    Vocabulary,
)

EPCIS_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
HASH_VERSION = "CBV2.0"

# Prefixes the EPCIS 2.0 context itself defines; documents may add more.
DEFAULT_NAMESPACES: dict[str, str] = {
    "gs1": "https://gs1.org/voc/",
    "cbvmda": "urn:epcglobal:cbv:mda",
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
}

_IGNORED = frozenset({"type", "eventID", "recordTime", "errorDeclaration", "@context", "id"})

_SENSOR_METADATA_ORDER = (
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
_SENSOR_REPORT_ORDER = (
    "type",
    "exception",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "time",
    "microorganism",
    "chemicalSubstance",
    "value",
    "component",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
    "uom",
    "coordinateReferenceSystem",
)
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TIME_KEYS = frozenset({"time", "startTime", "endTime", "eventTime", "declarationTime"})
_ID_KEYS = frozenset(
    {
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "bizRules",
        "microorganism",
        "chemicalSubstance",
        "uriValue",
        "coordinateReferenceSystem",
    }
)


def canonical_time(value: str) -> str:
    """ISO 8601 date-time to UTC, millisecond precision (half-up), ``Z`` suffix."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    millis = (parsed.microsecond + 500) // 1000
    base = parsed.replace(microsecond=0) + timedelta(seconds=millis // 1000)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


# Python's default decimal context (28 digits), named rather than taken from the thread: a
# library may change the thread's context on import (vyper sets 78 digits), and a hash must
# not depend on what else the process imported. The trace page's JS port rounds the same way.
NUMBER_CONTEXT = Context(prec=28)


def canonical_number(value: int | float | Decimal | str) -> str:
    """Numbers without a leading ``+``, trailing zeros or a trailing ``.0``."""
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value(context=NUMBER_CONTEXT):
        return str(int(number))
    return format(number.normalize(NUMBER_CONTEXT), "f")


def _is_number_text(text: str) -> bool:
    return _NUMBER_RE.match(text) is not None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return canonical_number(value)
    text = str(value).strip()
    if _is_number_text(text):
        return canonical_number(text)
    return canonical_identifier(text)


def namespaces_from_context(
    context: Any, base: Mapping[str, str] = DEFAULT_NAMESPACES
) -> dict[str, str]:
    """Prefix → namespace map from a JSON-LD ``@context`` (string, object or list of both)."""
    namespaces = dict(base)
    items = context if isinstance(context, list) else [context]
    for item in items:
        if isinstance(item, Mapping):
            for key, val in item.items():
                if isinstance(val, str) and not key.startswith("@"):
                    namespaces[key] = val
    return namespaces


def _expand_key(key: str, namespaces: Mapping[str, str]) -> str:
    if key.startswith(("http://", "https://")):
        cut = max(key.rfind("/"), key.rfind("#")) + 1
        return "{" + key[:cut] + "}" + key[cut:]
    prefix, sep, local = key.partition(":")
    if sep and prefix in namespaces:
        return "{" + namespaces[prefix] + "}" + local
    return key


def _extension_parts(key: str, value: Any, namespaces: Mapping[str, str]) -> list[str]:
    """Pre-hash fragments for one user extension (a value, a nested object or a list)."""
    if key.startswith("@") or key == "#text":
        return []
    name = _expand_key(key, namespaces)
    if isinstance(value, Mapping):
        children: list[str] = []
        for child_key, child_value in value.items():
            children.extend(_extension_parts(child_key, child_value, namespaces))
        text = value.get("#text")
        head = name + ("=" + _scalar(text) if text not in (None, "") else "")
        return [head + "".join(sorted(children))]
    if isinstance(value, list):
        parts: list[str] = []
        for item in value:
            parts.extend(_extension_parts(key, item, namespaces))
        return parts
    if value is None:
        return []
    local = name.rsplit("}", 1)[-1]
    if "time" in local.lower() and "offset" not in local.lower() and isinstance(value, str):
        return [f"{name}={canonical_time(value)}"]
    return [f"{name}={_scalar(value)}"]


def _extensions(obj: Mapping[str, Any], known: Iterable[str], ns: Mapping[str, str]) -> str:
    skip = set(known) | _IGNORED
    parts: list[str] = []
    for key, value in obj.items():
        if key not in skip:
            parts.extend(_extension_parts(key, value, ns))
    return "".join(sorted(parts))


def _sensor_value(key: str, value: Any) -> str:
    if key in _TIME_KEYS:
        return canonical_time(str(value))
    if key == "type" and isinstance(value, str):
        return value if ":" in value else "https://ref.gs1.org/voc/" + value
    if key == "exception" and isinstance(value, str) and ":" not in value:
        return "https://ref.gs1.org/voc/SensorAlertType-" + value
    if key == "component" and isinstance(value, str) and ":" not in value:
        return "https://ref.gs1.org/cbv/Comp-" + value
    if key in _ID_KEYS and isinstance(value, str):
        return canonical_identifier(value.strip())
    return _scalar(value)


def _ordered(obj: Mapping[str, Any], order: Iterable[str]) -> str:
    return "".join(
        f"{key}={_sensor_value(key, obj[key])}" for key in order if obj.get(key) not in (None, "")
    )


def _sensor_elements(elements: list[Mapping[str, Any]]) -> str:
    """The standard fields of the sensor elements (their extensions come later)."""
    rendered = []
    for element in elements:
        text = "sensorElement"
        metadata = element.get("sensorMetadata")
        if isinstance(metadata, Mapping):
            body = _ordered(metadata, _SENSOR_METADATA_ORDER)
            text += "sensorMetadata" + body if body else ""
        reports = element.get("sensorReport") or []
        text += "".join(sorted("sensorReport" + _ordered(r, _SENSOR_REPORT_ORDER) for r in reports))
        rendered.append(text)
    return "".join(sorted(rendered))


def _sensor_extensions(elements: list[Mapping[str, Any]], ns: Mapping[str, str]) -> str:
    """User extensions inside sensor elements, each under its element's and part's names."""
    rendered = []
    for element in elements:
        text = ""
        metadata = element.get("sensorMetadata")
        if isinstance(metadata, Mapping):
            extra = _extensions(metadata, _SENSOR_METADATA_ORDER, ns)
            text += "sensorMetadata" + extra if extra else ""
        reports = element.get("sensorReport") or []
        extras = (_extensions(r, _SENSOR_REPORT_ORDER, ns) for r in reports)
        text += "".join(sorted("sensorReport" + e for e in extras if e))
        text += _extensions(element, ("sensorMetadata", "sensorReport"), ns)
        if text:
            rendered.append("sensorElement" + text)
    return "".join(sorted(rendered))


def _leftovers(event: Mapping[str, Any], known: Iterable[str], ns: Mapping[str, str]) -> str:
    """Second pass: extensions nested in standard fields (in CBV order), then the event's own."""
    out = ""
    for key in ("readPoint", "bizLocation"):
        value = event.get(key)
        if isinstance(value, Mapping):
            extra = _extensions(value, ("id",), ns)
            out += key + extra if extra else ""
    if event.get("sensorElementList"):
        out += _sensor_extensions(event["sensorElementList"], ns)
    return out + _extensions(event, known, ns)


def _epcs(name: str, values: list[str]) -> str:
    return name + "".join(sorted("epc=" + canonical_identifier(v.strip()) for v in values))


def _quantities(name: str, elements: list[Mapping[str, Any]]) -> str:
    rendered = []
    for element in elements:
        text = "quantityElement"
        if element.get("epcClass"):
            text += "epcClass=" + canonical_identifier(str(element["epcClass"]).strip())
        if element.get("quantity") is not None:
            text += "quantity=" + canonical_number(element["quantity"])
        if element.get("uom"):
            text += "uom=" + str(element["uom"]).strip()
        rendered.append(text)
    return name + "".join(sorted(rendered))


def _typed_list(name: str, key: str, vocab: Vocabulary, items: list[Mapping[str, Any]]) -> str:
    rendered = []
    for item in items:
        text = ""
        if item.get("type"):
            text += "type=" + vocab.canonical(str(item["type"]))
        text += f"{key}=" + canonical_identifier(str(item[key]).strip())
        rendered.append(text)
    return name + "".join(sorted(rendered))


def prehash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of one EPCIS event given as JSON-LD."""
    ns = namespaces if namespaces is not None else namespaces_from_context(event.get("@context"))
    out = ["eventType=" + str(event["type"])]
    get = event.get
    if get("eventTime"):
        out.append("eventTime=" + canonical_time(str(event["eventTime"])))
    if get("eventTimeZoneOffset"):
        out.append("eventTimeZoneOffset=" + str(event["eventTimeZoneOffset"]).strip())
    simple_ids = {"parentID", "transformationID"}
    known: list[str] = []
    for key in (
        "epcList",
        "parentID",
        "inputEPCList",
        "childEPCs",
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputEPCList",
        "outputQuantityList",
        "action",
        "transformationID",
        "bizStep",
        "disposition",
        "persistentDisposition",
        "readPoint",
        "bizLocation",
        "bizTransactionList",
        "sourceList",
        "destinationList",
        "sensorElementList",
        "ilmd",
    ):
        known.append(key)
        value = get(key)
        if value in (None, "", [], {}):
            continue
        if key.endswith(("EPCList", "EPCs")) or key == "epcList":
            out.append(_epcs(key, value))
        elif key.endswith("uantityList"):
            out.append(_quantities(key, value))
        elif key in simple_ids:
            out.append(f"{key}=" + canonical_identifier(str(value).strip()))
        elif key == "action":
            out.append(f"action={str(value).strip()}")
        elif key == "bizStep":
            out.append("bizStep=" + BIZ_STEP.canonical(str(value)))
        elif key == "disposition":
            out.append("disposition=" + DISPOSITION.canonical(str(value)))
        elif key == "persistentDisposition":
            text: str = key
            for sub in ("set", "unset"):
                text += "".join(
                    sorted(f"{sub}=" + DISPOSITION.canonical(v) for v in value.get(sub) or [])
                )
            out.append(text)
        elif key in ("readPoint", "bizLocation"):
            out.append(f"{key}id=" + canonical_identifier(str(value["id"]).strip()))
        elif key == "bizTransactionList":
            out.append(_typed_list(key, "bizTransaction", BIZ_TRANSACTION_TYPE, value))
        elif key == "sourceList":
            out.append(_typed_list(key, "source", SOURCE_DEST_TYPE, value))
        elif key == "destinationList":
            out.append(_typed_list(key, "destination", SOURCE_DEST_TYPE, value))
        elif key == "sensorElementList":
            out.append(_sensor_elements(value))
        elif key == "ilmd":
            body = _extensions(value, (), ns)
            if body:
                out.append("ilmd" + body)
    out.append(_leftovers(event, [*known, "eventTime", "eventTimeZoneOffset"], ns))
    return "".join(out)


def hash_prehash(pre_hash: str) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0`` for a pre-hash string."""
    digest = hashlib.sha256(pre_hash.encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The EPCIS Event Hash of one event."""
    return hash_prehash(prehash(event, namespaces))


def digest_of(hash_uri: str) -> bytes:
    """The 32 raw digest bytes inside an ``ni:///sha-256;…`` URI."""
    prefix = "ni:///sha-256;"
    if not hash_uri.startswith(prefix):
        raise ValueError(f"not an ni sha-256 URI: {hash_uri!r}")
    return bytes.fromhex(hash_uri[len(prefix) :].split("?", 1)[0])


def anchor_leaf(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> bytes:
    """The Merkle leaf data for an event: its hash URI, plus the error declaration if any.

    An error declaration keeps the hash of the event it corrects (by GS1 design), so the
    declaration is appended here to give the correction a leaf of its own.
    """
    leaf = event_hash(event, namespaces)
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, Mapping):
        ns = (
            namespaces if namespaces is not None else namespaces_from_context(event.get("@context"))
        )
        parts = _extension_parts("errorDeclaration", dict(declaration), ns)
        leaf += "#" + "".join(parts)
    return leaf.encode("utf-8")


def document_prehashes(document: Mapping[str, Any]) -> list[str]:
    """Pre-hash strings of every event in an EPCIS document, in document order."""
    ns = namespaces_from_context(document.get("@context"))
    events = document["epcisBody"]["eventList"]
    return [prehash(event, namespaces_from_context(event.get("@context"), ns)) for event in events]
