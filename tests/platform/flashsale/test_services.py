"""Flash-sale use cases: compensation when the DB step fails, lapsed orders, reconciliation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import make_shop, make_shoppers
from tuanbox.audit.services import Actor
from tuanbox.catalog.errors import InsufficientStockError
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.flashsale import reconcile, services
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.lua import Held
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.orders.services import transition


@pytest.fixture
def counters(redis_url: str) -> Iterator[FlashCounters]:
    c = FlashCounters(redis.Redis.from_url(redis_url), prefix=f"t{uuid.uuid4().hex[:10]}")
    yield c
    c.close()


def _sale(session: Session, *, stock: int, cap: int, limit: int = 1) -> FlashSale:
    shop = make_shop(session, stock=stock)
    now = utcnow()
    return services.create_sale(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=services.SaleSpec(
            sku_id=shop.sku_id,
            title="durian",
            price_cents=990,
            stock_cap=cap,
            per_user_limit=limit,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
        ),
    )


def _reserve(
    session: Session, counters: FlashCounters, sale: FlashSale, user: str, key: str
) -> services.Reserved:
    return services.reserve(
        session, counters, sale_id=sale.id, user_id=user, request_id=key, qty=1, now=utcnow()
    )


def test_db_failure_gives_the_redis_reservation_back(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=5)
    users = make_shoppers(db_session, 2)
    db_session.commit()
    _reserve(db_session, counters, sale, users[0], "k0")
    # A buyer the DB does not know: Redis admits them, the DB step fails (foreign key).
    with pytest.raises(IntegrityError):
        _reserve(db_session, counters, sale, "no-such-user", "k1")
    stock, per_user, held = counters.snapshot(sale.id)
    assert (
        stock == 4
        and set(held) == {services.request_key(users[0], "k0")}
        and "no-such-user" not in per_user
    )
    db_session.refresh(sale)
    assert sale.remaining == 4
    _reserve(db_session, counters, sale, users[1], "k2")  # the unit sells to the next buyer


def test_a_sale_needs_its_whole_cap_in_stock(db_session: Session) -> None:
    with pytest.raises(InsufficientStockError):
        _sale(db_session, stock=2, cap=5)


def test_repeated_request_id_replays_and_limits_hold(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=10)
    user = make_shoppers(db_session, 1)[0]
    db_session.commit()
    first = _reserve(db_session, counters, sale, user, "same")
    again = _reserve(db_session, counters, sale, user, "same")
    assert again.replayed and again.order_id == first.order_id
    with pytest.raises(services.FlashLimitError):
        _reserve(db_session, counters, sale, user, "other")


def test_lapsed_order_returns_units_and_reconcile_puts_them_back_in_redis(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=2)
    users = make_shoppers(db_session, 3)
    db_session.commit()
    got = _reserve(db_session, counters, sale, users[0], "a")
    _reserve(db_session, counters, sale, users[1], "b")
    with pytest.raises(services.SoldOutError):
        _reserve(db_session, counters, sale, users[2], "c")
    transition(
        db_session, got.order_id, "expired", actor=Actor("system", "system"), reason="unpaid"
    )
    db_session.commit()
    db_session.refresh(sale)
    assert sale.remaining == 1
    sku = db_session.get(Sku, sale.sku_id)
    assert sku is not None and sku.stock_reserved == 2  # back in the sale's pool, not the SKU's
    # Redis still holds "a" until reconciliation sees the released reservation.
    drift = reconcile.reconcile_sale(
        db_session, counters, sale, redis_now=counters.server_time(), grace_s=0
    )
    assert drift.released_orphans == 1
    stock, per_user, held = counters.snapshot(sale.id)
    assert (
        stock == 1
        and set(held) == {services.request_key(users[1], "b")}
        and users[0] not in per_user
    )
    _reserve(db_session, counters, sale, users[2], "c")  # the freed unit sells again


def test_reconcile_repairs_lost_and_drifted_counters(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=5)
    users = make_shoppers(db_session, 2)
    db_session.commit()
    _reserve(db_session, counters, sale, users[0], "a")
    # Redis restarted empty: the next reconciliation reloads it from the DB.
    counters.forget(sale.id)
    assert reconcile.reconcile_sale(
        db_session, counters, sale, redis_now=counters.server_time(), grace_s=30
    ).reloaded
    assert counters.snapshot(sale.id)[0] == 4
    # Drift: someone bumped the counter, and an orphan (process died before the DB step).
    keys = counters.keys(sale.id)
    counters._client.set(keys[0], 99)
    counters._client.hset(
        keys[2], "ghost", Held(users[1], 1, counters.server_time() - 120).encode()
    )
    drift = reconcile.reconcile_sale(
        db_session, counters, sale, redis_now=counters.server_time(), grace_s=30
    )
    assert drift.reloaded and drift.released_orphans == 1
    stock, per_user, held = counters.snapshot(sale.id)
    assert (
        stock == 4
        and per_user == {users[0]: 1}
        and set(held) == {services.request_key(users[0], "a")}
    )
    # A young unknown request is in flight: reconciliation leaves it alone.
    counters._client.hset(keys[2], "young", Held(users[1], 1, counters.server_time()).encode())
    counters._client.decr(keys[0])
    counters._client.hincrby(keys[1], users[1], 1)
    drift = reconcile.reconcile_sale(
        db_session, counters, sale, redis_now=counters.server_time(), grace_s=30
    )
    assert not drift.reloaded and drift.released_orphans == 0
    assert db_session.scalar(select(Reservation.request_id)) == services.request_key(users[0], "a")
    sku = db_session.get(Sku, sale.sku_id)
    assert sku is not None and sku.stock_reserved == 5  # the whole cap, set aside at creation


def test_ended_sale_closes_and_gives_unsold_units_back(
    db_session: Session, counters: FlashCounters
) -> None:
    from tuanbox.orders.services import transition as move

    sale = _sale(db_session, stock=10, cap=4)
    users = make_shoppers(db_session, 3)
    db_session.commit()
    first = _reserve(db_session, counters, sale, users[0], "a")
    _reserve(db_session, counters, sale, users[1], "b")
    later = sale.ends_at + timedelta(seconds=1)
    assert reconcile.close_ended_sales(db_session, now=later) == [sale.id]
    assert reconcile.close_ended_sales(db_session, now=later) == []
    db_session.commit()
    sku = db_session.get(Sku, sale.sku_id)
    assert sku is not None and sku.stock_reserved == 2  # the two sold units only
    with pytest.raises(services.SoldOutError):  # closed: the record refuses even if Redis admits
        services.reserve(
            db_session,
            counters,
            sale_id=sale.id,
            user_id=users[2],
            request_id="late",
            qty=1,
            now=sale.ends_at - timedelta(seconds=1),
        )
    # An order lapsing after the close returns its unit to the SKU, not to the closed sale.
    move(db_session, first.order_id, "expired", actor=Actor("system", "system"), reason="unpaid")
    db_session.flush()
    db_session.refresh(sale)
    db_session.refresh(sku)
    assert sale.remaining == 2 and sku.stock_reserved == 1


def test_db_guards_the_per_user_limit_even_when_redis_forgot(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=5)
    user = make_shoppers(db_session, 1)[0]
    db_session.commit()
    _reserve(db_session, counters, sale, user, "a")
    counters.load(sale.id, remaining=4, users={}, requests={})  # Redis lost the user's total
    with pytest.raises(services.FlashLimitError):
        _reserve(db_session, counters, sale, user, "b")
    stock, per_user, held = counters.snapshot(sale.id)
    assert stock == 4 and per_user == {} and held == {}  # compensated
    db_session.refresh(sale)
    assert sale.remaining == 4


def test_keys_are_per_shopper_and_a_released_key_replays(
    db_session: Session, counters: FlashCounters
) -> None:
    sale = _sale(db_session, stock=10, cap=5)
    alice, bob = make_shoppers(db_session, 2)
    db_session.commit()
    first = _reserve(db_session, counters, sale, alice, "same-key")
    assert not _reserve(db_session, counters, sale, bob, "same-key").replayed  # no clash
    transition(
        db_session, first.order_id, "expired", actor=Actor("system", "system"), reason="unpaid"
    )
    db_session.commit()
    db_session.refresh(sale)
    reconcile.reconcile_sale(
        db_session, counters, sale, redis_now=counters.server_time(), grace_s=0
    )
    # Redis forgot the key (released); the DB still knows it: the first answer comes back.
    again = _reserve(db_session, counters, sale, alice, "same-key")
    assert again.replayed and again.order_id == first.order_id
    stock, _, held = counters.snapshot(sale.id)
    db_session.refresh(sale)
    assert stock == sale.remaining == 4 and len(held) == 1
