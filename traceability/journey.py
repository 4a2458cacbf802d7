"""Builders for the EPCIS events of a Tuanbox batch's journey: farm → hub → locker → shopper.

Each builder returns a validated event; ``.to_jsonld()`` gives the JSON to store and hash.
Places are GLNs (SGLN with an extension for a locker compartment), parties are GLNs (AI 417),
the batch is a GTIN + lot Digital Link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from traceability.epcis import (
    DEFAULT_CONTEXT,
    EPCISEvent,
    parse_event,
)
from traceability.errors import EventValidationError
from traceability.identifiers import gln_uri, gtin_lot_uri, party_uri, sscc_uri


@dataclass(frozen=True)
class Batch:
    """A product batch: GTIN + lot, and its quantity in a UN/ECE unit (KGM, H87 pieces...)."""

    gtin: str
    lot: str

    @property
    def uri(self) -> str:
        return gtin_lot_uri(self.gtin, self.lot)


@dataclass(frozen=True)
class TemperatureSummary:
    """Cold-chain figures over a stay (from telemetry): °C, with mean kinetic temperature."""

    start: datetime
    end: datetime
    minimum: float
    maximum: float
    mean: float
    mkt: float
    samples: int
    device_id: str | None = None


def _offset(when: datetime) -> str:
    offset = when.utcoffset()
    if offset is None:
        raise EventValidationError("eventTime", "must carry a time zone")
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _base(when: datetime, event_type: str) -> dict[str, Any]:
    return {
        "@context": DEFAULT_CONTEXT,
        "type": event_type,
        "eventTime": when.isoformat(),
        "eventTimeZoneOffset": _offset(when),
    }


def commissioning(
    batch: Batch,
    *,
    when: datetime,
    farm_gln: str,
    quantity: float,
    uom: str,
    harvest_start: date,
    harvest_end: date,
    farm_name: str,
    certifications: Sequence[str] = (),
    country: str | None = None,
) -> EPCISEvent:
    """Harvest or production: the batch comes into being at the farm, with its ILMD."""
    ilmd: dict[str, Any] = {
        "cbvmda:harvestStartDate": harvest_start.isoformat(),
        "cbvmda:harvestEndDate": harvest_end.isoformat(),
        "tb:farmName": farm_name,
    }
    if certifications:
        ilmd["tb:certification"] = list(certifications)
    if country:
        ilmd["cbvmda:countryOfOrigin"] = country
    return parse_event(
        {
            **_base(when, "ObjectEvent"),
            "action": "ADD",
            "quantityList": [{"epcClass": batch.uri, "quantity": quantity, "uom": uom}],
            "bizStep": "commissioning",
            "disposition": "active",
            "readPoint": {"id": gln_uri(farm_gln)},
            "bizLocation": {"id": gln_uri(farm_gln)},
            "ilmd": ilmd,
        }
    )


def packing(
    batch: Batch, *, when: datetime, crate_sscc: str, quantity: float, uom: str, at_gln: str
) -> EPCISEvent:
    """Packing part of the batch into a crate (logistic unit with an SSCC)."""
    return parse_event(
        {
            **_base(when, "AggregationEvent"),
            "action": "ADD",
            "parentID": sscc_uri(crate_sscc),
            "childQuantityList": [{"epcClass": batch.uri, "quantity": quantity, "uom": uom}],
            "bizStep": "packing",
            "disposition": "in_progress",
            "readPoint": {"id": gln_uri(at_gln)},
        }
    )


def portioning(
    source: Batch,
    portions: Batch,
    *,
    when: datetime,
    input_quantity: float,
    input_uom: str,
    portion_count: int,
    at_gln: str,
) -> EPCISEvent:
    """Portioning a bulk batch into retail packs: a new lot made from the old one."""
    return parse_event(
        {
            **_base(when, "TransformationEvent"),
            "inputQuantityList": [
                {"epcClass": source.uri, "quantity": input_quantity, "uom": input_uom}
            ],
            "outputQuantityList": [
                {"epcClass": portions.uri, "quantity": portion_count, "uom": "H87"}
            ],
            "bizStep": "repackaging",
            "disposition": "active",
            "readPoint": {"id": gln_uri(at_gln)},
        }
    )


def shipping(
    batch: Batch, *, when: datetime, from_gln: str, to_gln: str, carrier_gln: str | None = None
) -> EPCISEvent:
    """The batch leaves a place for another (farm → hub, hub → locker)."""
    sources = [{"type": "location", "source": gln_uri(from_gln)}]
    if carrier_gln:
        sources.append({"type": "possessing_party", "source": party_uri(carrier_gln)})
    return parse_event(
        {
            **_base(when, "ObjectEvent"),
            "action": "OBSERVE",
            "quantityList": [{"epcClass": batch.uri}],
            "bizStep": "shipping",
            "disposition": "in_transit",
            "readPoint": {"id": gln_uri(from_gln)},
            "sourceList": sources,
            "destinationList": [{"type": "location", "destination": gln_uri(to_gln)}],
        }
    )


def receiving(
    batch: Batch,
    *,
    when: datetime,
    at_gln: str,
    from_gln: str | None,
    at_extension: str | None = None,
    quantity: float | None = None,
    uom: str = "H87",
) -> EPCISEvent:
    """The batch arrives at the station hub (an SGLN when `at_extension` names one station).

    `from_gln` is the shipper's place when known; `quantity` what was counted in.
    """
    hub = gln_uri(at_gln, at_extension)
    amount: dict[str, Any] = {"epcClass": batch.uri}
    if quantity is not None:
        amount |= {"quantity": quantity, "uom": uom}
    event: dict[str, Any] = {
        **_base(when, "ObjectEvent"),
        "action": "OBSERVE",
        "quantityList": [amount],
        "bizStep": "receiving",
        "disposition": "in_progress",
        "readPoint": {"id": hub},
        "bizLocation": {"id": hub},
        "destinationList": [{"type": "location", "destination": hub}],
    }
    if from_gln is not None:
        event["sourceList"] = [{"type": "location", "source": gln_uri(from_gln)}]
    return parse_event(event)


def _temperature_report(summary: TemperatureSummary) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "startTime": summary.start.isoformat(),
        "endTime": summary.end.isoformat(),
        "tb:sampleCount": summary.samples,
    }
    if summary.device_id:
        metadata["deviceID"] = summary.device_id
    return {
        "sensorMetadata": metadata,
        "sensorReport": [
            {
                "type": "Temperature",
                "minValue": summary.minimum,
                "maxValue": summary.maximum,
                "meanValue": summary.mean,
                "uom": "CEL",
                "tb:meanKineticTemperature": summary.mkt,
            }
        ],
    }


def storing(
    batch: Batch,
    *,
    when: datetime,
    locker_gln: str,
    compartment: str,
    temperature: TemperatureSummary | None = None,
) -> EPCISEvent:
    """The batch is stored in a locker compartment (an SGLN), with its cold-chain summary."""
    event: dict[str, Any] = {
        **_base(when, "ObjectEvent"),
        "action": "OBSERVE",
        "quantityList": [{"epcClass": batch.uri}],
        "bizStep": "storing",
        "disposition": "sellable_accessible",
        "readPoint": {"id": gln_uri(locker_gln, compartment)},
        "bizLocation": {"id": gln_uri(locker_gln)},
    }
    if temperature is not None:
        event["sensorElementList"] = [_temperature_report(temperature)]
    return parse_event(event)


def pickup(batch: Batch, *, when: datetime, locker_gln: str, compartment: str) -> EPCISEvent:
    """The shopper takes the order out of the locker: the retail sale is complete."""
    return parse_event(
        {
            **_base(when, "ObjectEvent"),
            "action": "OBSERVE",
            "quantityList": [{"epcClass": batch.uri}],
            "bizStep": "retail_selling",
            "disposition": "retail_sold",
            "readPoint": {"id": gln_uri(locker_gln, compartment)},
            "bizLocation": {"id": gln_uri(locker_gln)},
        }
    )


def excursion(
    batch: Batch,
    *,
    when: datetime,
    locker_gln: str,
    compartment: str,
    celsius: float | None,
    since: datetime,
    rule: str,
) -> EPCISEvent:
    """A cold-chain excursion: the batch goes on quality hold (peak °C when known)."""
    reading: dict[str, Any] = {"type": "Temperature", "exception": "ALARM_CONDITION", "uom": "CEL"}
    if celsius is not None:
        reading["value"] = celsius
    return parse_event(
        {
            **_base(when, "ObjectEvent"),
            "action": "OBSERVE",
            "quantityList": [{"epcClass": batch.uri}],
            "bizStep": "sensor_reporting",
            "disposition": "non_sellable_other",
            "readPoint": {"id": gln_uri(locker_gln, compartment)},
            "sensorElementList": [
                {
                    "sensorMetadata": {
                        "startTime": since.isoformat(),
                        "endTime": when.isoformat(),
                        "bizRules": TUANBOX_RULES + rule,
                    },
                    "sensorReport": [reading],
                }
            ],
        }
    )


TUANBOX_RULES = "https://tuanbox.dev/voc/coldchain-rule/"


def error_declaration(
    original: Mapping[str, Any],
    *,
    when: datetime,
    reason: str = "incorrect_data",
    corrective_event_ids: Sequence[str] = (),
) -> EPCISEvent:
    """Declare an earlier event wrong (append-only correction): its copy plus errorDeclaration."""
    declaration: dict[str, Any] = {"declarationTime": when.isoformat(), "reason": reason}
    if corrective_event_ids:
        declaration["correctiveEventIDs"] = list(corrective_event_ids)
    return parse_event({**original, "errorDeclaration": declaration})
