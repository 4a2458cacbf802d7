"""A small world for whole-API tests: every object a path can name, twice, and its callers.

"mine" objects belong to the `shopper` and to merchant A (whose staff and courier are the
`merchant_staff` and `courier` users); "theirs" belong to `other_shopper` and merchant B. A
path parameter is named after what it names (`order_id`, `campaign_id`...), so a test fills a
path from `world.mine` or `world.theirs` by parameter name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor
from tuanbox.catalog.services import add_lot
from tuanbox.coupons.services import create_template
from tuanbox.db.base import utcnow
from tuanbox.flashsale import services as flash
from tuanbox.groupbuy.services import create_campaign, open_group
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import create_locker, create_station, standard_layout
from tuanbox.orders.services import create_order
from tuanbox.payments.models import Refund
from tuanbox.returns.models import ReturnRequest

GTIN = "09506000134352"
# Callers by role; `spare` is a shopper no test signs in as, for admin actions on accounts.
ROLES = ("shopper", "merchant_staff", "courier", "ops", "admin")


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)
    mine: dict[str, str] = field(default_factory=dict)
    theirs: dict[str, str] = field(default_factory=dict)
    # Values for parameters that name no one's object (formats, providers, asset names).
    fixed: dict[str, str] = field(default_factory=dict)

    def known(self) -> dict[str, list[str]]:
        """Every seeded value, by parameter name."""
        out: dict[str, list[str]] = {}
        for source in (self.mine, self.theirs, self.fixed):
            for key, value in source.items():
                out.setdefault(key, []).append(value)
        return out


def _side(
    session: Session, world: World, side: dict[str, str], tag: str, shopper: User, staff_of: str
) -> None:
    from tests.platform.groupbuy.factories import tiered_spec

    now = utcnow()
    merchant = make_merchant(session)
    product = make_product(session, merchant, gtin=GTIN)
    sku = make_sku(session, product, stock=10_000)
    staff = make_user(session, "merchant_staff", merchant.id)
    world.users.setdefault(staff_of, staff)
    side.update(merchant_id=merchant.id, product_id=product.id, sku_id=sku.id)
    actor = Actor(id=staff.id, role="merchant_staff")
    add_lot(session, actor, product.id, lot_code=f"LOT-{tag}", quantity=100)
    side.update(gtin=GTIN, lot=f"LOT-{tag}", lot_code=f"LOT-{tag}")

    station_id = world.fixed["station_id"]
    campaign = create_campaign(
        session,
        merchant_id=merchant.id,
        actor_id=staff.id,
        spec=tiered_spec(sku.id, station_ids=(station_id,), now=now),
    )
    joined = open_group(
        session, campaign_id=campaign.id, user_id=shopper.id, station_id=station_id, now=now
    )
    side.update(campaign_id=campaign.id, group_id=joined.member.group_id)
    sale = flash.create_sale(
        session,
        merchant_id=merchant.id,
        actor_id=staff.id,
        spec=flash.SaleSpec(
            sku_id=sku.id,
            title="durian",
            price_cents=990,
            stock_cap=50,
            per_user_limit=1,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        ),
    )
    side["sale_id"] = sale.id
    order = create_order(
        session, user_id=shopper.id, sku_id=sku.id, qty=1, unit_price_cents=1990, reserve=True
    )
    side["order_id"] = order.id
    returned = create_order(
        session, user_id=shopper.id, sku_id=sku.id, qty=1, unit_price_cents=1990, reserve=True
    )
    row = ReturnRequest(order_id=returned.id, user_id=shopper.id, method="locker", reason="x")
    refund = Refund(
        key=f"seed:{uuid.uuid4().hex}",
        order_id=order.id,
        provider="sim",
        amount_cents=100,
        reason="seed",
        status="failed",
    )
    session.add_all([row, refund])
    session.flush()
    side.update(return_id=row.id, refund_id=refund.id)
    template = create_template(
        session, created_by=staff.id, merchant_id=merchant.id, name=f"¥5 off {tag}",
        kind="amount_off", amount_off_cents=500, per_user_limit=1000, points_cost=100,
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=365),
    )  # fmt: skip
    side["template_id"] = template.id


def seed(session: Session) -> World:
    world = World()
    for role in ROLES:
        if role not in ("merchant_staff", "courier"):
            world.users[role] = make_user(session, role)
    other_shopper = make_user(session, "shopper")
    spare = make_user(session, "shopper")
    world.mine["user_id"] = spare.id
    world.theirs["user_id"] = other_shopper.id

    station = create_station(
        session, id=f"st-{uuid.uuid4().hex[:8]}", name="Lobby", address="7 Garden Rd", lat=31.2,
        lon=121.4,
    )  # fmt: skip
    locker, _ = create_locker(
        session, id=f"L-{uuid.uuid4().hex[:8]}", station_id=station.id, layout=standard_layout()
    )
    compartment = session.scalars(
        select(Compartment).where(Compartment.locker_id == locker.id).limit(1)
    ).one()
    world.fixed.update(
        station_id=station.id,
        locker_id=locker.id,
        compartment_id=str(compartment.id),
        provider="sim",
        fmt="png",
    )
    _side(session, world, world.mine, "A", world.users["shopper"], "merchant_staff")
    _side(session, world, world.theirs, "B", other_shopper, "other_staff")
    world.users["courier"] = make_user(session, "courier", world.mine["merchant_id"])
    return world
