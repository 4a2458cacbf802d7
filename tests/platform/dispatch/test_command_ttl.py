"""Every command type expires after the process's configured TTL, whichever entry point sends it.

Order hooks get only a session, so each entry point's sessions carry its settings: the API's,
the worker's, the bridge's. A session without them is an error, never the defaults (which
once sent commands with a six-hour TTL from a process configured for 77 seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from edge.protocol.envelopes import decode_command
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.factories import auth_header, make_user
from tests.platform.fulfilment.fx import (
    TEST_ACTOR,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.api.app import create_app
from tuanbox.db.base import utcnow
from tuanbox.db.engine import (
    SettingsNotBoundError,
    make_session_factory,
    session_scope,
    settings_of,
)
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.fulfilment.provisioning import provision_locker
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.worker.db import session_factory_for

TTL, CONFIGURE_TTL = 77, 88
LAYOUT = [CompartmentSpec(0, lock, "S") for lock in range(1, 5)]


def _lifetimes(p: Platform) -> dict[str, set[timedelta]]:
    """Per command type, the lifetimes (expires_at - issued_at) of what was queued."""
    with p.session() as session:
        out: dict[str, set[timedelta]] = {}
        for row in session.scalars(select(OutboxCommand)):
            command = decode_command(row.body)
            out.setdefault(row.type, set()).add(command.expires_at - command.issued_at)
        return out


def test_every_command_type_expires_after_the_configured_ttl(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1], command_ttl_s=TTL, locker_configure_ttl_s=CONFIGURE_TTL)
    with p.session() as session:
        station = make_station(session)
        locker, _ = provision_locker(  # configure
            session, p.settings, locker_id=f"ttl-{station.id}", station_id=station.id,
            layout=LAYOUT,
        )  # fmt: skip
        sku = make_sku(session)
        cancelled, deposited, by_worker = (
            make_order(session, user=make_shopper(session), sku=sku, station_id=station.id)
            for _ in range(3)
        )
        ops = make_user(session, "ops")
        comp_id = session.scalars(select(Compartment.id).limit(1)).one()
        session.commit()
        ids = locker.id, cancelled.id, deposited.id, by_worker.id

    locker_id, cancelled_id, deposited_id, worker_order_id = ids
    with TestClient(create_app(p.settings, engine=p.engine)) as client:
        # The API process confirms two orders (its order hooks run with its settings).
        headers = auth_header(p.settings, ops)
        for order_id in (cancelled_id, deposited_id):
            moved = client.post(
                f"/api/v1/orders/{order_id}/transitions",
                json={"to": "confirmed", "reason": "group filled"},
                headers=headers,
            )
            assert moved.status_code == 200, moved.text

        # A worker task confirms the third and books compartments for all three (assign), as
        # the delivery-wave job does; settings reach it only through its sessions.
        with session_scope(session_factory_for(p.settings.database_url, p.settings)) as session:
            transition(session, worker_order_id, "confirmed", actor=TEST_ACTOR, reason="filled")
            for order_id in ids[1:]:
                order = session.get(Order, order_id)
                assert order is not None
                allocate(session, order, settings=settings_of(session), now=utcnow())

        # Back in the API: a cancel while reserved (revoke, from an order hook) and a remote
        # open (open).
        cancel = client.post(
            f"/api/v1/orders/{cancelled_id}/cancel", json={"reason": "x"}, headers=headers
        )
        assert cancel.status_code == 200, cancel.text
        opened = client.post(
            f"/api/v1/lockers/{locker_id}/compartments/{comp_id}/open",
            json={"reason": "cleaning"},
            headers=headers,
        )
        assert opened.status_code == 202, opened.text

    # The bridge process: the locker comes online (sync) and reports a deposit (arm_pickup).
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge subscribed")  # events are not retained
    proto = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        with p.session() as session:
            booking = session.scalars(
                select(Booking)
                .join(FulfilmentOrder, FulfilmentOrder.booking_id == Booking.id)
                .where(FulfilmentOrder.order_id == deposited_id)
            ).one()
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            deposit = proto.event("deposited", compartment=comp.label, order_id=booking.ref)
        proto.send_event(deposit)
        wait_for(lambda: proto.of_type("arm_pickup"), what="the pickup armed")
        assert proto.of_type("sync")
    finally:
        proto.close()

    ttl, configure = timedelta(seconds=TTL), timedelta(seconds=CONFIGURE_TTL)
    assert _lifetimes(p) == {
        "configure": {configure},
        "assign": {ttl},  # three orders, booked by the worker
        "revoke": {ttl},
        "open": {ttl},  # min(TTL, 300 s)
        "sync": {ttl},
        "arm_pickup": {ttl},
    }
    with p.session() as session:
        types = session.scalars(select(OutboxCommand.type)).all()
        assert sorted(types).count("assign") == 3


def test_a_session_without_settings_refuses_to_run_order_hooks(
    platform_for: Callable[..., Platform], mqtt_broker: tuple[str, int]
) -> None:
    p = platform_for(mqtt_broker[1], command_ttl_s=TTL)
    with p.session() as session:
        station = make_station(session)
        provision_locker(
            session, p.settings, locker_id=f"ttl-{station.id}", station_id=station.id,
            layout=LAYOUT,
        )  # fmt: skip
        order = make_order(
            session, user=make_shopper(session), sku=make_sku(session), station_id=station.id
        )
        session.commit()
        order_id = order.id
    unbound = make_session_factory(p.engine)  # an entry point that forgot its settings
    with pytest.raises(SettingsNotBoundError), session_scope(unbound) as session:
        transition(session, order_id, "confirmed", actor=TEST_ACTOR, reason="group filled")
    with p.session() as session:
        assert session.scalars(select(OutboxCommand.type)).all() == ["configure"]
