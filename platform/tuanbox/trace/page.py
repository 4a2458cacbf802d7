"""What the consumer page shows, derived from a trace report: timeline and cold-chain summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from traceability.report import TraceReport

# Keccak-256("anchored_at(bytes32)")[:4]: the call the page makes on the chain RPC.
ANCHORED_AT_SELECTOR = "0xbd4390ad"

STEP_LABELS = {
    "commissioning": ("采收", "Harvested"),
    "packing": ("装箱", "Packed"),
    "repackaging": ("分装", "Portioned"),
    "shipping": ("发货", "Shipped"),
    "receiving": ("到站", "At the station hub"),
    "storing": ("入柜", "In the pickup locker"),
    "retail_selling": ("取货", "Picked up"),
    "sensor_reporting": ("温度异常", "Cold-chain alert"),
}


@dataclass(frozen=True)
class Step:
    when: str
    label_zh: str
    label_en: str
    place: str
    status: str
    short_hash: str
    corrected: bool
    details: list[str] = field(default_factory=list)


@dataclass
class ColdChain:
    minimum: float | None = None
    maximum: float | None = None
    mkt: float | None = None
    readings: int = 0
    excursions: int = 0


def _step_name(event: dict[str, Any]) -> str:
    return str(event.get("bizStep", "")).rsplit("-", 1)[-1].rsplit(":", 1)[-1]


def _place(event: dict[str, Any]) -> str:
    uri = str((event.get("readPoint") or {}).get("id", ""))
    parts = uri.split("/")
    if "414" in parts:
        i = parts.index("414")
        gln = parts[i + 1] if i + 1 < len(parts) else ""
        ext = parts[i + 3] if len(parts) > i + 3 else ""
        return f"GLN {gln}" + (f" · {ext}" if ext else "")
    return uri


def _details(event: dict[str, Any]) -> list[str]:
    out = []
    ilmd = event.get("ilmd") or {}
    if ilmd.get("tb:farmName"):
        out.append(f"农场 Farm: {ilmd['tb:farmName']}")
    if ilmd.get("cbvmda:harvestStartDate"):
        out.append(
            f"采收 Harvest: {ilmd['cbvmda:harvestStartDate']} – "
            f"{ilmd.get('cbvmda:harvestEndDate', '')}"
        )
    certs = ilmd.get("tb:certification")
    if certs:
        out.append("认证 Certified: " + ", ".join(certs if isinstance(certs, list) else [certs]))
    for element in event.get("sensorElementList") or []:
        for report in element.get("sensorReport") or []:
            if report.get("exception"):
                out.append(f"⚠ {report.get('value')} °C ({report['exception']})")
            elif report.get("minValue") is not None:
                out.append(
                    f"温度 {report['minValue']}–{report['maxValue']} °C, "
                    f"MKT {report.get('tb:meanKineticTemperature', '?')} °C"
                )
    return out


def timeline(report: TraceReport) -> list[Step]:
    steps = []
    for item in report.events:
        event = item.event
        name = _step_name(event)
        zh, en = STEP_LABELS.get(name, (name, name.replace("_", " ")))
        when = datetime.fromisoformat(str(event["eventTime"])).strftime("%Y-%m-%d %H:%M")
        steps.append(
            Step(
                when=when,
                label_zh=zh,
                label_en=en,
                place=_place(event),
                status=item.status,
                short_hash=item.event_hash.split(";")[-1][:12],
                corrected="errorDeclaration" in event,
                details=_details(event),
            )
        )
    return steps


def cold_chain(report: TraceReport) -> ColdChain:
    summary = ColdChain()
    for item in report.events:
        for element in item.event.get("sensorElementList") or []:
            for reading in element.get("sensorReport") or []:
                if reading.get("exception"):
                    summary.excursions += 1
                low = reading.get("minValue", reading.get("value"))
                high = reading.get("maxValue", reading.get("value"))
                if low is None or high is None:
                    continue
                summary.readings += 1
                summary.minimum = low if summary.minimum is None else min(summary.minimum, low)
                summary.maximum = high if summary.maximum is None else max(summary.maximum, high)
                mkt = reading.get("tb:meanKineticTemperature")
                if mkt is not None:
                    summary.mkt = mkt if summary.mkt is None else max(summary.mkt, mkt)
    return summary


def embedded_json(report: TraceReport) -> str:
    """Report JSON safe inside a <script> element."""
    text = json.dumps(report.model_dump(mode="json"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
