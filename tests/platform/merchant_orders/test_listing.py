"""The console's order list: merchant scope, filters, search, keyset pages, masked PII."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant, make_product, make_sku
from tests.platform.fulfilment.fx import make_station
from tests.platform.merchant_orders.fx import T0, put_order, shopper_with_phone
from tuanbox.errors import InvalidInputError
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.merchant_orders.listing import (
    OrderFilter,
    Scope,
    decode_cursor,
    encode_cursor,
    list_orders,
    stream_rows,
    tab_counts,
)
from tuanbox.merchant_orders.tabs import Tab
from tuanbox.settings import Settings


def _walk(session: Session, scope: Scope, flt: OrderFilter, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = list_orders(session, scope, flt, cursor=cursor, limit=limit)
        pages.append([r.id for r in page.rows])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_keyset_pages_walk_every_order_once_newest_first(
    db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant), stock=100)
    # Two orders share an instant: the id breaks the tie, none is skipped or repeated.
    times = [T0 + timedelta(minutes=i) for i in range(7)] + [T0 + timedelta(minutes=3)]
    orders = [put_order(db_session, merchant, at=t, sku=sku) for t in times]
    put_order(db_session, make_merchant(db_session), at=T0)  # another merchant's
    scope = Scope(merchant.id, settings)
    pages = _walk(db_session, scope, OrderFilter(), limit=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    walked = [i for p in pages for i in p]
    expected = [o.id for o in sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)]
    assert walked == expected


def test_cursor_round_trip_and_broken_cursors(db_session: Session, settings: Settings) -> None:
    assert decode_cursor(encode_cursor(T0, "abc")) == (T0, "abc")
    scope = Scope(make_merchant(db_session).id, settings)
    for broken in ["!!!", "bm90LWEtY3Vyc29y", encode_cursor(T0, "x" * 40)]:
        with pytest.raises(InvalidInputError):
            list_orders(db_session, scope, OrderFilter(), cursor=broken)


def test_filters_station_campaign_and_local_dates(db_session: Session, settings: Settings) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant), stock=100)
    st1, st2 = make_station(db_session), make_station(db_session)
    campaign = Campaign(
        merchant_id=merchant.id, sku_id=sku.id, title="Peach week", kind="fixed", tiers=[],
        min_size=2, max_size=5, starts_at=T0 - timedelta(days=3), ends_at=T0 + timedelta(days=3),
        created_by="staff",
    )  # fmt: skip
    db_session.add(campaign)
    db_session.flush()
    group = Group(campaign_id=campaign.id, min_size=2, max_size=5, deadline_at=T0)
    db_session.add(group)
    db_session.flush()
    # T0 is 10:00 on Dec 1 in Shanghai; 23:30 UTC on Dec 1 is already Dec 2 there.
    a = put_order(db_session, merchant, sku=sku, station_id=st1.id, at=T0)
    b = put_order(db_session, merchant, sku=sku, station_id=st2.id, at=T0, group_id=group.id)
    late = put_order(
        db_session, merchant, sku=sku, station_id=st1.id, at=T0.replace(hour=23, minute=30)
    )
    scope = Scope(merchant.id, settings)

    def ids(**kw: object) -> set[str]:
        return {r.id for r in list_orders(db_session, scope, OrderFilter(**kw), limit=200).rows}  # type: ignore[arg-type]

    assert ids(station_id=st1.id) == {a.id, late.id}
    assert ids(campaign_id=campaign.id) == {b.id}
    row = list_orders(db_session, scope, OrderFilter(campaign_id=campaign.id)).rows[0]
    assert (row.campaign, row.station) == ("Peach week", st2.name)
    assert ids(date_from=date(2026, 12, 1), date_to=date(2026, 12, 1)) == {a.id, b.id}
    assert ids(date_from=date(2026, 12, 2)) == {late.id}
    assert ids(date_from=date(2026, 12, 2), tz="UTC") == set()
    with pytest.raises(InvalidInputError):
        OrderFilter(date_from=date(2026, 12, 2), date_to=date(2026, 12, 1))


def test_search_by_order_id_phone_and_phone_tail(db_session: Session, settings: Settings) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant), stock=100)
    alice = shopper_with_phone(db_session, settings, "+8613800138000")
    bob = shopper_with_phone(db_session, settings, "+8613900139001")
    a = put_order(db_session, merchant, sku=sku, user_id=alice)
    b = put_order(db_session, merchant, sku=sku, user_id=bob)
    other = put_order(db_session, make_merchant(db_session), user_id=alice)
    scope = Scope(merchant.id, settings)

    def found(q: str) -> set[str]:
        return {r.id for r in list_orders(db_session, scope, OrderFilter(q=q)).rows}

    assert found(a.id) == {a.id}
    assert found(a.id[:8].upper()) == {a.id}
    assert found(a.id[:13]) == {a.id} and found(a.id[:4]) >= {a.id}  # ranges on the key
    assert found(a.id[:3] + "-") == set()  # not a UUID's shape: LIKE alone, no match
    assert found("138 0013 8000") == {a.id}  # a whole phone, as typed
    assert found("+86 139-0013-9001") == {b.id}
    assert found("8000") == {a.id}  # the last four digits a shopper reads out
    assert found("138****8000") == {a.id}  # or the masked number the list shows
    assert found("0000") == set()
    assert other.id not in found(other.id)
    counts = tab_counts(db_session, scope, OrderFilter(q="9001"))
    assert counts[Tab.TO_SHIP] == 1 and sum(counts.values()) == 1
    for bad in ["Robert'); DROP TABLE orders;--", "x" * 65, "+86 000 0000 0000"]:
        with pytest.raises(InvalidInputError):
            list_orders(db_session, scope, OrderFilter(q=bad))


def test_pii_is_masked_unless_revealed(db_session: Session, settings: Settings) -> None:
    merchant = make_merchant(db_session)
    user_id = shopper_with_phone(db_session, settings, "+8613800138000")
    put_order(db_session, merchant, user_id=user_id)
    masked = list_orders(db_session, Scope(merchant.id, settings), OrderFilter()).rows[0]
    assert masked.shopper_phone == "138****8000"
    assert masked.shopper_name.startswith("s") and set(masked.shopper_name[1:]) == {"*"}
    shown = next(iter(stream_rows(db_session, Scope(merchant.id, settings, True), OrderFilter())))
    assert shown.shopper_phone == "+8613800138000"
    assert shown.shopper_name.startswith("shopper ")


def test_digits_that_are_no_phone_search_order_ids(db_session: Session, settings: Settings) -> None:
    merchant = make_merchant(db_session)
    alice = shopper_with_phone(db_session, settings, "+8613800138000")
    digits = put_order(db_session, merchant, user_id=alice)
    digits.id = "12345678-0000-4000-8000-000000000001"  # an id that starts with 8 digits
    tail = put_order(db_session, merchant)
    tail.id = "80001111-0000-4000-8000-000000000002"  # starts like alice's last four digits
    db_session.flush()
    scope = Scope(merchant.id, settings)

    def found(q: str) -> set[str]:
        return {r.id for r in list_orders(db_session, scope, OrderFilter(q=q)).rows}

    assert found("12345678") == {digits.id}  # no phone: read as the start of an order id
    assert found("8000") == {digits.id, tail.id}  # alice's last four, or an id's start
