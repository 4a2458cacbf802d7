"""API shapes of fulfilment: lockers, run sheets, alerts, an order's fulfilment status."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LockerOut(_Out):
    id: str
    station_id: str
    online: bool
    stale: bool
    last_seen_at: datetime | None
    agent_version: str | None
    boot_id: str | None
    open_alerts: int
    pending_commands: int
    flagged_compartments: int


class RunSheetLineOut(_Out):
    compartment: str
    size: str
    zone: str
    action: str
    code: str
    booking_ref: str
    order_ids: list[str]


class RunSheetOut(BaseModel):
    locker_id: str
    lines: list[RunSheetLineOut]


class RemoteOpenIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "shopper's code fails; verified by phone"}]}
    )

    reason: str = Field(min_length=3, max_length=200)


class CommandOut(_Out):
    id: str
    locker_id: str
    type: str
    status: str
    expires_at: datetime


class AlertOut(_Out):
    id: int
    kind: str
    severity: str
    status: str
    locker_id: str | None
    compartment_id: int | None
    order_id: str | None
    detail: str
    next_step: str
    note: str | None
    opened_at: datetime
    acknowledged_by: str | None
    resolved_by: str | None


class AckIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "technician on the way"}]})

    note: str | None = Field(default=None, max_length=1000)


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"note": "door sensor replaced, temperature back to 4 °C"}]}
    )

    note: str = Field(min_length=3, max_length=1000)


class FulfilmentOut(BaseModel):
    order_id: str
    state: str  # queued | booked | exception | closed
    queue_position: int | None
    station_id: str
    locker_id: str | None
    compartment: str | None
    pickup_deadline: datetime | None
    exception_reason: str | None
