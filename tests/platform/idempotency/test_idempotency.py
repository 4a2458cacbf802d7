"""Idempotency-Key: replay, reuse with another body, concurrent duplicates, failures release."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_sku, make_user
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.errors import ConflictError
from tuanbox.idempotency import services
from tuanbox.idempotency.errors import IdempotencyInProgressError, IdempotencyKeyReusedError
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

CIPHER = PiiCipher(make_settings())


def _orders(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(Order)) or 0)


def test_replay_returns_the_first_response(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, stock=5)
    h = {**auth_header(settings, shopper), "Idempotency-Key": "buy-1"}
    first = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=h)
    second = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert (
        second.headers["Idempotent-Replayed"] == "true"
        and "Idempotent-Replayed" not in first.headers
    )
    assert _orders(db_session) == 1
    db_session.refresh(sku)
    assert sku.stock_reserved == 1

    reused = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 2}, headers=h)
    assert reused.status_code == 422 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"

    # Keys belong to their principal: another shopper's "buy-1" is a different key.
    other = {**auth_header(settings, make_user(db_session)), "Idempotency-Key": "buy-1"}
    assert (
        client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=other).status_code
        == 201
    )
    assert _orders(db_session) == 2
    # Without a key every POST creates.
    plain = auth_header(settings, shopper)
    client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=plain)
    client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=plain)
    assert _orders(db_session) == 4


def test_failed_request_releases_the_key(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, stock=1)
    db_session.commit()  # the failing request rolls its session back; keep the fixtures
    h = {**auth_header(settings, shopper), "Idempotency-Key": "buy-2"}
    too_many = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 2}, headers=h)
    assert too_many.status_code == 409
    assert db_session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 0
    # The client fixes nothing and retries the same body: it runs again (and fails again).
    assert (
        client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 2}, headers=h).status_code
        == 409
    )
    # A corrected body under the same key is accepted because nothing was stored.
    assert (
        client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=h).status_code
        == 201
    )


def test_key_too_long_is_422(client: TestClient, db_session: Session, settings: Settings) -> None:
    h = {**auth_header(settings, make_user(db_session)), "Idempotency-Key": "k" * 256}
    r = client.post("/api/v1/orders", json={"sku_id": "x", "qty": 1}, headers=h)
    assert r.status_code == 422


def test_concurrent_duplicate_gets_409_in_progress(fresh_database: Callable[[], str]) -> None:
    """The second request arrives while the first is still working: 409, work runs once."""
    engine = make_engine(fresh_database())
    factory = make_session_factory(engine)
    inside, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow_work() -> tuple[int, object]:
        runs.append("work")
        inside.set()
        assert release.wait(timeout=30), "test did not release the first request"
        return 201, {"ok": True}

    def call(work: Callable[[], tuple[int, object]]) -> services.StoredResponse:
        with factory() as session:
            return services.run(
                session,
                principal="u1",
                key="k1",
                method="POST",
                path="/x",
                payload={"a": 1},
                work=work,
                cipher=CIPHER,
            )

    results: list[services.StoredResponse] = []
    first = threading.Thread(target=lambda: results.append(call(slow_work)))
    first.start()
    try:
        assert inside.wait(timeout=30)
        with pytest.raises(IdempotencyInProgressError) as info:
            call(lambda: (500, {"ran": "twice"}))
        assert info.value.status == 409
        with pytest.raises(IdempotencyKeyReusedError), factory() as session:
            services.run(
                session,
                principal="u1",
                key="k1",
                method="POST",
                path="/x",
                payload={"a": 2},
                work=lambda: (201, {}),
                cipher=CIPHER,
            )
    finally:
        release.set()
        first.join(timeout=30)
    assert [r.status for r in results] == [201]
    replay = call(lambda: (500, {"ran": "twice"}))
    assert (replay.status, replay.body, replay.replayed) == (201, {"ok": True}, True)
    assert runs == ["work"]
    engine.dispose()


def test_many_concurrent_duplicates_create_one_order(fresh_database: Callable[[], str]) -> None:
    engine = make_engine(fresh_database(), pool_size=30, max_overflow=0)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        user_id = make_user(session).id
        sku_id = make_sku(session, stock=100).id
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def buy() -> None:
        from tuanbox.orders.services import create_order

        barrier.wait()
        with factory() as session:

            def work() -> tuple[int, object]:
                order = create_order(
                    session, user_id=user_id, sku_id=sku_id, qty=1, unit_price_cents=100
                )
                return 201, {"id": order.id}

            try:
                stored = services.run(
                    session,
                    principal=user_id,
                    key="same",
                    method="POST",
                    path="/o",
                    payload={},
                    work=work,
                    cipher=CIPHER,
                )
                outcomes.append("replayed" if stored.replayed else "created")
            except ConflictError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=buy) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with factory() as session:
        assert _orders(session) == 1
    engine.dispose()
    assert outcomes.count("created") == 1
    assert set(outcomes) <= {"created", "replayed", "IDEMPOTENCY_IN_PROGRESS"}
    assert len(outcomes) == 20


def test_abandoned_claim_is_taken_over(db_session: Session) -> None:
    """A request that crashed mid-work leaves an in-progress claim; after the stale time the
    same request may run again (a different body still may not)."""
    old = utcnow() - timedelta(minutes=5)
    digest = services.request_hash("POST", "/x", {"a": 1})
    db_session.add(
        IdempotencyKey(
            principal="u9",
            key="k9",
            method="POST",
            path="/x",
            request_hash=digest,
            state="in_progress",
            created_at=old,
            claimed_at=old,
        )
    )
    db_session.flush()

    def run(payload: dict[str, int], stale_after_s: int) -> services.StoredResponse:
        return services.run(
            db_session,
            principal="u9",
            key="k9",
            method="POST",
            path="/x",
            payload=payload,
            work=lambda: (201, {"done": True}),
            cipher=CIPHER,
            stale_after_s=stale_after_s,
        )

    with pytest.raises(IdempotencyInProgressError):
        run({"a": 1}, stale_after_s=600)
    with pytest.raises(IdempotencyKeyReusedError):
        run({"a": 2}, stale_after_s=60)
    stored = run({"a": 1}, stale_after_s=60)
    assert (stored.status, stored.replayed) == (201, False)
    assert run({"a": 1}, stale_after_s=60).replayed is True
