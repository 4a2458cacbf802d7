"""Phones stored before E.164 are re-stored and re-indexed; clashing accounts are reported."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.platform.factories import make_user
from tuanbox.accounts.admin import renormalise_phones
from tuanbox.accounts.models import User
from tuanbox.cli import app
from tuanbox.crypto import PiiCipher
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.settings import Settings


def test_legacy_spellings_move_to_e164(db_session: Session, settings: Settings) -> None:
    cipher = PiiCipher(settings)
    legacy = make_user(db_session, phone="13900000021", settings=settings)
    twin = make_user(db_session, phone="+8613900000022", settings=settings)
    clash = make_user(db_session, phone="8613900000022", settings=settings)
    done = make_user(db_session, phone="+8613900000023", settings=settings)
    stored_before = done.phone_enc

    after, changed, duplicates = "", 0, []
    while True:
        batch = renormalise_phones(db_session, settings, after_id=after, batch=2)
        changed += batch.changed
        duplicates += batch.duplicates
        if batch.last_id is None:
            break
        after = batch.last_id
    db_session.expire_all()
    assert legacy.phone_hash == cipher.blind_index("+8613900000021")
    assert cipher.decrypt(legacy.phone_enc or "", context="phone") == "+8613900000021"
    assert (clash.id, twin.id) in duplicates, "one person, two accounts: reported, not merged"
    assert clash.phone_hash == cipher.blind_index("8613900000022"), "left for a person"
    assert done.phone_enc == stored_before, "already E.164: untouched"
    assert changed >= 1


def test_cli_step(fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        user = make_user(session, phone="13900000031", settings=settings)
        user_id = user.id
    monkeypatch.setenv("TUANBOX_DATABASE_URL", url)
    monkeypatch.setenv("TUANBOX_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("TUANBOX_PII_KEY", settings.pii_key.get_secret_value())
    from tuanbox.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["users", "renormalise-phones"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "re-stored 1 phones in E.164" in result.output
    with session_scope(make_session_factory(engine)) as session:
        row = session.get(User, user_id)
        assert row is not None
        assert row.phone_hash == PiiCipher(settings).blind_index("+8613900000031")
    engine.dispose()
