"""GS1 EPCIS Event Hash (CBV 2.0 §8.9): the pre-hash string, its ``ni:`` URI, hash versions.

Version 2 (current) follows CBV 2.0 §8.9 and agrees with GS1's reference generator
(``epcis-event-hash-generator``; differential test in tests/traceability/test_hash_reference.py,
which also names where the reference departs from the standard). Version 1 is the pre-hash this
project anchored before (``traceability.hashing_v1``); reports say which one each event uses.

Pre-hash: ``eventType=…``, then each present field in the canonical property order, list names
once followed by their sorted children, user extensions inside readPoint, bizLocation and the
sensor parts at the end of their parent, ILMD, then the event's own extensions sorted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from traceability import hashing_v1
from traceability.epcis_terms import (
    BIZ_STEP_TERMS,
    BIZ_TRANSACTION_TYPE_TERMS,
    COMPONENT_TERMS,
    DISPOSITION_TERMS,
    MEASUREMENT_TYPE_TERMS,
    SENSOR_ALERT_TERMS,
    SOURCE_DEST_TYPE_TERMS,
)
from traceability.gs1_uri import normalise_gs1_uri

EPCIS_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
HASH_VERSION = "CBV2.0"
LEGACY_HASH_VERSION = 1
CURRENT_HASH_VERSION = 2
HASH_VERSIONS = (LEGACY_HASH_VERSION, CURRENT_HASH_VERSION)

DEFAULT_NAMESPACES: dict[str, str] = dict(hashing_v1.DEFAULT_NAMESPACES)

# Left out of the hash: set by the capturing system, or (errorDeclaration) a later correction.
_IGNORED_TOP = frozenset({"type", "eventID", "recordTime", "errorDeclaration", "@context"})
# Left out at every level: annotations for people, not data (EPCIS 2.0 JSON schema).
_IGNORED_ANYWHERE = frozenset({"rdfs:comment", "comment", "#text"})

_CBV_URNS = (
    ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
)
_QUANTITY_ORDER = ("epcClass", "quantity", "uom")
_METADATA_ORDER = hashing_v1._SENSOR_METADATA_ORDER
_REPORT_ORDER = hashing_v1._SENSOR_REPORT_ORDER
_REPORT_TERMS = {
    "type": MEASUREMENT_TYPE_TERMS,
    "exception": SENSOR_ALERT_TERMS,
    "component": COMPONENT_TERMS,
}

canonical_number = hashing_v1.canonical_number
namespaces_from_context = hashing_v1.namespaces_from_context


def canonical_time(value: str) -> str:
    """ISO 8601 date-time to UTC at millisecond precision with a ``Z`` (rules 8-9)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    millis = (parsed.microsecond + 500) // 1000
    parsed = parsed.replace(microsecond=0) + timedelta(milliseconds=millis)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S") + f".{parsed.microsecond // 1000:03d}Z"


def _number_text(text: str) -> str | None:
    if not text or not text.isascii() or text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return None
    if "_" in text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return canonical_number(number) if number.is_finite() else None


def canonical_value(value: Any, namespaces: Mapping[str, str] | None = None) -> str:
    """A value as the pre-hash writes it: trimmed, CURIEs expanded (rule 15), CBV URNs as web
    URIs (14), numbers without trailing zeros (6), GS1 identifiers as constrained Digital
    Links (17-18)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return canonical_number(value)
    text = str(value).strip()
    prefix, sep, local = text.partition(":")
    if sep and namespaces and prefix in namespaces and not local.startswith("//"):
        text = namespaces[prefix] + local
    for urn, web in _CBV_URNS:
        text = text.replace(urn, web)
    text = _number_text(text) or text
    return normalise_gs1_uri(text) or text


def _term(value: Any, terms: Mapping[str, str], ns: Mapping[str, str]) -> str:
    """A bare CBV term expanded as the EPCIS 2.0 context defines it (rule 16)."""
    text = str(value).strip()
    return terms.get(text) or canonical_value(text, ns)


def _is_time_key(key: str) -> bool:
    lowered = key.lower()
    return "time" in lowered and "offset" not in lowered


def _field(
    key: str, value: Any, ns: Mapping[str, str], terms: Mapping[str, str] | None = None
) -> str:
    """``key=value`` for a standard field, or "" when it has no value (rule 4)."""
    if value is None:
        return ""
    if _is_time_key(key):
        text = canonical_time(str(value))
    elif terms is not None:
        text = _term(value, terms, ns)
    else:
        text = canonical_value(value, ns)
    return f"{key}={text}" if text else ""


def _expand_key(key: str, namespaces: Mapping[str, str]) -> str:
    prefix, sep, local = key.partition(":")
    if sep and prefix in namespaces and not local.startswith("//"):
        return "{" + namespaces[prefix] + "}" + local
    return key


def _extension_parts(key: str, value: Any, ns: Mapping[str, str]) -> list[str]:
    """Pre-hash fragments of one user extension: one per list item, nested ones sorted."""
    if key in _IGNORED_ANYWHERE or key.startswith("@"):
        return []
    if isinstance(value, list):
        return [part for item in value for part in _extension_parts(key, item, ns)]
    name = _expand_key(key, ns)
    if isinstance(value, Mapping):
        text = value.get("#text")
        head = name + ("=" + canonical_value(text, ns) if text not in (None, "") else "")
        return [head + _extensions(value, (), ns)]
    if value is None:
        return [name]
    text = canonical_value(value, ns)
    return [name + ("=" + text if text else "")]


def _extension_list(
    obj: Mapping[str, Any], known: tuple[str, ...], ns: Mapping[str, str]
) -> list[str]:
    parts: list[str] = []
    for key, value in obj.items():
        if key not in known:
            parts.extend(_extension_parts(key, value, ns))
    return parts


def _extensions(obj: Mapping[str, Any], known: tuple[str, ...], ns: Mapping[str, str]) -> str:
    """The sorted user extensions of an object (rules 19-21)."""
    return "".join(sorted(_extension_list(obj, known, ns)))


def _ordered(
    obj: Mapping[str, Any],
    order: tuple[str, ...],
    ns: Mapping[str, str],
    terms: Mapping[str, Mapping[str, str]],
) -> str:
    """Standard fields in their order, then the object's extensions (rule 21)."""
    body = "".join(_field(key, obj.get(key), ns, terms.get(key)) for key in order)
    return body + _extensions(obj, order, ns)


def _sorted_list(name: str, items: list[str]) -> str:
    items = [item for item in items if item]
    return name + "".join(sorted(items)) if items else ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _epcs(name: str, values: Any, ns: Mapping[str, str]) -> str:
    return _sorted_list(name, [_field("epc", v, ns) for v in _as_list(values)])


def _quantities(name: str, elements: Any, ns: Mapping[str, str]) -> str:
    return _sorted_list(
        name,
        [
            "quantityElement" + _ordered(e, _QUANTITY_ORDER, ns, {})
            for e in _as_list(elements)
            if isinstance(e, Mapping)
        ],
    )


def _typed(key: str, terms: Mapping[str, str]) -> Callable[[str, Any, Mapping[str, str]], str]:
    """bizTransactionList, sourceList, destinationList: ``type=…`` then the identifier."""

    def render(name: str, items: Any, ns: Mapping[str, str]) -> str:
        rendered = [
            _field("type", item.get("type"), ns, terms)
            + _field(key, item.get(key), ns)
            + _extensions(item, ("type", key), ns)
            for item in _as_list(items)
            if isinstance(item, Mapping)
        ]
        return _sorted_list(name, rendered)

    return render


def _location(name: str, value: Any, ns: Mapping[str, str]) -> str:
    if not isinstance(value, Mapping):
        return ""
    body = _ordered(value, ("id",), ns, {})
    return name + body if body else ""


def _persistent(name: str, value: Any, ns: Mapping[str, str]) -> str:
    if not isinstance(value, Mapping):
        return ""
    body = "".join(
        "".join(
            sorted(_field(sub, v, ns, DISPOSITION_TERMS) for v in _as_list(value.get(sub) or []))
        )
        for sub in ("set", "unset")
    )
    return name + body if body else ""


def _sensor_element(element: Mapping[str, Any], ns: Mapping[str, str]) -> str:
    text = "sensorElement"
    metadata = element.get("sensorMetadata")
    if isinstance(metadata, Mapping):
        body = _ordered(metadata, _METADATA_ORDER, ns, {})
        text += "sensorMetadata" + body if body else ""
    reports = [
        "sensorReport" + _ordered(r, _REPORT_ORDER, ns, _REPORT_TERMS)
        for r in _as_list(element.get("sensorReport") or [])
        if isinstance(r, Mapping)
    ]
    text += "".join(sorted(reports))
    return text + _extensions(element, ("sensorMetadata", "sensorReport"), ns)


def _sensors(name: str, elements: Any, ns: Mapping[str, str]) -> str:
    return _sorted_list(
        name, [_sensor_element(e, ns) for e in _as_list(elements) if isinstance(e, Mapping)]
    )


def _ilmd(name: str, value: Any, ns: Mapping[str, str]) -> str:
    body = _extensions(value, (), ns) if isinstance(value, Mapping) else ""
    return name + body if body else ""


def _simple(terms: Mapping[str, str] | None = None) -> Callable[[str, Any, Mapping[str, str]], str]:
    def render(name: str, value: Any, ns: Mapping[str, str]) -> str:
        return "".join(sorted(_field(name, v, ns, terms) for v in _as_list(value)))

    return render


# CBV 2.0 §8.9 canonical property order (after eventType).
_ORDER: tuple[tuple[str, Callable[[str, Any, Mapping[str, str]], str]], ...] = (
    ("eventTime", _simple()),
    ("eventTimeZoneOffset", _simple()),
    ("certificationInfo", _simple()),
    ("parentID", _simple()),
    ("epcList", _epcs),
    ("inputEPCList", _epcs),
    ("childEPCs", _epcs),
    ("quantityList", _quantities),
    ("childQuantityList", _quantities),
    ("inputQuantityList", _quantities),
    ("outputEPCList", _epcs),
    ("outputQuantityList", _quantities),
    ("action", _simple()),
    ("transformationID", _simple()),
    ("bizStep", _simple(BIZ_STEP_TERMS)),
    ("disposition", _simple(DISPOSITION_TERMS)),
    ("persistentDisposition", _persistent),
    ("readPoint", _location),
    ("bizLocation", _location),
    ("bizTransactionList", _typed("bizTransaction", BIZ_TRANSACTION_TYPE_TERMS)),
    ("sourceList", _typed("source", SOURCE_DEST_TYPE_TERMS)),
    ("destinationList", _typed("destination", SOURCE_DEST_TYPE_TERMS)),
    ("sensorElementList", _sensors),
    ("ilmd", _ilmd),
)
_KNOWN = tuple(name for name, _ in _ORDER) + tuple(_IGNORED_TOP)


def prehash_parts(
    event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The version 2 pre-hash as (field, text) parts in order; user extensions one part each."""
    ns = namespaces if namespaces is not None else namespaces_from_context(event.get("@context"))
    parts = [("eventType", "eventType=" + str(event["type"]).strip())]
    for name, render in _ORDER:
        value = event.get(name)
        if value in (None, "", [], {}):
            continue
        text = render(name, value, ns)
        if text:
            parts.append((name, text))
    extensions = sorted(_extension_list(event, _KNOWN, ns))
    parts.extend(("extension", text) for text in extensions)
    return parts


def prehash(
    event: Mapping[str, Any],
    namespaces: Mapping[str, str] | None = None,
    *,
    version: int = CURRENT_HASH_VERSION,
) -> str:
    """The CBV 2.0 pre-hash string of one EPCIS event given as JSON-LD."""
    if version == LEGACY_HASH_VERSION:
        return hashing_v1.prehash(event, namespaces)
    if version != CURRENT_HASH_VERSION:
        raise ValueError(f"unknown hash version {version!r} (known: {HASH_VERSIONS})")
    return "".join(text for _, text in prehash_parts(event, namespaces))


def hash_prehash(pre_hash: str) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0`` for a pre-hash string."""
    digest = hashlib.sha256(pre_hash.encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def event_hash(
    event: Mapping[str, Any],
    namespaces: Mapping[str, str] | None = None,
    *,
    version: int = CURRENT_HASH_VERSION,
) -> str:
    """The EPCIS Event Hash of one event, in the given hash version."""
    return hash_prehash(prehash(event, namespaces, version=version))


def digest_of(hash_uri: str) -> bytes:
    """The 32 raw digest bytes inside an ``ni:///sha-256;…`` URI."""
    return hashing_v1.digest_of(hash_uri)


def anchor_leaf(
    event: Mapping[str, Any],
    namespaces: Mapping[str, str] | None = None,
    *,
    version: int = CURRENT_HASH_VERSION,
) -> bytes:
    """The Merkle leaf data for an event: its hash URI, plus the error declaration if any.

    An error declaration keeps the hash of the event it corrects (by GS1 design), so the
    declaration is appended here to give the correction a leaf of its own.
    """
    if version == LEGACY_HASH_VERSION:
        return hashing_v1.anchor_leaf(event, namespaces)
    leaf = event_hash(event, namespaces, version=version)
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, Mapping):
        ns = (
            namespaces if namespaces is not None else namespaces_from_context(event.get("@context"))
        )
        leaf += "#" + "".join(_extension_parts("errorDeclaration", dict(declaration), ns))
    return leaf.encode("utf-8")


def document_events(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The events of an EPCIS document or query document, in document order."""
    body = document.get("epcisBody")
    if not isinstance(body, Mapping):
        raise ValueError("not an EPCIS document: no epcisBody")
    if "queryResults" in body:
        results = body["queryResults"].get("resultsBody") or {}
        return list(results.get("eventList") or [])
    if "event" in body:
        return [body["event"]]
    return list(body.get("eventList") or [])


def document_prehashes(
    document: Mapping[str, Any], *, version: int = CURRENT_HASH_VERSION
) -> list[str]:
    """Pre-hash strings of every event in an EPCIS (query) document, in document order."""
    ns = namespaces_from_context(document.get("@context"))
    return [
        prehash(event, namespaces_from_context(event.get("@context"), ns), version=version)
        for event in document_events(document)
    ]
