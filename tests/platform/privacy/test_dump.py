"""A real pg_dump of a database filled through the API holds no phone, name or address."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, make_merchant, make_product, make_sku
from tests.platform.privacy.people import (
    ADDRESS_PARTS,
    ADDRESSES,
    NAMES,
    OPS_NAME,
    PHONE_FORMS,
    SHOPPER_NAME,
    SHOPPER_PHONE,
    STAFF_NAME,
    bearer,
    sign_in,
)
from tuanbox.accounts.models import Role
from tuanbox.accounts.services import create_staff
from tuanbox.api.app import create_app
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.services import handle_event, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

OPS = Actor("ops-fulfilment", "ops")
BYTEA = re.compile(r"\\\\x([0-9a-f]+)")


def _pg_dump(database_url: str, out: Path) -> str:
    """The whole database (schema and data) as `pg_dump` writes it, bytea values decoded too."""
    url = make_url(database_url).set(drivername="postgresql")
    binary = shutil.which("pg_dump")
    assert binary, "pg_dump (Debian postgresql-client) is not installed"
    subprocess.run(
        [binary, "--no-owner", "--file", str(out), url.render_as_string(hide_password=False)],
        check=True,
        timeout=120,
    )
    text = out.read_text(encoding="utf-8")
    decoded = [bytes.fromhex(h).decode("utf-8", "replace") for h in BYTEA.findall(text)]
    return "\n".join([text, *decoded])


def _leaks(dump: str, needles: tuple[str, ...]) -> list[str]:
    """Needles found as they are, as JSON writes them (`\\u5f20…` for CJK) or as COPY then
    escapes that (`\\\\u5f20…`)."""
    found = []
    for needle in needles:
        escaped = json.dumps(needle)[1:-1]
        forms = {needle, escaped, escaped.replace("\\", "\\\\")}
        if any(form in dump for form in forms):
            found.append(needle)
    return found


def _fill(client: TestClient, settings: Settings, factory: Callable[[], object]) -> str:
    """Staff, a shopper with a name, addresses, orders, a payment, a return: all via the API
    (the catalog and the locker side by their services); returns the shopper's id."""
    with factory() as session:  # type: ignore[attr-defined]
        create_staff(
            session,
            Actor("cli", "admin"),
            role=Role.ADMIN,
            login="root.admin",
            password=STAFF_PASSWORD,
        )
        merchant = make_merchant(session)
        sku = make_sku(session, make_product(session, merchant), stock=10, price_cents=2500)
        session.commit()
        merchant_id, sku_id = merchant.id, sku.id
    grant = {"grant_type": "password", "login": "root.admin", "password": STAFF_PASSWORD}
    admin = client.post("/api/v1/auth/token", json=grant)
    assert admin.status_code == 200, admin.text
    for body in (
        {
            "role": "merchant_staff",
            "login": "green.valley.lin",
            "merchant_id": merchant_id,
            "display_name": STAFF_NAME,
            "password": STAFF_PASSWORD,
        },
        {"role": "ops", "login": "ops.zhou", "display_name": OPS_NAME, "password": STAFF_PASSWORD},
    ):
        made = client.post("/api/v1/users", json=body, headers=bearer(admin.json()))
        assert made.status_code == 201, made.text
        assert made.json()["display_name"] == body["display_name"]

    with factory() as session:  # type: ignore[attr-defined]
        tokens = sign_in(client, session, settings, SHOPPER_PHONE)
    shopper = bearer(tokens)
    refreshed = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200
    named = client.patch("/api/v1/me", json={"display_name": SHOPPER_NAME}, headers=shopper)
    assert named.status_code == 200, named.text
    for label, text in zip(("home", "work"), ADDRESSES, strict=True):
        # With an Idempotency-Key: the reply kept for a retry holds the address.
        headers = {**shopper, "Idempotency-Key": f"address-{label}"}
        body = {"label": label, "text": text}
        saved = client.post("/api/v1/me/addresses", json=body, headers=headers)
        assert saved.status_code == 201 and saved.json()["text"] == text, saved.text
        again = client.post("/api/v1/me/addresses", json=body, headers=headers)
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == saved.json()
    listed = client.get("/api/v1/me/addresses", headers=shopper).json()
    assert sorted(a["text"] for a in listed) == sorted(ADDRESSES)
    me = client.get("/api/v1/me", headers=shopper).json()
    assert me["phone"] == "+8613912345678" and me["display_name"] == SHOPPER_NAME

    order_ids = []
    for n in range(2):
        headers = {**shopper, "Idempotency-Key": f"buy-{n}"}
        bought = client.post("/api/v1/orders", json={"sku_id": sku_id, "qty": 1}, headers=headers)
        assert bought.status_code == 201, bought.text
        again = client.post("/api/v1/orders", json={"sku_id": sku_id, "qty": 1}, headers=headers)
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == bought.json()
        order_ids.append(bought.json()["id"])
    with factory() as session:  # type: ignore[attr-defined]
        sim = SimPay(settings)
        order = session.get(Order, order_ids[0])
        intent = start_checkout(session, order, sim)
        body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
        handle_event(session, sim.verify_webhook(headers, body))
        for status in ("confirmed", "allocated", "ready_for_pickup", "picked_up"):
            transition(session, order_ids[0], status, actor=OPS, reason="locker flow")
        session.commit()
    returned = client.post(
        f"/api/v1/orders/{order_ids[0]}/return",
        json={"method": "locker", "reason": "arrived bruised"},
        headers={**shopper, "Idempotency-Key": "return-1"},
    )
    assert returned.status_code == 201, returned.text
    exported = client.get("/api/v1/me/export", headers=shopper)
    assert exported.status_code == 200
    assert exported.json()["account"]["display_name"] == SHOPPER_NAME
    return str(tokens["user"]["id"])


def test_dump_holds_no_plaintext_phone_name_or_address(
    fresh_database: Callable[[], str], redis_url: str, tmp_path: Path
) -> None:
    url = fresh_database()
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
    )
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine, settings)
        with TestClient(create_app(settings)) as client:
            shopper_id = _fill(client, settings, factory)
        with engine.connect() as conn:
            counts = {
                table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                for table in (
                    "users",
                    "addresses",
                    "notifications",
                    "idempotency_keys",
                    "refresh_tokens",
                    "audit_log",
                    "return_requests",
                    "orders",
                )
            }
    finally:
        engine.dispose()
    # The data is there (the dump is not empty by accident)...
    assert all(counts.values()), counts
    dump = _pg_dump(url, tmp_path / "dump.sql")
    assert shopper_id in dump and "arrived bruised" in dump
    # ...and none of it names, locates or rings anyone.
    assert _leaks(dump, PHONE_FORMS) == []
    assert _leaks(dump, NAMES) == []
    assert _leaks(dump, ADDRESSES + ADDRESS_PARTS) == []
