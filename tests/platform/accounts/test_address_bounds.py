"""Encrypted personal data: the schema bounds the text, the column holds its ciphertext."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_user
from tuanbox.accounts.models import Address, User
from tuanbox.bounds import MAX_ADDRESS_CHARS
from tuanbox.crypto import PiiCipher
from tuanbox.settings import Settings


def _addresses_of(session: Session, user_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(Address).where(Address.user_id == user_id)
    return int(session.scalar(query) or 0)


def test_a_600_character_chinese_address_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    response = client.post(
        "/api/v1/me/addresses", json={"text": "中" * 600}, headers=auth_header(settings, shopper)
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "text"
    assert _addresses_of(db_session, shopper.id) == 0


def test_the_longest_address_of_four_byte_characters_round_trips(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """The worst case for the ciphertext: every character 4 bytes of UTF-8."""
    shopper = make_user(db_session)
    headers = auth_header(settings, shopper)
    text = "𠀀" * MAX_ADDRESS_CHARS
    response = client.post("/api/v1/me/addresses", json={"text": text}, headers=headers)
    assert response.status_code == 201, response.text
    assert [a["text"] for a in client.get("/api/v1/me/addresses", headers=headers).json()] == [text]


def test_the_key_id_is_bounded_so_a_phone_ciphertext_fits() -> None:
    with pytest.raises(ValidationError):
        make_settings(pii_key_id="k" * 33)
    with pytest.raises(ValidationError):
        make_settings(pii_key_id="k:1")
    settings = make_settings(pii_key_id="k" * 32)
    longest_e164 = "+" + "9" * 15
    token = PiiCipher(settings).encrypt(longest_e164, context="phone")
    column = User.__table__.c.phone_enc.type
    assert len(token) <= column.length  # type: ignore[attr-defined]
