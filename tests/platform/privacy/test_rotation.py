"""Key rotation: the background task re-encrypts every row while the API keeps reading and
writing; batches resume where they stopped; a concurrent write is never clobbered."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, make_user
from tests.platform.privacy.people import bearer, sign_in
from tuanbox.accounts.models import Address, Role, User
from tuanbox.accounts.services import create_staff, display_name_of
from tuanbox.api.app import create_app
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.crypto import PiiCipher
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.notifications.models import Notification
from tuanbox.privacy import rotation
from tuanbox.privacy.models import PiiRotation
from tuanbox.settings import Settings

OLD_KEY = "old-pii-key-" + "o" * 40
NEW_KEY = "new-pii-key-" + "n" * 40
PHONES = [f"+86 137 0000 {n:04d}" for n in range(1, 6)]


def _settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "rate_limit_prefix": f"test:{uuid.uuid4().hex}:",
        "media_dir": str(tmp_path / "media"),
        "pii_key": OLD_KEY,
        "pii_key_id": "k1",
        # The test signs the same phones in over and over while the sweep runs.
        "otp_per_phone_per_hour": 10_000,
        "auth_token_per_phone_per_min": 10_000,
    }
    return make_settings(**{**values, **overrides})


def _rotated(settings: Settings) -> Settings:
    """The same deployment after the key changed: k2 current, k1 kept for reading."""
    return settings.model_copy(
        update={
            "pii_key": SecretStr(NEW_KEY),
            "pii_key_id": "k2",
            "pii_keys": {"k1": SecretStr(OLD_KEY)},
            "pii_rotate_batch": 1,  # many small transactions for the API to run between
        }
    )


def _new_only(settings: Settings) -> Settings:
    """After the rotation: the old key dropped."""
    return settings.model_copy(update={"pii_keys": {}})


def _ciphertexts(session: Session) -> list[str]:
    """Every stored ciphertext of personal data."""
    out: list[str] = []
    for column in (
        User.phone_enc,
        User.display_name_enc,
        Address.address_enc,
        Notification.secrets_enc,
        IdempotencyKey.response_enc,
    ):
        out += [v for v in session.scalars(sa.select(column).where(column.is_not(None)))]
    return out


@pytest.fixture
def world(
    fresh_database: Callable[[], str], redis_url: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """A database filled under key k1 through the API: shoppers with names and addresses
    (their replies kept for retries), staff, texts; and rows from before 0018 in clear."""
    settings = _settings(fresh_database(), tmp_path, redis_url=redis_url)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    people: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client, factory() as session:
        for n, phone in enumerate(PHONES):
            tokens = sign_in(client, session, settings, phone)
            h = bearer(tokens)
            assert client.patch(
                "/api/v1/me", json={"display_name": f"买家{n}"}, headers=h
            ).is_success
            for label in ("home", "work"):
                body = {"label": label, "text": f"{label} {n}, 88 Lianhua Rd"}
                r = client.post(
                    "/api/v1/me/addresses",
                    json=body,
                    headers={**h, "Idempotency-Key": f"{label}-{n}"},
                )
                assert r.status_code == 201, r.text
            texts = {f"{label} {n}, 88 Lianhua Rd" for label in ("home", "work")}
            people.append(
                {"id": tokens["user"]["id"], "phone": phone, "name": f"买家{n}", "texts": texts}
            )
        create_staff(
            session,
            Actor("cli", "admin"),
            role=Role.OPS,
            login="ops.lin",
            password=STAFF_PASSWORD,
            display_name="林 Ops",
            settings=settings,
        )
        legacy = make_user(session)  # display_name in clear, as before 0018
        session.add(
            IdempotencyKey(
                principal=legacy.id,
                key="old",
                method="POST",
                path="/x",
                request_hash="0" * 64,
                state="done",
                response_status=201,
                response_body={"text": "Old Street 1"},
            )
        )
        session.commit()
        people.append({"id": legacy.id, "phone": None, "name": legacy.display_name, "texts": set()})
    yield {"settings": settings, "engine": engine, "factory": factory, "people": people}
    engine.dispose()


def _check_reads(
    client: TestClient, session: Session, settings: Settings, people: list[dict[str, Any]]
) -> int:
    """Every shopper signs in by phone (same account), reads their name and addresses."""
    reads = 0
    for person in people:
        if person["phone"] is None:
            row = session.get(User, person["id"], populate_existing=True)
            assert row is not None and display_name_of(settings, row) == person["name"]
            continue
        tokens = sign_in(client, session, settings, person["phone"])
        assert tokens["user"]["id"] == person["id"], "same phone, same account"
        h = bearer(tokens)
        me = client.get("/api/v1/me", headers=h).json()
        assert me["display_name"] == person["name"]
        texts = {a["text"] for a in client.get("/api/v1/me/addresses", headers=h).json()}
        assert texts >= person["texts"]
        reads += 1
    return reads


def test_background_task_rotates_every_row_while_the_api_reads_and_writes(
    world: dict[str, Any],
) -> None:
    import tuanbox.privacy.tasks  # noqa: F401  registers the shared tasks
    from tuanbox.worker.app import create_celery

    new = _rotated(world["settings"])
    factory = world["factory"]
    with factory() as session:
        before = _ciphertexts(session)
        stale = rotation.remaining(session, new)
    assert before and all(c.startswith("k1:") for c in before)
    # Rows to rotate: 5 shoppers and the staff member (phone and/or name), the legacy name,
    # 10 addresses, the texted codes, 10 kept replies and the legacy one.
    assert stale["users"] == 7 and stale["addresses"] == 10 and stale["idempotency_keys"] == 11

    celery = create_celery(new)
    outcome: list[Any] = []
    task = threading.Thread(target=lambda: outcome.append(celery.tasks["pii.rotate"].apply()))
    reads = writes = 0
    with TestClient(create_app(new)) as client, factory() as session:
        task.start()
        while task.is_alive() or reads == 0:
            reads += _check_reads(client, session, new, world["people"][:2])
            # A normal write during the sweep: written under k2 at once, never overwritten.
            person = world["people"][0]
            h = bearer(sign_in(client, session, new, person["phone"]))
            r = client.post("/api/v1/me/addresses", json={"text": f"extra {writes}"}, headers=h)
            assert r.status_code == 201, r.text
            writes += 1
        task.join()
    result = outcome[0].get()
    assert result["done"] and result["remaining"] == 0, result

    with factory() as session:
        after = _ciphertexts(session)
        # The legacy name and reply are encrypted now; the writes came in under k2.
        assert len(after) >= len(before) + 2 + writes
        assert all(c.startswith("k2:") for c in after)
        assert session.scalar(sa.select(sa.func.count()).where(User.display_name.is_not(None))) == 0
        assert (
            session.scalar(
                sa.select(sa.func.count()).where(
                    IdempotencyKey.response_body.is_not(None),
                    sa.cast(IdempotencyKey.response_body, sa.Text) != "null",
                )
            )
            == 0
        )
        cipher = PiiCipher(new)
        for person in world["people"][:-1]:
            user = session.get(User, person["id"])
            assert user is not None
            assert user.phone_hash == cipher.blind_index(person["phone"].replace(" ", "")), (
                "re-indexed under k2"
            )
        run = session.get(PiiRotation, "k2")
        assert run is not None and run.finished_at is not None and run.remaining == 0
        # Each stale row once: none twice, none skipped (no write touched a stale row).
        assert (run.rotated, run.skipped, run.failed) == (sum(stale.values()), 0, 0)
        audited = session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.subject_type == "pii_key")
            .order_by(AuditEntry.id)
        ).all()
        assert [(a.action, a.actor_id, a.subject_id) for a in audited] == [
            ("pii.rotate.start", "system:privacy", "k2"),
            ("pii.rotate.finish", "system:privacy", "k2"),
        ]

    # The old key can go: everything reads, sign-in finds the same accounts, replies replay.
    only_new = _new_only(new)
    with TestClient(create_app(only_new)) as client, factory() as session:
        assert _check_reads(client, session, only_new, world["people"]) == len(PHONES)
        h = bearer(sign_in(client, session, only_new, world["people"][1]["phone"]))
        body = {"label": "home", "text": "home 1, 88 Lianhua Rd"}
        replay = client.post(
            "/api/v1/me/addresses", json=body, headers={**h, "Idempotency-Key": "home-1"}
        )
        assert (
            replay.headers.get("Idempotent-Replayed") == "true"
            and replay.json()["text"] == body["text"]
        )
