"""A merchant's orders: filters, status tab counts, keyset pages, and the rows exports stream.

Pages are keyset-paginated on (created_at, id), newest first, so page 500 costs what page 1
does; the indexes `ix_orders_merchant_created` and `ix_orders_merchant_status_created`
(migration 0024_console_orders) serve the list and the tab counts at a million orders.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from tuanbox.accounts.errors import InvalidPhoneError
from tuanbox.accounts.models import User
from tuanbox.accounts.phones import to_e164
from tuanbox.catalog.models import Product, Sku
from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.errors import InvalidInputError
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.lockers.models import Station
from tuanbox.merchant_orders.counters import WAIT_LOCK, fold_deltas
from tuanbox.merchant_orders.models import OrderTabCount
from tuanbox.merchant_orders.pii import mask_name, mask_phone
from tuanbox.merchant_orders.tabs import RULES, Tab, tab_of
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A search by the last four digits of a phone decrypts the phones of the shoppers of at most
# this many newest orders matching the other filters (phones are stored only encrypted).
TAIL_SCAN_ORDERS = 5000
_ORDER_ID_PART = re.compile(r"^[0-9a-f-]{4,36}$")
_PHONE_TAIL = re.compile(r"^(?:\d{3}\*{4})?(\d{4})$")  # `8000` or `138****8000`
_PHONE = re.compile(r"^\+?[0-9 \-]{7,20}$")
MAX_QUERY = 64


@dataclass(frozen=True)
class OrderFilter:
    """What the merchant narrowed the list to; every field is optional."""

    tab: Tab | None = None
    campaign_id: str | None = None
    station_id: str | None = None
    # Local dates (in `tz`), both inclusive.
    date_from: date | None = None
    date_to: date | None = None
    # An order id (or its first characters), a full phone, or a phone's last four digits.
    q: str | None = None
    tz: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.q is not None and len(self.q) > MAX_QUERY:
            raise InvalidInputError(f"a search is at most {MAX_QUERY} characters", field="q")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInputError("the date range ends before it starts", field="date_to")


@dataclass(frozen=True)
class OrderRow:
    id: str
    created_at: datetime
    status: str
    tab: Tab
    kind: str
    awaiting: str | None
    product: str
    sku: str
    qty: int
    total_cents: int
    paid_cents: int
    refunded_cents: int
    station_id: str | None
    station: str | None
    campaign_id: str | None
    campaign: str | None
    shopper_name: str
    shopper_phone: str
    accept_deadline: datetime | None


@dataclass(frozen=True)
class Page:
    rows: list[OrderRow]
    next_cursor: str | None


@dataclass
class Scope:
    """The merchant whose orders are read, and how personal data is shown."""

    merchant_id: str
    settings: Settings
    reveal_pii: bool = False
    _cipher: PiiCipher | None = field(default=None, repr=False)

    @property
    def cipher(self) -> PiiCipher:
        if self._cipher is None:
            self._cipher = PiiCipher(self.settings)
        return self._cipher


def encode_cursor(created_at: datetime, order_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, order_id = raw.split("|", 1)
        moment = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidInputError("this page link is broken: start from the first page",
                                field="cursor") from exc  # fmt: skip
    if moment.tzinfo is None or len(order_id) > 36:
        raise InvalidInputError("this page link is broken: start from the first page",
                                field="cursor")  # fmt: skip
    return moment, order_id


def tab_condition(tab: Tab) -> ColumnElement[bool]:
    rule = RULES[tab]
    cond: ColumnElement[bool] = Order.status.in_([s.value for s in rule.statuses])
    if rule.paid_awaiting_group is True:
        cond = and_(cond, or_(Order.status != OrderStatus.PAID, Order.awaiting == Awaiting.GROUP))
    elif rule.paid_awaiting_group is False:
        cond = and_(
            cond,
            or_(
                Order.status != OrderStatus.PAID,
                Order.awaiting.is_(None),
                Order.awaiting != Awaiting.GROUP,
            ),
        )
    if rule.refunded_after_pickup is True:
        cond = and_(
            cond, or_(Order.status != OrderStatus.REFUNDED, Order.picked_up_at.is_not(None))
        )
    elif rule.refunded_after_pickup is False:
        cond = and_(cond, or_(Order.status != OrderStatus.REFUNDED, Order.picked_up_at.is_(None)))
    return cond


def _day_start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _conditions(
    session: Session, scope: Scope, flt: OrderFilter, *, with_tab: bool
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [Order.merchant_id == scope.merchant_id]
    if flt.station_id:
        conds.append(Order.station_id == flt.station_id)
    if flt.campaign_id:
        conds.append(
            Order.group_id.in_(select(Group.id).where(Group.campaign_id == flt.campaign_id))
        )
    if flt.date_from:
        conds.append(Order.created_at >= _day_start(flt.date_from, flt.tz))
    if flt.date_to:
        conds.append(Order.created_at < _day_start(flt.date_to + timedelta(days=1), flt.tz))
    if flt.q and flt.q.strip():
        conds.append(_search(session, scope, conds, flt.q.strip()))
    if with_tab and flt.tab is not None:
        conds.append(tab_condition(flt.tab))
    return conds


def _search(
    session: Session, scope: Scope, conds: list[ColumnElement[bool]], q: str
) -> ColumnElement[bool]:
    """An order id or its start; a whole phone (blind index); a phone's last four digits.

    Digits alone may be several of these (`12345678` starts an order id and is no phone;
    `8000` ends a phone and may start an id): every reading that applies is searched."""
    readings: list[ColumnElement[bool]] = []
    tail = _PHONE_TAIL.match(q)
    if tail:
        readings.append(Order.user_id.in_(_users_with_tail(session, scope, conds, tail.group(1))))
    if _PHONE.match(q) and sum(c.isdigit() for c in q) >= 7:
        try:
            phone = to_e164(q, scope.settings.phone_default_region)
        except InvalidPhoneError:
            phone = None
        if phone is not None:
            users = select(User.id).where(User.phone_hash.in_(scope.cipher.blind_indexes(phone)))
            readings.append(Order.user_id.in_(users))
    if _ORDER_ID_PART.match(q.lower()):
        readings.append(_id_prefix(q.lower()))
    if not readings:
        raise InvalidInputError(
            "search by order number, the shopper's phone or its last four digits", field="q"
        )
    return or_(*readings)


_UUID_LOW = "00000000-0000-0000-0000-000000000000"
_UUID_HIGH = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def _id_prefix(prefix: str) -> ColumnElement[bool]:
    """Order ids starting with `prefix`: LIKE decides, and when the prefix fits a UUID's
    shape, a range of the primary key's index bounds the scan (a LIKE prefix alone uses no
    index outside the C collation). The bounds keep the dashes where UUIDs have them, so
    collations that skip dashes order them the same way."""
    like = Order.id.startswith(prefix, autoescape=True)
    shaped = all(
        (ch == "-") == (_UUID_LOW[i] == "-") for i, ch in enumerate(prefix[: len(_UUID_LOW)])
    )
    if not shaped:
        return like
    low = prefix + _UUID_LOW[len(prefix) :]
    high = prefix + _UUID_HIGH[len(prefix) :]
    return and_(Order.id >= low, Order.id <= high, like)


def _users_with_tail(
    session: Session, scope: Scope, conds: list[ColumnElement[bool]], tail: str
) -> list[str]:
    """Shoppers among the newest TAIL_SCAN_ORDERS orders under the other filters (any tab)
    whose phone ends in `tail`."""
    recent = (
        select(Order.user_id)
        .where(*conds)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(TAIL_SCAN_ORDERS)
        .subquery()
    )
    rows = session.execute(
        select(User.id, User.phone_enc).where(
            User.id.in_(select(recent.c.user_id).distinct()), User.phone_enc.is_not(None)
        )
    ).all()
    found = []
    for user_id, phone_enc in rows:
        phone = _decrypt(scope.cipher, phone_enc, "phone")
        if phone is not None and phone.endswith(tail):
            found.append(user_id)
    return found


def _rows_query(conds: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    return (
        select(
            # Columns, not the Order entity: an export streams them by the hundred thousand.
            Order.id,
            Order.created_at,
            Order.status,
            Order.awaiting,
            Order.picked_up_at,
            Order.kind,
            Order.qty,
            Order.total_cents,
            Order.paid_cents,
            Order.refunded_cents,
            Order.station_id,
            Order.accept_deadline,
            Order.user_id,
            Product.name,
            Sku.name,
            Station.name,
            Campaign.id,
            Campaign.title,
            User.display_name,
            User.display_name_enc,
            User.phone_enc,
        )
        .join(Sku, Sku.id == Order.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(User, User.id == Order.user_id)
        .outerjoin(Station, Station.id == Order.station_id)
        .outerjoin(Group, Group.id == Order.group_id)
        .outerjoin(Campaign, Campaign.id == Group.campaign_id)
        .where(*conds)
        .order_by(Order.created_at.desc(), Order.id.desc())
    )


def _decrypt(cipher: PiiCipher, token: str | None, context: str) -> str | None:
    if not token:
        return None
    try:
        return cipher.decrypt(token, context=context)
    except PiiDecryptError:
        return None


def _row(scope: Scope, record: Any) -> OrderRow:
    order = record  # named columns: record.id, record.status, ...
    product, sku, station, campaign_id, campaign, name, name_enc, phone_enc = record[13:]
    name = _decrypt(scope.cipher, name_enc, f"display_name:{order.user_id}") or name
    phone = _decrypt(scope.cipher, phone_enc, "phone")
    if not scope.reveal_pii:
        name, phone = mask_name(name), mask_phone(phone)
    return OrderRow(
        id=order.id,
        created_at=order.created_at,
        status=order.status,
        tab=tab_of(order.status, order.awaiting, order.picked_up_at is not None),
        kind=order.kind,
        awaiting=order.awaiting,
        product=product,
        sku=sku,
        qty=order.qty,
        total_cents=order.total_cents,
        paid_cents=order.paid_cents,
        refunded_cents=order.refunded_cents,
        station_id=order.station_id,
        station=station,
        campaign_id=campaign_id,
        campaign=campaign,
        shopper_name=name or "",
        shopper_phone=phone or "",
        accept_deadline=order.accept_deadline,
    )


def list_orders(
    session: Session,
    scope: Scope,
    flt: OrderFilter,
    *,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of the merchant's orders, newest first, after `cursor` (a previous page's)."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    conds = _conditions(session, scope, flt, with_tab=True)
    if cursor:
        at, order_id = decode_cursor(cursor)
        conds.append(tuple_(Order.created_at, Order.id) < tuple_(at, order_id))
    records = session.execute(_rows_query(conds).limit(limit + 1)).all()
    rows = [_row(scope, r) for r in records[:limit]]
    more = len(records) > limit
    return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


def tab_counts(
    session: Session, scope: Scope, flt: OrderFilter, *, counters: bool = True
) -> dict[Tab, int]:
    """How many orders each tab holds under the other filters (the tab itself ignored).

    Counted per status (an index-only scan of `ix_orders_merchant_status_created` when only
    the merchant and dates filter), then the two statuses two tabs share are split by
    counting their few rows: paid orders waiting for their group, refunds after pickup.

    Without other filters, on PostgreSQL, the counts are the merchant's `order_tab_counts`
    plus its pending `order_tab_deltas` (appended by triggers in the orders' own transactions,
    folded in by compaction: `counters`); `counters=False` counts the orders (the bench's
    baseline)."""
    unfiltered = not (flt.campaign_id or flt.station_id or flt.date_from or flt.date_to or flt.q)
    if counters and unfiltered and session.get_bind().dialect.name == "postgresql":
        return counted_tabs(session, scope.merchant_id)
    conds = _conditions(session, scope, flt, with_tab=False)
    per_status: dict[str, int] = {
        status: n
        for status, n in session.execute(
            select(Order.status, func.count()).where(*conds).group_by(Order.status)
        )
    }
    in_group = _count(
        session, conds, Order.status == OrderStatus.PAID, Order.awaiting == Awaiting.GROUP
    )
    after_pickup = _count(
        session, conds, Order.status == OrderStatus.REFUNDED, Order.picked_up_at.is_not(None)
    )
    counts = dict.fromkeys(Tab, 0)
    for status, n in per_status.items():
        if status == OrderStatus.PAID:
            counts[Tab.GROUPING] += in_group
            counts[Tab.TO_SHIP] += n - in_group
        elif status == OrderStatus.REFUNDED:
            counts[Tab.AFTER_SALES] += after_pickup
            counts[Tab.CLOSED] += n - after_pickup
        else:
            counts[tab_of(status, None, False)] += n
    return counts


# Counters plus pending deltas in one statement: one snapshot, so a compaction committing
# meanwhile is seen whole or not at all (`counters` module docstring).
COUNTED = text(
    "SELECT tab, sum(n) FROM ("
    " SELECT tab, n FROM order_tab_counts WHERE merchant_id = :m"
    " UNION ALL SELECT tab, n FROM order_tab_deltas WHERE merchant_id = :m"
    ") AS t GROUP BY tab"
)


def counted_tabs(session: Session, merchant_id: str) -> dict[Tab, int]:
    """The merchant's tab counts: `order_tab_counts` plus its pending `order_tab_deltas`
    (PostgreSQL), exact whether or not compaction has run."""
    counts = dict.fromkeys(Tab, 0)
    for tab, n in session.execute(COUNTED, {"m": merchant_id}):
        counts[Tab(tab)] = int(n or 0)
    return counts


RECOUNT = text(
    "SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL) AS tab, "
    "count(*) FROM orders GROUP BY 1, 2"
)


def reconcile_tab_counts(session: Session) -> int:
    """Rebuild `order_tab_counts` from the orders where they differ (PostgreSQL); returns
    how many (merchant, tab) counts were wrong. The caller commits.

    Under the compaction lock (so no compaction runs meanwhile), the EXCLUSIVE lock on the
    deltas waits for every transaction whose trigger already appended one to end, and holds
    back new ones (they wait, not fail) until this one commits; every pending delta is then
    folded into the counters, and the recount that follows sees all of them, so the result
    is exact."""
    session.execute(WAIT_LOCK)
    session.execute(text("LOCK TABLE order_tab_deltas IN EXCLUSIVE MODE"))
    while fold_deltas(session) > 0:
        pass
    expected = {(m, t): int(n) for m, t, n in session.execute(RECOUNT)}
    held = {
        (m, t): int(n)
        for m, t, n in session.execute(
            select(OrderTabCount.merchant_id, OrderTabCount.tab, OrderTabCount.n)
        )
    }
    wrong = {k for k in expected.keys() | held.keys() if expected.get(k, 0) != held.get(k, 0)}
    for merchant_id, tab in sorted(wrong):
        session.execute(
            delete(OrderTabCount).where(
                OrderTabCount.merchant_id == merchant_id, OrderTabCount.tab == tab
            )
        )
        session.add(
            OrderTabCount(merchant_id=merchant_id, tab=tab, n=expected.get((merchant_id, tab), 0))
        )
    session.flush()
    return len(wrong)


def _count(session: Session, conds: list[ColumnElement[bool]], *more: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).where(*conds, *more)) or 0)


def stream_rows(
    session: Session, scope: Scope, flt: OrderFilter, *, batch: int = 1000
) -> Iterator[OrderRow]:
    """Every matching order, newest first, fetched `batch` rows at a time (a server-side
    cursor on PostgreSQL), so an export of a million orders never holds them all."""
    conds = _conditions(session, scope, flt, with_tab=True)
    result = session.execute(
        _rows_query(conds).execution_options(yield_per=batch, stream_results=True)
    )
    for record in result:
        yield _row(scope, record)
