"""Provisioning a locker: the row, its compartments and credentials, and its first configure."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from edge.protocol.envelopes import ConfigurePayload
from tuanbox.db.base import utcnow
from tuanbox.dispatch import outbox
from tuanbox.fulfilment.pickup import load_signing_key, public_key_b64
from tuanbox.lockers.models import Locker
from tuanbox.lockers.services import CompartmentSpec, create_locker
from tuanbox.settings import Settings


def provision_locker(
    session: Session,
    settings: Settings,
    *,
    locker_id: str,
    station_id: str,
    layout: Sequence[CompartmentSpec],
) -> tuple[Locker, str]:
    """Create the locker and queue a `configure` with the pickup public key.

    The configure waits in the outbox until the locker first comes online (its own, long TTL
    `locker_configure_ttl_s`: a locker may be installed days after it is registered).
    Returns the one-time password.
    """
    reserved = (settings.mqtt_username,) if settings.mqtt_username else ()
    locker, password = create_locker(
        session, id=locker_id, station_id=station_id, layout=layout, reserved_usernames=reserved
    )
    outbox.enqueue(
        session,
        locker_id,
        "configure",
        ConfigurePayload(pickup_public_key=public_key_b64(load_signing_key(settings))),
        now=utcnow(),
        ttl_s=settings.locker_configure_ttl_s,
        ref="provisioning",
    )
    return locker, password
