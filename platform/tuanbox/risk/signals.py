"""Risk signals in the database: keyed blind indexes recorded per event, counted per window.

The database, not Redis, holds them: every API replica and worker sees the same rows, a
count is one indexed query per key (`kind, value, at`), distinct accounts and the evidence
behind a count come from the same rows, and decisions cite them durably. Counts include
the event being screened (its rows are flushed first); two requests racing each see the
other only once it commits, which can delay a rule by one event, never skip it for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, distinct, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.crypto import PiiCipher
from tuanbox.risk.models import RiskHold, RiskReview, RiskSignal
from tuanbox.risk.rules import CountRule, Event, Key, RuleSet
from tuanbox.risk.scoring import Count
from tuanbox.settings import Settings

MAX_STICKY = 20  # an account's addresses and payment accounts carried on each of its events
MAX_EVIDENCE = 50  # accounts or orders listed behind one count
_HASH_SHOWN = 12  # characters of a blind index shown as evidence: enough to match rows


class Hasher:
    """Blind indexes of signal values (`tuanbox.crypto`): equal inputs, equal indexes."""

    def __init__(self, settings: Settings) -> None:
        self._cipher = PiiCipher(settings)

    def ip(self, raw: str) -> str:
        return self._cipher.blind_index(f"ip:{raw}")

    def device(self, raw: str) -> str:
        return self._cipher.blind_index(f"device:{raw}")

    def payer(self, provider: str, raw: str) -> str:
        return self._cipher.blind_index(f"payer:{provider}:{raw}")

    def address(self, text: str) -> str:
        # The same index an address gets anywhere: normalised (case, spaces) and keyed.
        return self._cipher.blind_index(text)


@dataclass(frozen=True)
class Keys:
    """The keys of one event; every value but the user id is a blind index."""

    user_id: str
    ip: str | None = None
    device: str | None = None
    addresses: tuple[str, ...] = ()
    payers: tuple[str, ...] = ()

    def pairs(self) -> list[tuple[Key, str]]:
        out: list[tuple[Key, str]] = [(Key.USER, self.user_id)]
        if self.ip:
            out.append((Key.IP, self.ip))
        if self.device:
            out.append((Key.DEVICE, self.device))
        out += [(Key.ADDRESS, a) for a in dict.fromkeys(self.addresses)]
        out += [(Key.PAYER, p) for p in dict.fromkeys(self.payers)]
        return out


def sticky_keys(session: Session, user_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The account's saved addresses and payment accounts, as seen in its signals."""
    rows = session.execute(
        select(RiskSignal.kind, RiskSignal.value)
        .where(RiskSignal.user_id == user_id, RiskSignal.kind.in_((Key.ADDRESS, Key.PAYER)))
        .distinct()
        .limit(MAX_STICKY)
    ).all()
    addresses = tuple(sorted(v for k, v in rows if k == Key.ADDRESS))
    payers = tuple(sorted(v for k, v in rows if k == Key.PAYER))
    return addresses, payers


