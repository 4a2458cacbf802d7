"""New-user offers ("新人专享 ¥1 购"): one per person, where a person is an account, a phone, a
device and a payment account. Each is a unique key of `new_user_claims` (the risk signals'
blind indexes), so the database refuses a second claim whatever races: two accounts on one
device claiming at once get one offer between them.

The claim and its order at the offer price are made together; the payment account is bound
when the order is paid (`bind_payer`). A claim whose unpaid order is cancelled or expires is
released so the person may claim again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import false, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError
from tuanbox.growth.errors import OfferAlreadyClaimedError, OfferNotFoundError
from tuanbox.growth.models import NewUserClaim, NewUserOffer
from tuanbox.orders.models import Order
from tuanbox.risk.rules import Key
from tuanbox.risk.signals import Hasher, sticky_keys
from tuanbox.settings import Settings

MAX_PERSON_KEYS = 50  # an account's devices and payment accounts looked at per check


def _why_taken(
    session: Session, user: User, device_key: str, payers: tuple[str, ...]
) -> str | None:
    held = session.scalars(
        select(NewUserClaim).where(
            or_(
                NewUserClaim.user_id == user.id,
                NewUserClaim.phone_key == user.phone_hash,
                NewUserClaim.device_key == device_key,
                NewUserClaim.payer_key.in_(payers) if payers else NewUserClaim.id.is_(None),
            )
        )
    ).first()
    if held is None:
        return None
    if held.user_id == user.id:
        return "ACCOUNT"
    if held.phone_key == user.phone_hash:
        return "PHONE"
    if held.device_key == device_key:
        return "DEVICE"
    return "PAYER"


def claim(
    session: Session,
    settings: Settings,
    *,
    offer_id: str,
    user_id: str,
    device_id: str,
    now: datetime | None = None,
) -> tuple[NewUserClaim, Order]:
    """Claim the offer and place its order; OfferAlreadyClaimedError names which key of the
    person (ACCOUNT, PHONE, DEVICE, PAYER) had one, NOT_A_NEW_USER when they bought before."""
    from tuanbox.orders.services import create_order

    now = now or utcnow()
    offer = session.get(NewUserOffer, offer_id)
    if offer is None or not offer.active:
        raise OfferNotFoundError("no such new-user offer")
    user = session.get(User, user_id)
    if user is None or user.role != "shopper":
        raise OfferNotFoundError("no such new-user offer")
    if not user.phone_hash:
        raise InvalidInputError("a verified phone is needed for a new-user offer", field="phone")
    if not device_id or len(device_id) > 200:
        raise InvalidInputError("a device id is needed for a new-user offer", field="device_id")
    bought = session.scalar(
        select(Order.id).where(Order.user_id == user_id, Order.paid_at.is_not(None)).limit(1)
    )
    if bought is not None:
        raise OfferAlreadyClaimedError(
            "new-user offers are for a first purchase", reason="NOT_A_NEW_USER"
        )
    device_key = Hasher(settings).device(device_id)
    _addresses, payers = sticky_keys(session, user_id)
    reason = _why_taken(session, user, device_key, payers)
    if reason is not None:
        raise OfferAlreadyClaimedError("this person already had a new-user offer", reason=reason)
    row = NewUserClaim(
        offer_id=offer.id,
        user_id=user_id,
        phone_key=user.phone_hash,
        device_key=device_key,
        payer_key=payers[0] if payers else None,
        claimed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:  # a concurrent claim by the same person committed first
        reason = _why_taken(session, user, device_key, payers) or "CONCURRENT"
        raise OfferAlreadyClaimedError(
            "this person already had a new-user offer", reason=reason
        ) from exc
    order = create_order(
        session,
        user_id=user_id,
        sku_id=offer.sku_id,
        qty=1,
        unit_price_cents=offer.price_cents,
    )
    row.order_id = order.id
    session.flush()
    return row, order


def bind_payer(session: Session, order: Order) -> bool:
    """The claim's order was paid: bind the payment account that paid it (from the risk
    signals). False when that account already holds another person's claim: the order is
    then left to risk review rather than refused after the money moved."""
    row = session.scalars(select(NewUserClaim).where(NewUserClaim.order_id == order.id)).first()
    if row is None or row.payer_key is not None:
        return True
    from tuanbox.risk.models import RiskSignal

    payer = session.scalar(
        select(RiskSignal.value)
        .where(RiskSignal.order_id == order.id, RiskSignal.kind == Key.PAYER)
        .order_by(RiskSignal.id.desc())
        .limit(1)
    )
    if payer is None:
        return True
    try:
        with session.begin_nested():
            row.payer_key = payer
            session.flush()
    except IntegrityError:
        session.refresh(row)
        return False
    return True


def release(session: Session, order: Order) -> None:
    """The claim's order closed unpaid: the person may claim again (the row goes)."""
    row = session.scalars(select(NewUserClaim).where(NewUserClaim.order_id == order.id)).first()
    if row is not None and order.paid_at is None:
        session.delete(row)
        session.flush()


