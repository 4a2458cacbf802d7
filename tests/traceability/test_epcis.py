"""EPCIS 2.0 models: validation naming the field, journey builders, append-only corrections."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from tests.traceability import factories
from traceability import journey
from traceability.epcis import parse_event
from traceability.errors import EventValidationError
from traceability.hashing import EPCIS_CONTEXT_URL, event_hash


def _object_event(**extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-28T06:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/06901234567892/10/PEACH-2611"}],
        **extra,
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"type": "AssociationEvent"}, "type"),
        ({"eventTime": "2026-11-28T06:00:00"}, "eventTime"),
        ({"eventTimeZoneOffset": "8h"}, "eventTimeZoneOffset"),
        ({"action": "MOVE"}, "action"),
        ({"bizStep": "teleporting"}, "bizStep"),
        ({"disposition": "urn:epcglobal:cbv:disp:melted"}, "disposition"),
        (
            {"quantityList": [{"epcClass": "https://id.gs1.org/01/06901234567893/10/X"}]},
            "quantityList[0].epcClass",
        ),
        ({"quantityList": [], "epcList": ["https://id.gs1.org/01/1/21/1", "x"]}, "epcList[0]"),
        ({"readPoint": {"id": "not a uri"}}, "readPoint.id"),
        (
            {"sourceList": [{"type": "friend", "source": "https://id.gs1.org/414/6901234000009"}]},
            "sourceList[0].type",
        ),
        ({"colour": "red"}, "colour"),
        ({"ilmd": {"tb:x": 1}}, "ilmd"),
        (
            {"sensorElementList": [{"sensorReport": [{"type": "Temperature", "uom": "degrees"}]}]},
            "sensorElementList[0].sensorReport[0].uom",
        ),
    ],
)
def test_bad_event_names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(_object_event(**patch))
    assert info.value.field == field
    assert info.value.code == "invalid_event"
    assert info.value.http_status == 422


def test_legacy_urn_and_web_uri_vocabulary_accepted() -> None:
    parse_event(_object_event(bizStep="urn:epcglobal:cbv:bizstep:receiving"))
    parse_event(_object_event(bizStep="https://ref.gs1.org/cbv/BizStep-receiving"))
    parse_event(_object_event(bizStep="https://merchant.example.com/voc/ripening"))


def test_user_extension_needs_declared_prefix() -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(_object_event(**{"acme:grade": "A"}))
    assert info.value.field == "acme:grade"
    event = parse_event(
        _object_event(
            **{
                "@context": [EPCIS_CONTEXT_URL, {"acme": "https://acme.example/"}],
                "acme:grade": "A",
            }
        )
    )
    assert event.to_jsonld()["acme:grade"] == "A"


def test_journey_events_validate_and_hash_stably() -> None:
    events = factories.journey_events()
    steps = [e["bizStep"] for e in events]
    assert steps == ["commissioning", "shipping", "receiving", "storing", "retail_selling"]
    hashes = [event_hash(e) for e in events]
    assert len(set(hashes)) == len(hashes)
    # What we store must re-parse to the same JSON and hash (round trip through the API).
    for stored, digest in zip(events, hashes, strict=True):
        assert parse_event(stored).to_jsonld() == stored
        assert event_hash(copy.deepcopy(stored)) == digest


def test_commissioning_ilmd_and_storing_sensor_summary() -> None:
    events = factories.journey_events()
    ilmd = events[0]["ilmd"]
    assert ilmd["cbvmda:harvestStartDate"] == "2026-11-27"
    assert ilmd["tb:certification"] == ["GB/T 19630 organic", "GlobalG.A.P."]
    report = events[3]["sensorElementList"][0]["sensorReport"][0]
    assert (report["minValue"], report["maxValue"], report["tb:meanKineticTemperature"]) == (
        2.1,
        4.6,
        3.4,
    )
    assert events[3]["readPoint"]["id"].endswith("/414/6901234000023/254/C07")


def test_packing_portioning_excursion_builders() -> None:
    b = factories.batch()
    t = factories.NOW
    packed = journey.packing(
        b,
        when=t,
        crate_sscc="069012340000000016",
        quantity=10,
        uom="KGM",
        at_gln=factories.FARM_GLN,
    )
    assert packed.to_jsonld()["parentID"] == "https://id.gs1.org/00/069012340000000016"
    portions = journey.portioning(
        b,
        journey.Batch(factories.GTIN, "PEACH-2611-P"),
        when=t,
        input_quantity=10,
        input_uom="KGM",
        portion_count=40,
        at_gln=factories.HUB_GLN,
    )
    assert portions.to_jsonld()["type"] == "TransformationEvent"
    alarm = journey.excursion(
        b,
        when=t,
        locker_gln=factories.LOCKER_GLN,
        compartment="C07",
        celsius=12.5,
        since=t - timedelta(minutes=3),
        rule="chilled-above-12",
    )
    report = alarm.to_jsonld()["sensorElementList"][0]["sensorReport"][0]
    assert report["exception"] == "ALARM_CONDITION"


def test_bad_sscc_rejected() -> None:
    with pytest.raises(EventValidationError):
        journey.packing(
            factories.batch(),
            when=factories.NOW,
            crate_sscc="069012340000000017",
            quantity=1,
            uom="KGM",
            at_gln=factories.FARM_GLN,
        )


def test_correction_is_a_new_event_with_error_declaration() -> None:
    original = factories.journey_events()[1]
    correction = journey.error_declaration(
        original, when=factories.NOW, reason="did_not_occur"
    ).to_jsonld()
    assert original.get("errorDeclaration") is None  # the original is untouched
    assert correction["errorDeclaration"]["reason"] == "did_not_occur"
    with pytest.raises(EventValidationError) as info:
        journey.error_declaration(original, when=factories.NOW, reason="oops")
    assert info.value.field == "errorDeclaration.reason"