def sticky_keys_of(
    session: Session, user_ids: Iterable[str]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """`sticky_keys` for several accounts in one query (a batch of queued joins): each
    account's first MAX_STICKY distinct (kind, value) pairs in order; an account without
    any maps to two empty tuples."""
    wanted = list(dict.fromkeys(user_ids))
    rows = session.execute(
        select(RiskSignal.user_id, RiskSignal.kind, RiskSignal.value)
        .where(RiskSignal.user_id.in_(wanted), RiskSignal.kind.in_((Key.ADDRESS, Key.PAYER)))
        .distinct()
        .order_by(RiskSignal.user_id, RiskSignal.kind, RiskSignal.value)
    ).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for user_id, kind, value in rows:
        kept = found.setdefault(user_id, [])
        if len(kept) < MAX_STICKY:
            kept.append((kind, value))
    out = {}
    for user_id in wanted:
        kept = found.get(user_id, [])
        out[user_id] = (
            tuple(sorted(v for k, v in kept if k == Key.ADDRESS)),
            tuple(sorted(v for k, v in kept if k == Key.PAYER)),
        )
    return out


def order_keys(session: Session, order_id: str) -> tuple[str | None, str | None]:
    """The IP and device an order was placed or checked out from (latest), if recorded."""
    rows = session.execute(
        select(RiskSignal.kind, RiskSignal.value)
        .where(RiskSignal.order_id == order_id, RiskSignal.kind.in_((Key.IP, Key.DEVICE)))
        .order_by(RiskSignal.id)
    ).all()
    found = {kind: value for kind, value in rows}
    return found.get(Key.IP), found.get(Key.DEVICE)


def seen(session: Session, user_id: str, events: Iterable[Event]) -> bool:
    return (
        session.scalar(
            select(RiskSignal.id)
            .where(
                RiskSignal.user_id == user_id,
                RiskSignal.kind == Key.USER,
                RiskSignal.event.in_(list(events)),
            )
            .limit(1)
        )
        is not None
    )


def order_recorded(session: Session, order_id: str, event: Event) -> bool:
    return (
        session.scalar(
            select(RiskSignal.id)
            .where(RiskSignal.order_id == order_id, RiskSignal.event == event)
            .limit(1)
        )
        is not None
    )


def record(
    session: Session,
    event: Event,
    keys: Keys,
    *,
    now: datetime,
    order_id: str | None = None,
    ref: str | None = None,
) -> list[int] | None:
    """Add one row per key in one INSERT; their ids, or None when `ref` was recorded before.

    A Core statement, not ORM objects: a join screens every seat, and the rows are only
    written here and linked to their order (`link_order`) later."""
    values = [
        {
            "at": now,
            "event": event.value,
            "kind": kind.value,
            "value": value,
            "user_id": keys.user_id,
            "order_id": order_id,
            "ref": ref,
        }
        for kind, value in keys.pairs()
    ]
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RiskSignal).values(values)
    if ref is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["event", "kind", "ref"])
    ids = list(session.scalars(statement.returning(RiskSignal.id)).all())
    if not ids and ref is not None:
        return None
    return ids


def link_order(session: Session, signal_ids: Iterable[int], order_id: str) -> None:
    """The order the signals were recorded for now exists: name it on them."""
    ids = list(signal_ids)
    if ids:
        session.execute(
            update(RiskSignal).where(RiskSignal.id.in_(ids)).values(order_id=order_id),
            execution_options={"synchronize_session": False},
        )


def _aggregate(rule: CountRule, now: datetime, match: Any) -> Any:
    condition = match & (RiskSignal.at >= now - timedelta(seconds=rule.window_s))
    if rule.events:
        condition = condition & RiskSignal.event.in_(sorted(rule.events))
    if rule.measure == "accounts":
        return func.count(distinct(RiskSignal.user_id)).filter(condition)
    return func.count(RiskSignal.id).filter(condition)


def count_facts(
    session: Session,
    ruleset: RuleSet,
    keys: Keys,
    now: datetime,
    event: Event,
    *,
    evidence: bool = True,
) -> dict[str, Count]:
    """Each count rule's count for this event's keys (the largest over its values), in one
    query; with `evidence`, the accounts and orders behind the ones that reach their
    threshold. Rules that are off, or that do not score this kind of event, are not counted."""
    columns: list[Any] = []
    slots: list[tuple[CountRule, str]] = []
    matches: list[Any] = []
    for kind, value in keys.pairs():
        rules = [r for r in ruleset.counts if r.enabled and r.key == kind and r.applies_to(event)]
        if not rules:
            continue
        oldest = now - timedelta(seconds=max(r.window_s for r in rules))
        match = (RiskSignal.kind == kind) & (RiskSignal.value == value) & (RiskSignal.at >= oldest)
        matches.append(match)
        for rule in rules:
            columns.append(_aggregate(rule, now, match))
            slots.append((rule, value))
    if not columns:
        return {}
    row = session.execute(select(*columns).where(or_(*matches))).one()
    best: dict[str, tuple[int, str]] = {}
    for (rule, value), n in zip(slots, row, strict=True):
        if rule.name not in best or int(n or 0) > best[rule.name][0]:
            best[rule.name] = (int(n or 0), value)
    rules_by_name = {r.name: r for r in ruleset.counts}
    out: dict[str, Count] = {}
    for name, (n, value) in best.items():
        rule = rules_by_name[name]
        shown = value if rule.key == Key.USER else value[:_HASH_SHOWN]
        if n < rule.threshold or not evidence:
            out[name] = Count(n, shown)
            continue
        orders = _orders_behind(session, rule, value, now) if rule.measure == "events" else ()
        out[name] = Count(n, shown, _accounts_behind(session, rule, value, now), orders)
    return out


