"""A shopper's coupons, points, referrals, membership, tags, pushes and experiment arms, on
real PostgreSQL: in their export (other people only as masked names), and on erasure the
money ledgers stay keyed to the tombstone while open coupons are voided, the points balance
forfeited once, and the profiling (tags, RFM scores, push notice links) goes for good."""

from __future__ import annotations

import json

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import pay, pick_up, template
from tests.platform.factories import make_order, make_product, make_sku, make_user
from tuanbox.accounts.revocation import Revocations
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Product
from tuanbox.coupons import checkout
from tuanbox.coupons.models import Coupon, CouponEntry
from tuanbox.coupons.services import issue_one
from tuanbox.experiments.models import Experiment, ExperimentConversion
from tuanbox.groupbuy.services import create_campaign
from tuanbox.growth import binding
from tuanbox.growth.models import ReferralBinding
from tuanbox.membership import services as membership
from tuanbox.membership.models import MembershipEntry
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay
from tuanbox.points import services as points
from tuanbox.points.models import PointsAccount, PointsEntry
from tuanbox.privacy.erasure import erase
from tuanbox.privacy.export import export
from tuanbox.segments import pushes, rfm
from tuanbox.segments import services as segments
from tuanbox.segments.models import PushRecipient, RfmScore, UserTag
from tuanbox.settings import Settings

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)


def _world(session: Session, settings: Settings) -> dict[str, str]:
    """Alice, invited by Bob, bought with a coupon, picked up (points), holds a second coupon,
    is a member, tagged and scored by the merchant, sent a push, counted in an experiment."""
    from tests.platform.groupbuy.factories import fixed_spec

    bob = make_user(session)
    alice = make_user(session)
    binding.bind(session, invitee_id=alice.id, inviter_id=bob.id, source="link")
    sku = make_sku(session, make_product(session), price_cents=1000, stock=20)
    merchant_id = session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    used = issue_one(session, template(session, amount_off_cents=300).id, alice.id, "p-used")
    spare = issue_one(session, template(session, name="¥2 off", amount_off_cents=200).id,
                      alice.id, "p-spare")  # fmt: skip
    order = make_order(session, user=alice, sku=sku, qty=2)
    checkout.apply(session, order.id, alice.id, [used.id], 0, POLICY)
    pick_up(session, pay(session, settings, order))  # pays 17.00: 17 points
    sim = SimPay(settings)
    term, _url = membership.start_purchase(session, settings, alice.id, sim)
    body, headers = sim.payment_webhook(sim.charge(session, term.id, term.amount_cents))
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    segments.tag(session, merchant_id, alice.id, "likes peaches")
    rfm.recompute(session)
    segment = segments.create(session, merchant_id, "peach fans", {"kind": "tag", "tag": "likes peaches"})  # fmt: skip # noqa: E501
    sent = pushes.send(session, settings, merchant_id=merchant_id, segment_id=segment.id,
                       kind="message", key=f"p-{segment.id}", message="peaches are in")  # fmt: skip
    assert sent.sent == [alice.id]
    staff = make_user(session, "merchant_staff", merchant_id)
    campaign = create_campaign(session, merchant_id=merchant_id, actor_id=staff.id,
                               spec=fixed_spec(sku.id, members=3, max_size=3))  # fmt: skip
    arms = [{"key": "a", "weight": 50, "value": "Peaches"},
            {"key": "b", "weight": 50, "value": "水蜜桃"}]  # fmt: skip
    experiment = Experiment(merchant_id=merchant_id, campaign_id=campaign.id, name="peach title",
                            field="title", arms=arms, min_sample=10)  # fmt: skip
    session.add(experiment)
    session.flush()
    session.add(ExperimentConversion(experiment_id=experiment.id, user_id=alice.id, arm="b",
                                     order_id=order.id))  # fmt: skip
    session.flush()
    return {"alice": alice.id, "bob": bob.id, "used": used.id, "spare": spare.id,
            "order": order.id, "merchant": merchant_id}  # fmt: skip


