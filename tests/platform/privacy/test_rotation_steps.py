"""Rotation batch by batch: readable after every batch, resumable, safe with concurrent writes
and with a second worker on the same sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_user
from tuanbox.accounts.models import Address, User
from tuanbox.accounts.services import add_address, read_address, set_display_name, user_by_phone
from tuanbox.crypto import PiiCipher
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.privacy import rotation, targets
from tuanbox.privacy.models import PiiRotation
from tuanbox.settings import Settings

OLD_KEY = "old-pii-key-" + "o" * 40
NEW_KEY = "new-pii-key-" + "n" * 40


def _old(settings: Settings) -> Settings:
    return settings.model_copy(update={"pii_key": SecretStr(OLD_KEY), "pii_key_id": "k1"})


@pytest.fixture(name="settings")
def rotated_settings(database_url: str, tmp_path: Path) -> Settings:
    """The API runs on the new key (k2), the old one (k1) kept for reading."""
    import uuid

    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        pii_key=NEW_KEY,
        pii_key_id="k2",
        pii_keys={"k1": OLD_KEY},
    )


def _shopper(session: Session, old: Settings, n: int) -> tuple[User, str, str]:
    phone = f"+861360000{n:04d}"
    user = make_user(session, phone=phone, settings=old)
    set_display_name(old, user, f"顾客 {n}")
    text = f"{n} Lotus Rd"
    add_address(session, old, user.id, text)
    session.flush()
    return user, phone, text


def test_every_batch_leaves_every_row_readable(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    old = _old(settings)
    people = [_shopper(db_session, old, n) for n in range(4)]
    steps = 0
    while True:
        step = rotation.step(db_session, settings, batch=1)
        db_session.commit()
        steps += 1
        for user, phone, text in people:
            h = auth_header(settings, user)
            me = client.get("/api/v1/me", headers=h).json()
            assert (me["phone"], me["display_name"]) == (phone, f"顾客 {phone[-1]}")
            assert [a["text"] for a in client.get("/api/v1/me/addresses", headers=h).json()] == [
                text
            ]
            found = user_by_phone(db_session, PiiCipher(settings), phone)
            assert found is not None and found.id == user.id
        if step.done:
            break
    assert steps > 8  # one row per batch: the reads above ran between them
    run = db_session.get(PiiRotation, "k2")
    assert run is not None and run.finished_at is not None and run.remaining == 0
    assert set(run.cursors) == {t.name for t in targets.TARGETS}
    # Done means done: another step changes nothing and says so.
    assert rotation.step(db_session, settings).done


def test_a_write_between_read_and_update_is_not_clobbered(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    url = fresh_database()
    new = make_settings(
        database_url=url, pii_key=NEW_KEY, pii_key_id="k2", pii_keys={"k1": OLD_KEY}
    )
    engine = make_engine(url)
    factory = make_session_factory(engine, new)
    try:
        with factory() as session:
            user, _, _ = _shopper(session, _old(new), 1)
            session.commit()
            user_id = user.id
        cipher = PiiCipher(new)
        with factory() as worker, factory() as request:
            target = targets.Addresses()
            planned = rotation.plan(worker, cipher, target, None, 10)
            assert len(planned.rewrites) == 1
            # Meanwhile the shopper's app rewrites that address (under the current key).
            row = request.scalars(sa.select(Address).where(Address.user_id == user_id)).one()
            row.address_enc = cipher.encrypt("9 New Rd", context=f"address:{user_id}")
            request.commit()
            changed, skipped, failed = rotation.apply(worker, planned.rewrites)
            worker.commit()
        assert (changed, skipped, failed) == (0, 1, [])
        with factory() as session:
            row = session.scalars(sa.select(Address).where(Address.user_id == user_id)).one()
            assert read_address(new, row) == "9 New Rd"
    finally:
        engine.dispose()


def test_two_workers_and_a_restart_rotate_each_row_once(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    url = fresh_database()
    new = make_settings(
        database_url=url, pii_key=NEW_KEY, pii_key_id="k2", pii_keys={"k1": OLD_KEY}
    )
    engine = make_engine(url)
    factory = make_session_factory(engine, new)
    try:
        with factory() as session:
            for n in range(24):
                _shopper(session, _old(new), n)
            session.commit()
            stale = sum(rotation.remaining(session, new).values())
        assert stale == 48  # 24 users (phone and name), 24 addresses

        # A first worker does two batches and dies; its progress is in the sweep row.
        stop = iter([False, True])
        first = rotation.sweep(
            lambda: session_scope(factory), new, batch=4, until=lambda: next(stop)
        )
        assert not first.done
        with factory() as session:
            run = session.get(PiiRotation, "k2")
            assert run is not None and run.rotated == 8 and not run.cursors["users"]["done"]

        # Two workers take it up at once (beat resumed it while an operator ran it).
        errors: list[BaseException] = []

        def work() -> None:
            try:
                rotation.sweep(lambda: session_scope(factory), new, batch=4)
            except BaseException as exc:  # reported below, with the thread's traceback gone
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        with factory() as session:
            run = session.get(PiiRotation, "k2")
            assert run is not None and run.remaining == 0
            assert (run.rotated, run.skipped, run.failed) == (stale, 0, 0)
            assert rotation.remaining(session, new) == {t.name: 0 for t in targets.TARGETS}
    finally:
        engine.dispose()


def test_unreadable_rows_are_counted_and_left_not_retried_forever(
    db_session: Session, settings: Settings
) -> None:
    lost = settings.model_copy(
        update={"pii_key": SecretStr("lost-" + "l" * 40), "pii_key_id": "k0"}
    )
    user, _, _ = _shopper(db_session, lost, 7)  # under k0, a key nobody configured any more
    step = rotation.step(db_session, settings, batch=50)
    assert step.target == "users" and step.failed == 1 and step.changed == 0
    while not step.done:
        step = rotation.step(db_session, settings, batch=50)
    run = db_session.get(PiiRotation, "k2")
    assert run is not None and run.failed == 2 and run.remaining == 2  # the phone+name, the address
    db_session.refresh(user)
    assert user.phone_enc is not None and user.phone_enc.startswith("k0:")