def _accounts_behind(
    session: Session, rule: CountRule, value: str, now: datetime
) -> tuple[str, ...]:
    query = select(RiskSignal.user_id).where(
        RiskSignal.kind == rule.key,
        RiskSignal.value == value,
        RiskSignal.at >= now - timedelta(seconds=rule.window_s),
    )
    if rule.events:
        query = query.where(RiskSignal.event.in_(sorted(rule.events)))
    return tuple(sorted(session.scalars(query.distinct().limit(MAX_EVIDENCE))))


def _orders_behind(session: Session, rule: CountRule, value: str, now: datetime) -> tuple[str, ...]:
    query = select(RiskSignal.order_id).where(
        RiskSignal.kind == rule.key,
        RiskSignal.value == value,
        RiskSignal.at >= now - timedelta(seconds=rule.window_s),
        RiskSignal.order_id.is_not(None),
    )
    if rule.events:
        query = query.where(RiskSignal.event.in_(sorted(rule.events)))
    return tuple(sorted(o for o in session.scalars(query.distinct().limit(MAX_EVIDENCE)) if o))


def account_facts(
    session: Session, user_id: str, *, now: datetime, flash_order: bool, exclude_subject: str
) -> dict[str, Any]:
    """The account's age, its orders by kind (for a flash order) and its reviews: open ones
    (other than the one about this very subject) and rejected ones."""
    from tuanbox.accounts.models import User
    from tuanbox.orders.models import Order

    facts: dict[str, Any] = {"flash_order": flash_order}

    # Reviews about the account, or holding one of its orders (a group's review names none),
    # counted by status beside the account's age: one round trip.
    def reviews(status: str) -> Any:
        return (
            select(func.count(distinct(RiskReview.id)))
            .outerjoin(RiskHold, RiskHold.review_id == RiskReview.id)
            .outerjoin(Order, Order.id == RiskHold.order_id)
            .where(
                or_(RiskReview.user_id == user_id, Order.user_id == user_id),
                RiskReview.status == status,
                RiskReview.subject_key != exclude_subject,
            )
            .scalar_subquery()
        )

    created = select(User.created_at).where(User.id == user_id).scalar_subquery()
    created_at, open_reviews, rejected_reviews = session.execute(
        select(created, reviews("open"), reviews("rejected"))
    ).one()
    if created_at is not None:
        created_at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        facts["account_age_days"] = max(0.0, (now - created_at).total_seconds() / 86400)
    if flash_order:
        kinds = dict(
            session.execute(
                select(Order.kind, func.count())
                .where(Order.user_id == user_id)
                .group_by(Order.kind)
            ).all()
        )
        facts["flash_orders"] = int(kinds.pop("flash", 0))
        facts["other_orders"] = int(sum(kinds.values()))
    facts["open_reviews"] = int(open_reviews or 0)
    facts["rejected_reviews"] = int(rejected_reviews or 0)
    return facts


def linking_keys(session: Session, user_ids: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
    """Every device, address and payment account seen with each of these accounts."""
    users = sorted(set(user_ids))
    out: dict[str, set[tuple[str, str]]] = {u: set() for u in users}
    rows = session.execute(
        select(RiskSignal.user_id, RiskSignal.kind, RiskSignal.value)
        .where(
            RiskSignal.user_id.in_(users),
            RiskSignal.kind.in_((Key.DEVICE, Key.ADDRESS, Key.PAYER)),
        )
        .distinct()
    ).all()
    for user, kind, value in rows:
        out[user].add((kind, value))
    return out


def prune(
    factory: sessionmaker[Session],
    *,
    retention_days: int,
    now: datetime | None = None,
    batch: int = 5000,
) -> int:
    """Delete signals older than the retention, in committed batches; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    total = 0
    while True:
        with factory() as session, session.begin():
            ids = select(RiskSignal.id).where(RiskSignal.at < cutoff).limit(batch)
            done = session.execute(
                delete(RiskSignal).where(RiskSignal.id.in_(ids.scalar_subquery()))
            )
            count = int(done.rowcount)  # type: ignore[attr-defined]
        total += count
        if count < batch:
            return total
