"""Money invariants under concurrency, on real PostgreSQL with one connection per thread:
one coupon, two checkouts (one wins); issuance retried at once (one coupon); points spent
from several orders at once (never below zero)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.support import template
from tests.platform.factories import make_order, make_sku, make_user
from tuanbox.coupons import checkout
from tuanbox.coupons.errors import CouponUnavailableError
from tuanbox.coupons.models import Coupon, CouponEntry
from tuanbox.coupons.services import issue_one, issue_to_users
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.errors import ConflictError
from tuanbox.orders.models import Order
from tuanbox.points import services as points
from tuanbox.points.models import PointsAccount, PointsEntry

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=99)


def together(jobs: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            out = job()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results, errors


@pytest.fixture
def factory(fresh_database: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database()
    engine = make_engine(url, pool_size=20, max_overflow=0)
    try:
        yield make_session_factory(engine, make_settings(database_url=url))
    finally:
        engine.dispose()


def test_one_coupon_two_concurrent_checkouts_exactly_one_wins(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        shopper = make_user(session)
        sku = make_sku(session, price_cents=2000, stock=100)
        coupon_id = issue_one(session, template(session).id, shopper.id, "one").id
        orders = [make_order(session, user=shopper, sku=sku).id for _ in range(8)]
        user_id = shopper.id

    def apply_to(order_id: str) -> Callable[[], object]:
        def job() -> object:
            with factory() as session, session.begin():
                return checkout.apply(session, order_id, user_id, [coupon_id], 0, POLICY).order_id

        return job

    won, lost = together([apply_to(o) for o in orders])
    assert len(won) == 1, (won, lost)
    assert len(lost) == 7 and all(isinstance(e, CouponUnavailableError) for e in lost), lost
    with factory() as session:
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None and coupon.status == "used" and coupon.order_id == won[0]
        discounted = session.scalars(select(Order.id).where(Order.discount_cents > 0)).all()
        assert discounted == [won[0]]
        redeemed = session.scalar(
            select(func.count()).where(
                CouponEntry.coupon_id == coupon_id, CouponEntry.kind == "redeemed"
            )
        )
        assert redeemed == 1


def test_issuance_retried_concurrently_mints_one_coupon(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        shoppers = [make_user(session).id for _ in range(5)]
        template_id = template(session, per_user_limit=3).id

    def issue_single() -> object:
        with factory() as session, session.begin():
            return issue_one(session, template_id, shoppers[0], "retry-me").id

    def issue_list() -> object:
        with factory() as session, session.begin():
            return len(issue_to_users(session, template_id, shoppers, "campaign-7").issued)

    ids, errors = together([issue_single for _ in range(6)] + [issue_list for _ in range(6)])
    assert not errors, errors
    single = {r for r in ids if isinstance(r, str)}
    assert len(single) == 1
    assert sorted(r for r in ids if isinstance(r, int)) == [0, 0, 0, 0, 0, 5]
    with factory() as session:
        per_user: dict[str, int] = dict(
            session.execute(select(Coupon.user_id, func.count()).group_by(Coupon.user_id)).all()
        )
        assert per_user == {shoppers[0]: 2, **{s: 1 for s in shoppers[1:]}}
        issued = session.scalar(select(func.count()).where(CouponEntry.kind == "issued"))
        assert issued == 6


def test_points_spent_from_concurrent_checkouts_never_go_negative(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        shopper = make_user(session)
        sku = make_sku(session, price_cents=10_000, stock=100)
        points.post(session, shopper.id, "gift", "earn", 1000)
        orders = [make_order(session, user=shopper, sku=sku).id for _ in range(10)]
        user_id = shopper.id

    def spend(order_id: str) -> Callable[[], object]:
        def job() -> object:
            with factory() as session, session.begin():
                return checkout.apply(session, order_id, user_id, [], 300, POLICY).points_used

        return job

    spent, refused = together([spend(o) for o in orders])
    assert len(spent) == 3 and len(refused) == 7
    assert all(isinstance(e, ConflictError) and e.code == "POINTS_INSUFFICIENT" for e in refused)
    with factory() as session:
        account = session.get(PointsAccount, user_id)
        assert account is not None and account.balance == 100
        assert points.balance_of(session, user_id) == (100, 0)
        assert (
            session.scalar(
                select(func.count()).where(
                    PointsEntry.user_id == user_id, PointsEntry.kind == "spend"
                )
            )
            == 3
        )
