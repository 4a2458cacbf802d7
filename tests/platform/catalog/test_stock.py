"""Stock reservations: guarded updates, constraints, and no oversell under real concurrency."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.platform.factories import make_sku
from tuanbox.catalog.errors import InsufficientStockError, SkuNotFoundError, StockInvariantError
from tuanbox.catalog.models import Sku
from tuanbox.catalog.stock import commit_stock, release_stock, reserve_many, reserve_stock
from tuanbox.db.engine import make_engine, make_session_factory


def _counts(session: Session, sku_id: str) -> tuple[int, int]:
    row = session.execute(
        sa.select(Sku.stock_on_hand, Sku.stock_reserved).where(Sku.id == sku_id)
    ).one()
    return int(row[0]), int(row[1])


def test_reserve_release_commit(db_session: Session) -> None:
    sku = make_sku(db_session, stock=5)
    reserve_stock(db_session, sku.id, 3)
    assert sku.stock_reserved == 3, "the loaded object is refreshed after the UPDATE"
    with pytest.raises(InsufficientStockError) as info:
        reserve_stock(db_session, sku.id, 3)
    assert info.value.code == "INSUFFICIENT_STOCK" and info.value.status == 409
    assert _counts(db_session, sku.id) == (5, 3), "a refused reservation changes nothing"
    release_stock(db_session, sku.id, 1)
    commit_stock(db_session, sku.id, 2)
    assert _counts(db_session, sku.id) == (3, 0)
    with pytest.raises(StockInvariantError):
        release_stock(db_session, sku.id, 1)
    with pytest.raises(StockInvariantError):
        commit_stock(db_session, sku.id, 1)
    with pytest.raises(SkuNotFoundError):
        reserve_stock(db_session, "no-such-sku", 1)
    with pytest.raises(ValueError, match="positive"):
        reserve_stock(db_session, sku.id, 0)


def test_database_refuses_impossible_counts(db_session: Session) -> None:
    sku = make_sku(db_session, stock=2)
    for values in ({"stock_reserved": 3}, {"stock_on_hand": -1}, {"price_cents": -5}):
        with pytest.raises(IntegrityError), db_session.begin_nested():
            db_session.execute(sa.update(Sku).where(Sku.id == sku.id).values(**values))


def test_reserve_many_is_all_or_nothing(db_session: Session) -> None:
    a, b = make_sku(db_session, stock=2), make_sku(db_session, stock=1)
    with pytest.raises(InsufficientStockError), db_session.begin_nested():
        reserve_many(db_session, {a.id: 2, b.id: 2})
    assert _counts(db_session, a.id) == (2, 0) and _counts(db_session, b.id) == (1, 0)
    reserve_many(db_session, {b.id: 1, a.id: 1})
    assert _counts(db_session, a.id) == (2, 1) and _counts(db_session, b.id) == (1, 1)


def _hammer(workers: int, job: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def run(i: int) -> None:
        start.wait()
        try:
            job(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"
    return errors


def test_concurrent_reservations_never_oversell(fresh_database: Callable[[], str]) -> None:
    engine = make_engine(fresh_database(), pool_size=40, max_overflow=0)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        sku_id = make_sku(session, stock=25).id
    won: list[int] = []
    lock = threading.Lock()

    def buy(i: int) -> None:
        qty = 1 + i % 3
        with factory() as session:
            try:
                with session.begin():
                    reserve_stock(session, sku_id, qty)
            except InsufficientStockError:
                return
        with lock:
            won.append(qty)

    errors = _hammer(40, buy)
    assert errors == []
    with factory() as session:
        on_hand, reserved = _counts(session, sku_id)
    engine.dispose()
    assert on_hand == 25
    assert reserved == sum(won) <= 25
    assert 25 - reserved < 3, "stock left over only when no remaining buyer's qty fitted"


def test_concurrent_multi_sku_reservations_do_not_deadlock(
    fresh_database: Callable[[], str],
) -> None:
    engine = make_engine(fresh_database(), pool_size=20, max_overflow=0)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        ids = [make_sku(session, stock=100).id for _ in range(4)]

    def basket(i: int) -> None:
        rng = random.Random(i)
        picked = rng.sample(ids, 3)  # different orders per buyer: ordered locking must save us
        with factory() as session, session.begin():
            reserve_many(session, {sku: 1 for sku in picked})

    errors = _hammer(20, basket)
    assert errors == []
    with factory() as session:
        total = sum(_counts(session, sku)[1] for sku in ids)
    engine.dispose()
    assert total == 60
