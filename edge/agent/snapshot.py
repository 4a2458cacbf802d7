"""What the agent tells the platform about itself: the retained ``state`` snapshot of every
compartment, and the runtime config (the settings ``configure`` may change) read back from
the store over the agent's own settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge.agent.doors import DoorView
from edge.agent.ledger import ArmedPickup, Reservation
from edge.agent.messages import RuntimeConfig
from edge.agent.settings import CompartmentConfig, EdgeSettings
from edge.protocol.envelopes import CompartmentState, StateSnapshot


def runtime_config(saved: Mapping[str, Any], settings: EdgeSettings) -> RuntimeConfig:
    """The saved ``configure`` values, each falling back to the agent's settings."""
    s = settings
    return RuntimeConfig(
        door_left_open_seconds=saved.get("door_left_open_seconds", s.door_left_open_seconds),
        unlock_confirm_s=saved.get("unlock_confirm_seconds", s.serial_unlock_confirm_s),
        fallback_max_attempts=saved.get("fallback_max_attempts", s.pickup_fallback_max_attempts),
        pickup_public_key=saved.get("pickup_public_key", s.pickup_public_key),
        extra={k: v for k, v in saved.items() if k not in RuntimeConfig.__annotations__},
    )


def build_snapshot(
    *,
    locker_id: str,
    boot_id: str,
    at: datetime,
    compartments: Mapping[str, CompartmentConfig],
    views: Mapping[str, DoorView],
    reservations: Mapping[str, Reservation],
    pickups: Mapping[str, ArmedPickup],
) -> StateSnapshot:
    """Every compartment: door, lock, parcel, who it is reserved for, which order is armed."""
    items = []
    for cid, conf in compartments.items():
        view = views.get(cid)
        is_open = view.is_open if view else False
        items.append(
            CompartmentState(
                compartment=cid,
                door="open" if is_open else "closed",
                locked=not is_open,
                item_present=view.item_present if view else False,
                reserved_for=reservations[cid].order_id if cid in reservations else None,
                armed_order=pickups[cid].order_id if cid in pickups else None,
                out_of_service=conf.out_of_service,
            )
        )
    return StateSnapshot(locker_id=locker_id, boot_id=boot_id, at=at, compartments=items)