def test_export_holds_growth_data_and_nobody_elses(db_session: Session, settings: Settings) -> None:
    ids = _world(db_session, settings)
    doc = export(db_session, settings, ids["alice"])
    coupons = {c["id"]: c for c in doc["coupons"]}
    assert coupons[ids["used"]]["status"] == "used"
    assert coupons[ids["used"]]["order_id"] == ids["order"]
    assert [e["kind"] for e in coupons[ids["used"]]["ledger"]] == ["issued", "redeemed"]
    assert coupons[ids["spare"]]["status"] == "available"
    assert doc["points"]["balance"] == 17
    assert [(e["kind"], e["delta"]) for e in doc["points"]["ledger"]] == [("earn", 17)]
    assert doc["referrals"]["invited_by"]["inviter"].endswith("**")
    assert doc["referrals"]["invited_by"]["source"] == "link"
    assert doc["membership"]["ends_at"] is not None
    assert [(t["status"], t["amount_cents"]) for t in doc["membership"]["terms"]] == [
        ("paid", 9900)
    ]
    assert [e["kind"] for e in doc["membership"]["ledger"]] == ["paid"]
    assert [t["tag"] for t in doc["segments"]["tags"] if t["source"] == "manual"] == [
        "likes peaches"
    ]
    assert {s["scope"] for s in doc["segments"]["rfm_scores"]} >= {ids["merchant"]}
    assert [(p["message"], p["status"]) for p in doc["segments"]["pushes"]] == [
        ("peaches are in", "sent")
    ]
    assert doc["experiments"] == [
        {"experiment": "peach title", "field": "title", "arm": "b", "shown": "水蜜桃",
         "order_id": ids["order"], "converted_at": doc["experiments"][0]["converted_at"]}
    ]  # fmt: skip
    assert ids["bob"] not in json.dumps(doc)  # the inviter is a masked name, not an id
    bobs = export(db_session, settings, ids["bob"])
    assert [(i["counted"], i["source"]) for i in bobs["referrals"]["invited"]] == [(True, "link")]
    assert ids["alice"] not in json.dumps(bobs)
    assert bobs["coupons"] == [] and bobs["points"]["balance"] == 0


def test_erasure_keeps_money_ledgers_and_drops_profiling(
    db_session: Session, settings: Settings, redis_url: str
) -> None:
    ids = _world(db_session, settings)
    alice = ids["alice"]
    client = redis.Redis.from_url(redis_url)
    try:
        revocations = Revocations(client, settings.access_token_ttl_s)
        done = erase(db_session, settings, revocations, Actor(alice, "shopper"), alice)
    finally:
        client.close()
    assert done.orders_kept == 1
    # Money: the used coupon stays on its order; the unused one is voided, once, on the books.
    used, spare = db_session.get(Coupon, ids["used"]), db_session.get(Coupon, ids["spare"])
    assert used is not None and (used.status, used.order_id) == ("used", ids["order"])
    assert spare is not None and spare.status == "expired"
    kinds = db_session.scalars(
        select(CouponEntry.kind).where(CouponEntry.coupon_id == spare.id).order_by(CouponEntry.id)
    ).all()
    assert kinds == ["issued", "erased"]
    # Points: the ledger stays, the balance is forfeited by one more entry; cache agrees.
    entries = db_session.scalars(
        select(PointsEntry).where(PointsEntry.user_id == alice).order_by(PointsEntry.id)
    ).all()
    assert [(e.kind, e.delta) for e in entries] == [("earn", 17), ("forfeit", -17)]
    assert points.balance_of(db_session, alice) == (0, 0)
    assert db_session.get(PointsAccount, alice).balance == 0  # type: ignore[union-attr]
    # Membership payments and the referral stay, keyed to the tombstone's id.
    assert [e.kind for e in membership.ledger(db_session, alice)] == ["paid"]
    assert (
        db_session.scalar(select(MembershipEntry.cents).where(MembershipEntry.user_id == alice))
        == 9900
    )
    assert db_session.get(ReferralBinding, alice) is not None
    # Profiling goes, and the RFM job does not bring it back.
    assert db_session.scalars(select(UserTag).where(UserTag.user_id == alice)).all() == []
    assert db_session.scalars(select(RfmScore).where(RfmScore.user_id == alice)).all() == []
    rfm.recompute(db_session)
    assert db_session.scalars(select(RfmScore).where(RfmScore.user_id == alice)).all() == []
    assert db_session.scalars(select(UserTag).where(UserTag.user_id == alice)).all() == []
    recipient = db_session.scalars(
        select(PushRecipient).where(PushRecipient.user_id == alice)
    ).one()
    assert recipient.notification_id is None and recipient.status == "sent"
    # The inviter's own export still counts the invite, under a masked name.
    bobs = export(db_session, settings, ids["bob"])
    assert [(i["counted"], i["invitee"]) for i in bobs["referrals"]["invited"]] == [(True, "?**")]
