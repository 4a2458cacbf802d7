"""EPCIS Event Hash: hash version 1 against the vectors it was built on, and canonicalisation.

Version 2 is checked against GS1's reference generator itself in test_hash_reference.py; these
vectors (an older commit of the reference) pin version 1, which old anchors still use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from traceability.hashing import (
    LEGACY_HASH_VERSION,
    anchor_leaf,
    canonical_number,
    canonical_time,
    digest_of,
    document_prehashes,
    event_hash,
    hash_prehash,
    namespaces_from_context,
)

VECTORS = Path(__file__).parent / "vectors"
DOCUMENTS = sorted(p.stem for p in VECTORS.glob("*.jsonld"))


def _cases() -> list[tuple[str, int]]:
    return [
        (name, i)
        for name in DOCUMENTS
        for i, _ in enumerate((VECTORS / f"{name}.hashes").read_text().split())
    ]


def test_vectors_are_present() -> None:
    assert len(_cases()) == 16


@pytest.mark.parametrize(("name", "index"), _cases())
def test_reference_vector(name: str, index: int) -> None:
    document = json.loads((VECTORS / f"{name}.jsonld").read_text())
    expected_prehash = (VECTORS / f"{name}.prehashes").read_text().splitlines()[index]
    expected_hash = (VECTORS / f"{name}.hashes").read_text().split()[index]

    v1 = LEGACY_HASH_VERSION
    assert document_prehashes(document, version=v1)[index] == expected_prehash
    event = document["epcisBody"]["eventList"][index]
    ns = namespaces_from_context(document["@context"])
    assert event_hash(event, ns, version=v1) == expected_hash


def test_hash_uri_shape() -> None:
    uri = hash_prehash("abc")
    assert uri == f"ni:///sha-256;{hashlib.sha256(b'abc').hexdigest()}?ver=CBV2.0"
    assert digest_of(uri) == hashlib.sha256(b"abc").digest()


def test_field_order_and_list_order_do_not_matter() -> None:
    document = json.loads((VECTORS / "epcisDocWithVariousEventTypes.jsonld").read_text())
    event = document["epcisBody"]["eventList"][4]
    shuffled = dict(reversed(list(event.items())))
    shuffled["childEPCs"] = list(reversed(event["childEPCs"]))
    ns = namespaces_from_context(document["@context"])
    assert event_hash(shuffled, ns) == event_hash(event, ns)


def test_any_change_changes_the_hash() -> None:
    document = json.loads((VECTORS / "epcisDocWithSensorDataObjectEvent.jsonld").read_text())
    event = document["epcisBody"]["eventList"][0]
    before = event_hash(event)
    event["sensorElementList"][0]["sensorReport"][0]["value"] = 26.5
    assert event_hash(event) != before


def test_record_time_and_event_id_are_left_out() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2024-01-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["https://id.gs1.org/01/04012345111118/21/1"],
        "action": "OBSERVE",
    }
    tagged = {**event, "eventID": "urn:uuid:1", "recordTime": "2024-01-02T00:00:00Z"}
    assert event_hash(tagged) == event_hash(event)


def test_error_declaration_keeps_hash_but_gets_own_leaf() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2024-01-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["https://id.gs1.org/01/04012345111118/21/1"],
        "action": "OBSERVE",
    }
    declared = {
        **event,
        "errorDeclaration": {"declarationTime": "2024-01-03T00:00:00Z", "reason": "did_not_occur"},
    }
    assert event_hash(declared) == event_hash(event)
    assert anchor_leaf(declared) != anchor_leaf(event)
    assert anchor_leaf(event) == event_hash(event).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2005-04-03T20:33:31.116-06:00", "2005-04-04T02:33:31.116Z"),
        ("2022-02-17T11:30:47.0Z", "2022-02-17T11:30:47.000Z"),
        ("2020-01-01T00:00:00.1235+00:00", "2020-01-01T00:00:00.124Z"),
        ("2020-01-01T23:59:59.9996+01:00", "2020-01-01T23:00:00.000Z"),
    ],
)
def test_canonical_time(raw: str, expected: str) -> None:
    assert canonical_time(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(452.0, "452"), (12.10, "12.1"), ("+007", "7"), ("0.500", "0.5"), (3, "3"), (-2.5, "-2.5")],
)
def test_canonical_number(raw: float | str | int, expected: str) -> None:
    assert canonical_number(raw) == expected


def test_numbers_hash_alike_whatever_decimal_context_the_process_has() -> None:
    """A library may change the thread's decimal context on import (vyper sets 78 digits); the
    pre-hash keeps Python's default 28 digits, as the trace page's JS port does."""
    import decimal

    from traceability.hashing_v1 import canonical_number

    long = "1.2345678901234567890123456789012"
    expected = (canonical_number(long), canonical_number("9.99999999999999999999999999999"))
    assert expected == ("1.234567890123456789012345679", "10")
    with decimal.localcontext() as ctx:
        ctx.prec = 78
        assert (canonical_number(long), canonical_number("9.99999999999999999999999999999")) == (
            expected
        )
