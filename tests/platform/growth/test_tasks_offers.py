"""Invite tasks and new-user offers on real PostgreSQL: a task's coupon is granted once when
the goal is reached by picked-up, unrefunded first orders; a refund takes the count back and
revokes the unused coupon (or records that it was used); one new-user offer per person
(account, phone, device, payer), even when two accounts on one device claim at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.support import SYSTEM, pay, refund_now, template
from tests.platform.factories import make_order, make_user
from tests.platform.growth.support import invitee_with_order, new_sku
from tuanbox.coupons import checkout
from tuanbox.coupons.models import Coupon
from tuanbox.db.base import utcnow
from tuanbox.growth.errors import OfferAlreadyClaimedError
from tuanbox.growth.invite_tasks import create_task, progress
from tuanbox.growth.models import NewUserClaim, TaskEntry, TaskGrant
from tuanbox.growth.newuser import claim, create_offer
from tuanbox.settings import Settings

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)


def _task(session: Session, goal: int = 3) -> tuple[str, str]:
    ten = template(session, name="¥10 no threshold", amount_off_cents=1000, per_user_limit=5)
    task = create_task(
        session,
        SYSTEM,
        name="invite 3",
        goal=goal,
        template_id=ten.id,
        starts_at=utcnow() - timedelta(days=1),
        ends_at=utcnow() + timedelta(days=7),
        merchant_id=None,
    )
    return task.id, ten.id


def _ledger(session: Session, task_id: str) -> list[str]:
    return list(
        session.scalars(
            select(TaskEntry.kind).where(TaskEntry.task_id == task_id).order_by(TaskEntry.id)
        )
    )


def test_goal_reached_grants_once_and_a_refund_revokes_the_unused_coupon(
    db_session: Session, settings: Settings
) -> None:
    task_id, template_id = _task(db_session)
    sku, inviter = new_sku(db_session), make_user(db_session)
    orders = [invitee_with_order(db_session, settings, inviter, sku)[1] for _ in range(2)]
    invitee_with_order(db_session, settings, inviter, sku, picked_up=False)  # not yet counted
    assert db_session.scalar(select(func.count()).select_from(TaskGrant)) == 0
    orders.append(invitee_with_order(db_session, settings, inviter, sku)[1])
    grant = db_session.scalars(select(TaskGrant).where(TaskGrant.task_id == task_id)).one()
    coupon = db_session.get(Coupon, grant.coupon_id)
    assert coupon is not None and (coupon.status, coupon.template_id) == ("available", template_id)
    invitee_with_order(db_session, settings, inviter, sku)  # a fourth: nothing new
    assert (
        db_session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.user_id == inviter.id)
        )
        == 1
    )
    assert progress(db_session, inviter.id)[0]["count"] == 4

    refund_now(db_session, settings, orders[0], orders[0].paid_cents, "r0")
    refund_now(db_session, settings, orders[1], 1, "r1")  # partial refund counts too
    db_session.refresh(grant)
    db_session.refresh(coupon)
    assert (grant.status, coupon.status) == ("revoked", "expired")
    assert _ledger(db_session, task_id) == ["granted", "revoked"]


def test_a_used_reward_is_kept_and_recorded_when_the_count_drops(
    db_session: Session, settings: Settings
) -> None:
    task_id, _ = _task(db_session, goal=1)
    sku, inviter = new_sku(db_session), make_user(db_session)
    _, order = invitee_with_order(db_session, settings, inviter, sku)
    grant = db_session.scalars(select(TaskGrant).where(TaskGrant.task_id == task_id)).one()
    own = make_order(db_session, user=inviter, sku=sku)
    checkout.apply(db_session, own.id, inviter.id, [grant.coupon_id], 0, POLICY)
    pay(db_session, settings, own)
    refund_now(db_session, settings, order, order.paid_cents, "full")
    db_session.refresh(grant)
    assert grant.status == "kept_used"
    assert _ledger(db_session, task_id) == ["granted", "kept_used"]


def test_after_a_revocation_reaching_the_goal_again_grants_a_new_round(
    db_session: Session, settings: Settings
) -> None:
    task_id, _ = _task(db_session, goal=1)
    sku, inviter = new_sku(db_session), make_user(db_session)
    _, order = invitee_with_order(db_session, settings, inviter, sku)
    refund_now(db_session, settings, order, order.paid_cents, "full")
    invitee_with_order(db_session, settings, inviter, sku)
    grant = db_session.scalars(select(TaskGrant).where(TaskGrant.task_id == task_id)).one()
    assert (grant.status, grant.round) == ("granted", 2)
    assert _ledger(db_session, task_id) == ["granted", "revoked", "granted"]
    statuses = db_session.scalars(
        select(Coupon.status).where(Coupon.user_id == inviter.id).order_by(Coupon.issued_at)
    ).all()
    assert sorted(statuses) == ["available", "expired"]


def test_one_offer_per_account_phone_and_device(db_session: Session, settings: Settings) -> None:
    offer = create_offer(
        db_session, sku_id=new_sku(db_session).id, name="¥1", price_cents=100, actor_id="ops"
    )
    first = make_user(db_session, phone="13800000001", settings=settings)
    row, order = claim(db_session, settings, offer_id=offer.id, user_id=first.id, device_id="dev-1")
    assert order.total_cents == 100 and row.order_id == order.id
    other = make_user(db_session, phone="13800000002", settings=settings)
    for user_id, device, reason in (
        (first.id, "dev-9", "ACCOUNT"),
        (other.id, "dev-1", "DEVICE"),
    ):
        with pytest.raises(OfferAlreadyClaimedError) as info:
            claim(db_session, settings, offer_id=offer.id, user_id=user_id, device_id=device)
        assert info.value.extra["reason"] == reason
    assert claim(db_session, settings, offer_id=offer.id, user_id=other.id, device_id="dev-2")


def test_two_accounts_on_one_device_claiming_at_once_get_one_offer(
    factory: sessionmaker[Session],
) -> None:
    settings = make_settings()
    with factory() as session, session.begin():
        offer_id = create_offer(
            session, sku_id=new_sku(session).id, name="¥1", price_cents=100, actor_id="ops"
        ).id
        users = [make_user(session, phone=f"1390000000{i}", settings=settings).id for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(user_id: str) -> None:
        barrier.wait()
        try:
            with factory() as session, session.begin():
                claim(session, settings, offer_id=offer_id, user_id=user_id, device_id="phone-A")
            result = "claimed"
        except OfferAlreadyClaimedError as exc:
            result = str(exc.extra["reason"])
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["DEVICE", "claimed"]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(NewUserClaim)) == 1


def test_a_payer_paying_a_second_persons_offer_holds_it_for_review(
    db_session: Session, settings: Settings
) -> None:
    from tuanbox.payments.services import handle_event, start_checkout
    from tuanbox.payments.simpay import SimPay
    from tuanbox.risk.models import RiskReview

    offer = create_offer(
        db_session, sku_id=new_sku(db_session).id, name="¥1", price_cents=100, actor_id="ops"
    )
    sim = SimPay(settings)
    orders = []
    for i in range(2):
        user = make_user(db_session, phone=f"1360000000{i}", settings=settings)
        row, order = claim(
            db_session, settings, offer_id=offer.id, user_id=user.id, device_id=f"dev-{i}"
        )
        intent = start_checkout(db_session, order, sim)
        body, headers = sim.payment_webhook(
            sim.charge(db_session, intent.id, intent.amount_cents), payer_id="wx-openid-1"
        )
        assert handle_event(db_session, sim.verify_webhook(headers, body)) == "applied"
        db_session.refresh(order)
        db_session.refresh(row)
        orders.append((row, order))
    (first, first_order), (second, second_order) = orders
    assert first.payer_key is not None and second.payer_key is None
    assert (first_order.risk_hold, second_order.risk_hold) == (False, True)
    review = db_session.scalars(
        select(RiskReview).where(RiskReview.subject_id == second_order.id)
    ).one()
    assert review.status == "open"
