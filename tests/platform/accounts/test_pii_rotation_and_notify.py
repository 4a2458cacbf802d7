"""Rotating the PII key re-encrypts stored phones and addresses; notices are recorded."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import make_user
from tuanbox.accounts.models import Address, User
from tuanbox.accounts.services import add_address, phone_of, read_address, rotate_pii
from tuanbox.notifications.models import Notification
from tuanbox.notifications.services import notify
from tuanbox.settings import Settings


def test_rotation_moves_everything_to_the_new_key(db_session: Session, settings: Settings) -> None:
    old = make_settings(
        database_url=settings.database_url, pii_key="old-" + "p" * 40, pii_key_id="k0"
    )
    user = make_user(db_session, phone="+8613700000001", settings=old)
    add_address(db_session, old, user.id, "北京市朝阳区 建国路 88 号")
    new = make_settings(
        database_url=settings.database_url,
        pii_key="new-" + "q" * 40,
        pii_key_id="k2",
        pii_keys={"k0": "old-" + "p" * 40},
    )
    assert rotate_pii(db_session, new) == 2
    assert rotate_pii(db_session, new) == 0
    db_session.flush()
    raw_phone = db_session.scalar(sa.select(User.phone_enc).where(User.id == user.id))
    raw_address = db_session.scalar(
        sa.select(Address.address_enc).where(Address.user_id == user.id)
    )
    assert raw_phone is not None and raw_phone.startswith("k2:")
    assert raw_address is not None and raw_address.startswith("k2:")
    without_old = make_settings(pii_key="new-" + "q" * 40, pii_key_id="k2")
    assert phone_of(without_old, user) == "+8613700000001"
    row = db_session.scalars(sa.select(Address).where(Address.user_id == user.id)).one()
    assert read_address(without_old, row) == "北京市朝阳区 建国路 88 号"


def test_notify_records_the_notice(db_session: Session, settings: Settings) -> None:
    user = make_user(db_session)
    notify(
        db_session, user.id, "pickup_ready", {"locker": "L-7", "code": "1234"}, settings=settings
    )
    db_session.flush()
    rows = db_session.scalars(sa.select(Notification).where(Notification.user_id == user.id)).all()
    assert [(r.channel, r.template, r.payload["locker"]) for r in rows] == [
        ("app", "pickup_ready", "L-7")
    ]
    assert "code" not in rows[0].payload and "1234" not in (rows[0].secrets_enc or "")