def create_offer(
    session: Session, *, sku_id: str, name: str, price_cents: int, actor_id: str
) -> NewUserOffer:
    if price_cents <= 0:
        raise InvalidInputError("price_cents must be positive", field="price_cents")
    offer = NewUserOffer(sku_id=sku_id, name=name, price_cents=price_cents, created_by=actor_id)
    session.add(offer)
    session.flush()
    return offer


def _person_keys(
    session: Session, user_id: str, devices: tuple[str, ...]
) -> tuple[set[str], set[str]]:
    """The devices and payment accounts of this account in its risk signals (plus `devices`)."""
    from tuanbox.risk.models import RiskSignal

    rows = session.execute(
        select(RiskSignal.kind, RiskSignal.value)
        .where(RiskSignal.user_id == user_id, RiskSignal.kind.in_((Key.DEVICE, Key.PAYER)))
        .distinct()
        .limit(MAX_PERSON_KEYS)
    ).all()
    found_devices = {v for k, v in rows if k == Key.DEVICE} | {d for d in devices if d}
    payers = {v for k, v in rows if k == Key.PAYER}
    return found_devices, payers


def _lock_person(session: Session, keys: list[str]) -> None:
    """Serialise new-user checks of one person (any shared key) until the caller commits."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers already
    for key in sorted(set(keys)):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"newuser:{key}"}
        )


def new_user_coupon_taken(
    session: Session,
    user_id: str,
    *,
    devices: tuple[str, ...] = (),
    used_only: bool = False,
) -> str | None:
    """Whether another account of the same person already had a new-user benefit, by the rule
    the new-user offers use: a person is a phone, a device and a payment account (the risk
    signals' blind indexes). The code of the shared key (PHONE, DEVICE, PAYER), else None.

    Taken when an account sharing one of them claimed a new-user offer, holds a new-user
    coupon (`used_only`: one held by an order, as at checkout, where the first to use one
    wins), or has paid for an order (that person is no longer new). At checkout, on
    PostgreSQL, the keys are locked to the caller's commit, so two accounts on one device
    checking out at once are decided one after the other."""
    from tuanbox.coupons.models import Coupon, CouponTemplate
    from tuanbox.risk.models import RiskSignal

    user = session.get(User, user_id)
    if user is None:
        return None
    own_devices, payers = _person_keys(session, user_id, devices)
    if used_only:  # checkout: one at a time per person (issuance holds the template's lock)
        _lock_person(
            session,
            [*own_devices, *payers, *([user.phone_hash] if user.phone_hash else [])],
        )
    claim = session.scalars(
        select(NewUserClaim).where(
            NewUserClaim.user_id != user_id,
            or_(
                NewUserClaim.phone_key == user.phone_hash if user.phone_hash else false(),
                NewUserClaim.device_key.in_(own_devices) if own_devices else false(),
                NewUserClaim.payer_key.in_(payers) if payers else false(),
            ),
        )
    ).first()
    if claim is not None:
        if user.phone_hash and claim.phone_key == user.phone_hash:
            return "PHONE"
        return "DEVICE" if claim.device_key in own_devices else "PAYER"
    for kind, values in ((Key.DEVICE, own_devices), (Key.PAYER, payers)):
        if not values:
            continue
        others = (
            select(RiskSignal.user_id)
            .where(
                RiskSignal.kind == kind,
                RiskSignal.value.in_(values),
                RiskSignal.user_id != user_id,
            )
            .distinct()
            .scalar_subquery()
        )
        held = select(Coupon.id).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        held = held.where(Coupon.user_id.in_(others), CouponTemplate.audience == "new_user")
        if used_only:
            held = held.where(Coupon.status == "used")
        bought = select(Order.id).where(Order.user_id.in_(others), Order.paid_at.is_not(None))
        if session.scalar(held.limit(1)) is not None or session.scalar(bought.limit(1)):
            return "DEVICE" if kind == Key.DEVICE else "PAYER"
    return None
