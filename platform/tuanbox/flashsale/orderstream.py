"""Stream order writes: `tuanbox flash-orders` writes winners' orders from each sale's stream.

With TUANBOX_FLASH_ORDER_WRITES=stream the admission script queues a winner's order on its
sale's Redis Stream in the same atomic step that takes the units, and the API answers at
once with the reservation and order ids it chose. This consumer reads the streams of open
sales in one consumer group and writes each batch in one DB transaction (reservations,
orders, per-shopper totals, the sale's remaining), then acknowledges and deletes the
entries: the stream holds exactly the winners whose orders are not yet in the DB.

Exactly once: an entry delivered again (a consumer died after its commit, before its ack)
finds its request id in the DB and is only acknowledged; two consumers racing on one entry
meet at UNIQUE (sale_id, request_id) and the loser's batch is retried. Entries left pending
by a dead consumer are taken over after `flash_stream_claim_idle_s`; a restarted consumer of
the same name takes its own back at once. Until its batch commits, a winner's order exists
only in Redis: it survives what Redis's persistence survives (AOF), not more.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import aware
from tuanbox.db.base import utcnow
from tuanbox.errors import TuanboxError
from tuanbox.flashsale import lua, services
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.membership.models import Membership
from tuanbox.membership.pricing import NO_FEE, DeliveryTerms, needs_membership
from tuanbox.settings import Settings
from tuanbox.worker.streams import poll_until

log = logging.getLogger("tuanbox.flashsale.orders")

GROUP = "orders"


@dataclass(frozen=True)
class Queued:
    """One winner waiting on a sale's stream."""

    entry_id: str
    sale_id: str
    request_id: str
    user_id: str
    qty: int
    reservation_id: str
    order_id: str
    station_id: str | None
    at: int = 0  # admission time, Redis seconds: the order's price is decided as of then

    @classmethod
    def parse(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Queued:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(
            entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            f["sale"],
            f["req"],
            f["user"],
            int(f["qty"]),
            f["rid"],
            f["oid"],
            f["station"] or None,
            int(f.get("at") or 0),
        )


@dataclass
class Written:
    """What one batch did: orders written, redeliveries skipped, entries refused."""

    written: int = 0
    duplicates: int = 0
    refused: int = 0


def write_batch(
    session: Session,
    batch: list[Queued],
    *,
    pay_timeout_s: int,
    delivery: DeliveryTerms = NO_FEE,
) -> Written:
    """Write the batch's orders in the session's transaction (the caller commits); a request
    id the DB already has is skipped. Raises what `write_reservation` raises for a refused entry.

    Each winner is priced as a member or not as of their admission (`Queued.at`), from the
    membership record read once for the whole batch, and only for a sale where it matters
    (a member price below the sale's, or a delivery fee to waive)."""
    out = Written()
    terms = services.TermsCache(ttl_s=0)
    by_sale: dict[str, list[Queued]] = {}
    for entry in batch:
        by_sale.setdefault(entry.sale_id, []).append(entry)
    for sale_id, entries in by_sale.items():
        sale = terms.get(session, sale_id)
        known = set(
            session.scalars(
                select(Reservation.request_id).where(
                    Reservation.sale_id == sale_id,
                    Reservation.request_id.in_([e.request_id for e in entries]),
                )
            )
        )
        matters = [
            e
            for e in entries
            if needs_membership(sale.price_cents, e.qty, sale.member_price_cents, delivery)
        ]
        windows = _windows(session, {e.user_id for e in matters})
        for entry in entries:
            if entry.request_id in known:
                out.duplicates += 1
                continue
            known.add(entry.request_id)
            services.write_reservation(
                session,
                sale,
                user_id=entry.user_id,
                request_id=entry.request_id,
                qty=entry.qty,
                pay_timeout_s=pay_timeout_s,
                station_id=entry.station_id,
                reservation_id=entry.reservation_id,
                order_id=entry.order_id,
                delivery=delivery,
                member=_member_at(windows.get(entry.user_id), entry.at),
                admitted_at=_instant(entry.at),
            )
            out.written += 1
    return out


def _windows(session: Session, user_ids: set[str]) -> dict[str, tuple[datetime, datetime]]:
    """The membership windows of these shoppers, in one read."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Membership.user_id, Membership.starts_at, Membership.ends_at).where(
            Membership.user_id.in_(sorted(user_ids))
        )
    )
    return {user_id: (aware(start), aware(end)) for user_id, start, end in rows}


def _instant(at: int) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at > 0 else None


def _member_at(window: tuple[datetime, datetime] | None, at: int) -> bool:
    """A member when admitted (an entry queued before `at` was recorded: when written)."""
    if window is None:
        return False
    when = _instant(at) or utcnow()
    return window[0] <= when < window[1]


class OrderStreamConsumer:
    """Reads the open sales' streams and writes their orders; one per process, any number
    of processes (each with its own name)."""

    def __init__(
        self,
        client: redis.Redis,
        sessions: Callable[[], Session],
        settings: Settings,
        *,
        name: str | None = None,
        prefix: str = "tuanbox",
        sales_every_s: float = 1.0,
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._settings = settings
        self._counters = FlashCounters(client, prefix)
        self._prefix = prefix
        self.name = name or f"{socket.gethostname()}"
        self._sales_every_s = sales_every_s
        self._sales: list[str] = []
        self._sales_at = 0.0
        self._grouped: set[str] = set()
        self._own_pending = True  # first read: what this name left unacked last time
        self._claimed_at = 0.0

    # -- one step --------------------------------------------------------------------------
    def poll(self, block_ms: int = 200) -> Written:
        """Claim stale entries, read a batch, write it, acknowledge it."""
        sales = self._open_sales()
        if not sales:
            time.sleep(block_ms / 1000)  # nothing to read yet; the next poll looks again
            return Written()
        batch = self._claim_stale(sales) or self._read(sales, block_ms)
        if not batch:
            return Written()
        return self._write(batch)

    def run(self, stop: Callable[[], bool]) -> None:
        """Poll until `stop()`; a failing step is logged and retried (supervisor loop)."""
        poll_until(
            stop,
            self.poll,
            what="flash-sale order stream",
            after_failure=self._reread_own,
            logger=log,
        )

    def _reread_own(self) -> None:
        self._own_pending = True  # after a failure, this consumer's own pending entries first

    # -- reading -----------------------------------------------------------------------------
    def _key(self, sale_id: str) -> str:
        return lua.stream_key(sale_id, self._prefix)

    def _open_sales(self) -> list[str]:
        now = time.monotonic()
        if now - self._sales_at >= self._sales_every_s:
            with self._sessions() as session:
                self._sales = list(
                    session.scalars(select(FlashSale.id).where(FlashSale.closed_at.is_(None)))
                )
            self._sales_at = now
        for sale_id in self._sales:
            if sale_id not in self._grouped:
                self._ensure_group(sale_id)
        return self._sales

    def _ensure_group(self, sale_id: str) -> None:
        try:
            # From the stream's start: entries queued before the group existed count too.
            self._client.xgroup_create(self._key(sale_id), GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(sale_id)

    def _read(self, sales: list[str], block_ms: int) -> list[Queued]:
        if self._own_pending:
            # What this name was given and never acknowledged (it died mid-batch) comes first.
            batch = self._xread(sales, "0", None)
            if batch:
                return batch
            self._own_pending = False
        return self._xread(sales, ">", block_ms)

    def _xread(self, sales: list[str], start: str, block_ms: int | None) -> list[Queued]:
        try:
            got = self._client.xreadgroup(
                GROUP,
                self.name,
                {self._key(s): start for s in sales},
                count=self._settings.flash_stream_batch,
                block=block_ms,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped.clear()  # Redis lost its streams (restart, flush): group again
            return []
        return [
            Queued.parse(entry_id, fields)
            for _, entries in got or []
            for entry_id, fields in entries
            if fields  # an entry deleted while pending comes back without fields
        ]

    def _claim_stale(self, sales: list[str]) -> list[Queued]:
        """Entries another (dead) consumer left pending too long, taken over."""
        now = time.monotonic()
        idle_s = self._settings.flash_stream_claim_idle_s
        if now - self._claimed_at < min(idle_s, 5.0):
            return []
        self._claimed_at = now
        batch: list[Queued] = []
        for sale_id in sales:
            try:
                _, entries, *_ = self._client.xautoclaim(
                    self._key(sale_id),
                    GROUP,
                    self.name,
                    min_idle_time=int(idle_s * 1000),
                    count=self._settings.flash_stream_batch,
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._grouped.discard(sale_id)
                continue
            batch += [Queued.parse(entry_id, fields) for entry_id, fields in entries if fields]
        return batch

    # -- writing -----------------------------------------------------------------------------
    def _write(self, batch: list[Queued]) -> Written:
        pay_timeout_s = self._settings.order_pay_timeout_s
        try:
            done = self._commit(batch, pay_timeout_s)
        except IntegrityError:
            # Another consumer committed one of these first: again, now skipping it.
            done = self._commit(batch, pay_timeout_s)
        except OperationalError:
            raise  # the DB is away: nothing is acked, the entries stay pending
        except (SQLAlchemyError, TuanboxError):
            done = self._one_by_one(batch, pay_timeout_s)
        self._ack(batch)
        if done.refused:
            log.error("flash-sale orders refused by the database", extra={"count": done.refused})
        return done

    def _commit(self, batch: list[Queued], pay_timeout_s: int) -> Written:
        with self._sessions() as session:
            try:
                done = write_batch(
                    session,
                    batch,
                    pay_timeout_s=pay_timeout_s,
                    delivery=DeliveryTerms.of(self._settings),
                )
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return done

    def _one_by_one(self, batch: list[Queued], pay_timeout_s: int) -> Written:
        """A batch the DB refused: each entry alone; one it still refuses (the DB and Redis
        disagreed on stock or limits, the sale closed) gives its units back in Redis."""
        total = Written()
        for entry in batch:
            try:
                done = self._commit([entry], pay_timeout_s)
            except OperationalError:
                raise
            except (SQLAlchemyError, TuanboxError) as exc:
                log.error(
                    "flash-sale winner's order refused; reservation given back",
                    extra={"sale": entry.sale_id, "order": entry.order_id, "error": str(exc)},
                )
                self._counters.release(entry.sale_id, entry.request_id)
                total.refused += 1
                continue
            total.written += done.written
            total.duplicates += done.duplicates
        return total

    def _ack(self, batch: list[Queued]) -> None:
        """Done with these entries: acknowledged and dropped from the streams."""
        by_key: dict[str, list[str]] = {}
        for entry in batch:
            by_key.setdefault(self._key(entry.sale_id), []).append(entry.entry_id)
        pipe = self._client.pipeline(transaction=False)
        for key, ids in by_key.items():
            pipe.xack(key, GROUP, *ids)
            pipe.xdel(key, *ids)
        pipe.execute()


def run_consumer(settings: Settings, *, name: str | None = None) -> None:
    """`tuanbox flash-orders`: consume until SIGTERM or SIGINT, finishing the current batch."""
    from tuanbox.worker.streams import run_until_signalled

    run_until_signalled(
        settings,
        lambda client, sessions: OrderStreamConsumer(client, sessions, settings, name=name),
        what="flash-sale order stream consumer",
    )
