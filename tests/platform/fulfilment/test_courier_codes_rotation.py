"""Courier codes follow a PII key rotation: re-encrypted under the new key, same code shown."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.fulfilment.fx import (
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.crypto import PiiCipher
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.privacy import rotation
from tuanbox.settings import Settings


def test_rotation_reencrypts_deposit_and_retrieval_codes(
    db_session: Session, settings: Settings
) -> None:
    bind_settings(db_session, settings)
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "M")])
    order = make_order(
        db_session, user=make_shopper(db_session), sku=make_sku(db_session, "M"),
        station_id=station.id,
    )  # fmt: skip
    confirm(db_session, order)
    booking = db_session.scalars(select(Booking).where(Booking.locker_id == locker.id)).one()
    deposit = courier_code(settings, booking)
    cipher = PiiCipher(settings)
    booking.retrieval_code_enc = codes.seal(cipher, booking.ref, "retrieval", "246810")
    db_session.flush()
    old_id = settings.pii_key_id

    rotated = settings.model_copy(
        update={
            "pii_key": SecretStr("new-pii-key-" + "n" * 40),
            "pii_key_id": "k-new",
            "pii_keys": {old_id: settings.pii_key},
        }
    )
    assert rotation.rotate_once(db_session, rotated) >= 1
    db_session.expire_all()
    booking = db_session.scalars(select(Booking).where(Booking.locker_id == locker.id)).one()
    assert booking.deposit_code_enc.startswith("k-new:")
    assert (booking.retrieval_code_enc or "").startswith("k-new:")
    new_only = rotated.model_copy(update={"pii_keys": {}})
    assert courier_code(new_only, booking) == deposit
    assert courier_code(new_only, booking, "retrieval") == "246810"
    assert rotation.rotate_once(db_session, rotated) == 0
