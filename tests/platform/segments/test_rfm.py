"""RFM on real PostgreSQL: quintiles match a Python reference of ntile on generated buyers,
a rerun writes the same scores, refunded orders do not count, segments count live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import make_user
from tests.platform.segments.support import generated_buyers, merchant_sku, paid_order
from tuanbox.catalog.models import Product
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError
from tuanbox.orders.models import Order
from tuanbox.segments import rfm, services
from tuanbox.segments.models import GLOBAL, RfmScore, UserTag


def ntile(keys: list[tuple[object, str]], buckets: int = 5) -> dict[str, int]:
    """SQL's ntile: sorted rows split into `buckets` groups, the first n % buckets one larger."""
    ordered = sorted(keys)
    n = len(ordered)
    size, extra = divmod(n, buckets)
    out: dict[str, int] = {}
    i = 0
    for b in range(1, buckets + 1):
        take = size + (1 if b <= extra else 0)
        for _, user in ordered[i : i + take]:
            out[user] = b
        i += take
    return out


def scores(session: Session, scope: str) -> dict[str, tuple[int, int, int]]:
    rows = session.scalars(select(RfmScore).where(RfmScore.scope == scope))
    return {r.user_id: (r.r, r.f, r.m) for r in rows}


def test_quintiles_match_a_python_reference(db_session: Session) -> None:
    now = utcnow()
    sku = merchant_sku(db_session)
    merchant = db_session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    buyers = generated_buyers(db_session, sku, 73, now)
    # Not counted: an unpaid order, a refunded one.
    someone = buyers[0][0]
    paid_order(db_session, sku, someone, paid_at=now, cents=99_999, status="refunded")
    rfm.recompute(db_session, now)
    r = ntile([(last, u) for u, last, _, _ in buyers])
    f = ntile([(count, u) for u, _, count, _ in buyers])
    m = ntile([(cents, u) for u, _, _, cents in buyers])
    expected = {u: (r[u], f[u], m[u]) for u, *_ in buyers}
    assert scores(db_session, merchant) == expected
    # The platform-wide scope, against the same reference over every counted order in the
    # database (other tests' committed rows included).
    totals: dict[str, list[Any]] = {}
    for order in db_session.scalars(
        select(Order).where(Order.paid_at.is_not(None), Order.status.in_(rfm.COUNTED))
    ):
        t = totals.setdefault(order.user_id, [order.paid_at, 0, 0])
        t[0] = max(t[0], order.paid_at)
        t[1] += 1
        t[2] += order.paid_cents - order.refunded_cents
    gr = ntile([(t[0], u) for u, t in totals.items()])
    gf = ntile([(t[1], u) for u, t in totals.items()])
    gm = ntile([(t[2], u) for u, t in totals.items()])
    assert scores(db_session, GLOBAL) == {u: (gr[u], gf[u], gm[u]) for u in totals}
    # Idempotent: a rerun later writes the same scores, no more rows.
    rfm.recompute(db_session, now + timedelta(minutes=5))
    assert scores(db_session, merchant) == expected


def test_segments_by_rule_count_live(db_session: Session) -> None:
    now = utcnow()
    sku = merchant_sku(db_session)
    merchant = db_session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    buyers = generated_buyers(db_session, sku, 40, now, seed=3)
    rfm.recompute(db_session, now)
    high = services.create(
        db_session, merchant, "high value", {"kind": "rfm", "r_min": 4, "m_min": 4}
    )
    dormant = services.create(db_session, merchant, "dormant", {"kind": "dormant", "days": 30})
    vip = services.create(db_session, merchant, "vip", {"kind": "tag", "tag": "vip"})
    all_scores = scores(db_session, merchant)
    want_high = sorted(u for u, (r, _, m) in all_scores.items() if r >= 4 and m >= 4)
    want_dormant = sorted(u for u, last, _, _ in buyers if last < now - timedelta(days=30))
    assert services.members(db_session, high, now) == want_high and want_high
    assert services.members(db_session, dormant, now) == want_dormant and want_dormant
    assert services.count(db_session, vip) == 0
    services.tag(db_session, merchant, buyers[0][0], "vip")
    services.tag(db_session, merchant, buyers[0][0], "vip")
    assert services.members(db_session, vip) == [buyers[0][0]]
    # Computed tags follow the scores.
    tagged = set(
        db_session.scalars(
            select(UserTag.user_id).where(
                UserTag.merchant_id == merchant, UserTag.tag == rfm.HIGH_VALUE
            )
        )
    )
    assert tagged == set(want_high)
    # A dormant shopper who buys again leaves the segment at the next recompute.
    back = want_dormant[0]
    paid_order(db_session, sku, back, paid_at=now, cents=500)
    rfm.recompute(db_session, now + timedelta(seconds=1))
    assert back not in services.members(db_session, dormant, now)
    assert [s.name for s, _ in services.listing(db_session, merchant)] == [
        "dormant",
        "high value",
        "vip",
    ]


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "rfm", "r_min": 6},
        {"kind": "dormant", "days": 0},
        {"kind": "tag", "tag": ""},
        {"kind": "x"},
    ],
)
def test_bad_rules_are_refused(db_session: Session, rule: dict[str, object]) -> None:
    sku = merchant_sku(db_session)
    merchant = db_session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError):
        services.create(db_session, merchant, "bad", rule)
    make_user(db_session)
