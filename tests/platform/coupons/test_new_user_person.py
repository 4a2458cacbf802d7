"""New-user coupons are one per person by the new-user offers' rule (a person is a phone, a
device and a payment account, from the risk signals), on real PostgreSQL: a second account
on one device is refused at issuance and, when both got one before the device tied them, at
checkout (the first to use one wins, also when both check out at once); an account on a
device that claimed a new-user offer gets none; a shared payment account counts the same."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.support import SYSTEM, template
from tests.platform.factories import make_order, make_sku, make_user
from tuanbox.coupons import checkout
from tuanbox.coupons.errors import CouponNotApplicableError
from tuanbox.coupons.models import Coupon
from tuanbox.coupons.services import issue_one, issue_to_users
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.growth.newuser import claim, create_offer
from tuanbox.orders.services import transition
from tuanbox.risk import signals
from tuanbox.risk.rules import Event
from tuanbox.settings import Settings

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)


def _signed_in(session: Session, settings: Settings, user_id: str, **keys: str) -> None:
    """The account signed in from this device (and/or paid from this payment account)."""
    hasher = signals.Hasher(settings)
    device = hasher.device(keys["device"]) if "device" in keys else None
    payers = (hasher.payer("simpay", keys["payer"]),) if "payer" in keys else ()
    signals.record(
        session, Event.SIGNIN, signals.Keys(user_id, device=device, payers=payers), now=utcnow()
    )


def test_second_account_on_one_device_gets_no_new_user_coupon(
    db_session: Session, settings: Settings
) -> None:
    first, second, elsewhere = (make_user(db_session) for _ in range(3))
    for user in (first, second):
        _signed_in(db_session, settings, user.id, device="phone-A")
    _signed_in(db_session, settings, elsewhere.id, device="phone-B")
    newbie = template(db_session, audience="new_user", per_user_limit=1)
    got = issue_to_users(db_session, newbie.id, [first.id, second.id, elsewhere.id], "welcome")
    assert {c.user_id for c in got.issued} == {first.id, elsewhere.id}
    assert got.skipped == {second.id: "NEW_USER_TAKEN"}
    # Another new-user template: still the first account's, not a second account's.
    other = template(db_session, name="¥3 welcome", audience="new_user", per_user_limit=1)
    assert issue_to_users(db_session, other.id, [second.id], "w2").skipped == {
        second.id: "NEW_USER_TAKEN"
    }
    assert issue_to_users(db_session, other.id, [first.id], "w3").issued
    # A payment account shared with an account that holds one counts the same.
    payer_twin = make_user(db_session)
    _signed_in(db_session, settings, elsewhere.id, payer="wx-openid-9")
    _signed_in(db_session, settings, payer_twin.id, payer="wx-openid-9", device="phone-C")
    assert issue_to_users(db_session, newbie.id, [payer_twin.id], "w4").skipped == {
        payer_twin.id: "NEW_USER_TAKEN"
    }


def test_a_device_that_claimed_a_new_user_offer_gets_no_coupon_on_another_account(
    db_session: Session, settings: Settings
) -> None:
    offer = create_offer(
        db_session, sku_id=make_sku(db_session).id, name="¥1", price_cents=100, actor_id="ops"
    )
    claimer = make_user(db_session, phone="13700000001", settings=settings)
    claim(db_session, settings, offer_id=offer.id, user_id=claimer.id, device_id="phone-A")
    other = make_user(db_session, phone="13700000002", settings=settings)
    _signed_in(db_session, settings, other.id, device="phone-A")
    newbie = template(db_session, audience="new_user", per_user_limit=1)
    assert issue_to_users(db_session, newbie.id, [other.id], "w").skipped == {
        other.id: "NEW_USER_TAKEN"
    }


def test_both_got_one_before_the_device_tied_them_the_first_to_use_it_wins(
    db_session: Session, settings: Settings
) -> None:
    first, second = make_user(db_session), make_user(db_session)
    newbie = template(db_session, audience="new_user", per_user_limit=1)
    coupons = {u.id: issue_one(db_session, newbie.id, u.id, f"w:{u.id}") for u in (first, second)}
    for user in (first, second):
        _signed_in(db_session, settings, user.id, device="phone-A")
    sku = make_sku(db_session, price_cents=1000, stock=10)
    mine = make_order(db_session, user=first, sku=sku)
    checkout.apply(db_session, mine.id, first.id, [coupons[first.id].id], 0, POLICY)
    theirs = make_order(db_session, user=second, sku=sku)
    with pytest.raises(CouponNotApplicableError) as info:
        checkout.apply(db_session, theirs.id, second.id, [coupons[second.id].id], 0, POLICY)
    assert info.value.extra["reason"] == "NEW_USER_TAKEN"
    assert "device" in str(info.value)
    # The first account's order closes unpaid: its coupon comes back, the other may use theirs.
    transition(db_session, mine, "cancelled", actor=SYSTEM, reason="changed mind")  # type: ignore[arg-type]
    assert db_session.get(Coupon, coupons[first.id].id).status == "available"  # type: ignore[union-attr]
    applied = checkout.apply(db_session, theirs.id, second.id, [coupons[second.id].id], 0, POLICY)
    assert applied.coupon_cents == 500


@pytest.fixture
def factory(fresh_database: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database()
    engine = make_engine(url, pool_size=10, max_overflow=0)
    try:
        yield make_session_factory(engine, make_settings(database_url=url))
    finally:
        engine.dispose()


def test_two_accounts_on_one_device_checking_out_at_once_use_one(
    factory: sessionmaker[Session],
) -> None:
    settings = make_settings()
    with factory() as session, session.begin():
        users = [make_user(session) for _ in range(2)]
        newbie = template(session, audience="new_user", per_user_limit=1)
        sku = make_sku(session, price_cents=1000, stock=10)
        plan = []
        for user in users:
            coupon = issue_one(session, newbie.id, user.id, f"w:{user.id}")
            _signed_in(session, settings, user.id, device="phone-A")
            plan.append((user.id, make_order(session, user=user, sku=sku).id, coupon.id))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(user_id: str, order_id: str, coupon_id: str) -> None:
        barrier.wait()
        try:
            with factory() as session, session.begin():
                checkout.apply(session, order_id, user_id, [coupon_id], 0, POLICY)
            result = "applied"
        except CouponNotApplicableError as exc:
            result = str(exc.extra["reason"])
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=row) for row in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["NEW_USER_TAKEN", "applied"]
    with factory() as session:
        used = select(func.count()).select_from(Coupon).where(Coupon.status == "used")
        assert session.scalar(used) == 1
