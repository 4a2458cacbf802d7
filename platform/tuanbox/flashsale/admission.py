"""The flash-sale reservation hot path: one Redis round trip on the event loop per request.

The admission script checks, in one atomic step, the token's revocation marker, the
shopper's then the IP's rate limit (GCRA, O(1) per key), a repeated Idempotency-Key, the
per-shopper limit and the stock. A turned-away buyer (sold out, over a limit, rate limited)
is answered from that alone, without a thread or the database. The database is reached, in a
thread, only by a winner whose order is written in the request (`flash_order_writes=request`),
a replayed key, a sale not yet loaded into Redis, or a sale whose terms this process has not
cached.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi.concurrency import run_in_threadpool

from tuanbox.accounts.deps import Principal
from tuanbox.accounts.errors import TokenRevokedError
from tuanbox.accounts.revocation import PREFIX as REVOKED_PREFIX
from tuanbox.api.deps import SessionSource
from tuanbox.errors import NotFoundError, RateLimitedError, TuanboxError
from tuanbox.flashsale import entropy, services
from tuanbox.flashsale.counters import Admission, AsyncFlashCounters, FlashCounters
from tuanbox.flashsale.lua import ReserveResult, ReserveStatus
from tuanbox.membership.markers import PREFIX as MEMBER_PREFIX
from tuanbox.membership.pricing import DeliveryTerms
from tuanbox.settings import Settings

WINDOW_S = 10  # the flash_per_*_per_10s windows


@dataclass
class KnownStations:
    """Which station ids exist, cached briefly: on the stream path an order is written after
    the 201, so a shopper's unknown station must be refused before admission."""

    ttl_s: float = 30.0
    _seen: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def peek(self, station_id: str) -> bool | None:
        hit = self._seen.get(station_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def load(self, source: SessionSource, station_id: str) -> bool:
        from tuanbox.lockers.models import Station

        with source() as session:
            exists = session.get(Station, station_id) is not None
        if len(self._seen) > 10_000:
            self._seen.clear()  # bounded: ids come from outside
        self._seen[station_id] = (time.monotonic() + self.ttl_s, exists)
        return exists


@dataclass(frozen=True)
class Request:
    """`ReserveItem` as it arrived over HTTP, authenticated."""

    sale_id: str
    user: Principal
    key: str  # the client's Idempotency-Key
    qty: int
    station_id: str | None
    client_ip: str
    now: datetime


@dataclass
class HotPath:
    """Per-process state of the hot path: sale terms and known stations, cached briefly."""

    settings: Settings
    # Terms never change after creation; the TTL only lets a deleted sale be forgotten.
    terms: services.TermsCache = field(default_factory=lambda: services.TermsCache(ttl_s=60.0))
    stations: KnownStations = field(default_factory=KnownStations)
    # One DB read per sale however many requests miss the cache at once (single flight).
    _loading: dict[str, asyncio.Future[services.SaleTerms | None]] = field(default_factory=dict)

    async def reserve(
        self,
        req: Request,
        counters: AsyncFlashCounters,
        blocking: FlashCounters,
        source: SessionSource,
    ) -> tuple[int, dict[str, Any]]:
        """Admit or turn away one buyer; returns (201, reservation) or raises a problem."""
        settings = self.settings
        request_id = services.request_key(req.user.id, req.key)
        prefix = settings.rate_limit_prefix
        terms = self.terms.peek(req.sale_id)
        stream = settings.flash_order_writes == "stream"
        # Ids for the order the stream would queue: drawn before the one atomic step.
        ids = (entropy.uuid4(), entropy.uuid4()) if stream else None
        checks = Admission(
            user_id=req.user.id,
            request_id=request_id,
            qty=req.qty,
            per_user_limit=terms.per_user_limit if terms is not None else 1,
            token_version=req.user.token_version,
            revocation_key=REVOKED_PREFIX + req.user.id,
            # GCRA keys (one number each; `lua.ADMIT`), named apart from the sorted-set
            # windows of the code before, so that versions side by side never share a key
            user_window=(f"{prefix}flash:tat:user:{req.user.id}", settings.flash_per_user_per_10s),
            ip_window=(f"{prefix}flash:tat:ip:{req.client_ip}", settings.flash_per_ip_per_10s),
            window_us=WINDOW_S * 1_000_000,
            queue=ids,
            station_id=req.station_id,
        )
        if terms is None:
            # Not cached here yet: the limits first (an unknown sale id costs its caller a
            # window slot before any DB read), then the terms from the DB.
            await self._limits_only(counters, req.sale_id, checks)
            terms = await self._load_terms_once(source, req.sale_id)
            # Counted once: the admission below repeats no check.
            checks = replace(
                checks,
                per_user_limit=terms.per_user_limit if terms is not None else 1,
                revocation_key="",
                user_window=None,
                ip_window=None,
            )
        early_s = settings.membership_early_access_s
        refusal = self._refusal(terms, req, early_s)
        if refusal is None and stream and req.station_id:
            known = self.stations.peek(req.station_id)
            if known is None:
                known = await run_in_threadpool(self.stations.load, source, req.station_id)
            if not known:
                refusal = NotFoundError("no such pickup station", field="station_id")
        if refusal is not None:
            if checks.revocation_key:
                await self._limits_only(counters, req.sale_id, checks)
            raise refusal
        assert terms is not None
        admission = checks
        if req.now < terms.starts_at:  # members' early window: the script decides
            admission = replace(
                checks,
                member_key=MEMBER_PREFIX + req.user.id,
                opens_at_s=math.ceil(terms.starts_at.timestamp()),
                early_s=early_s,
            )
        result = await counters.admit(terms.id, admission)
        self._raise_for_checks(result)
        if result.status is ReserveStatus.NOT_LOADED:
            await run_in_threadpool(self._load_counters, source, blocking, terms.id)
            again = replace(admission, revocation_key="", user_window=None, ip_window=None)
            result = await counters.admit(terms.id, again)
        if result.status is ReserveStatus.NOT_OPEN:
            raise services.SaleNotActiveError("this flash sale opens early to members only")
        if result.status is ReserveStatus.SOLD_OUT:
            raise services.SoldOutError("sold out")
        if result.status is ReserveStatus.USER_LIMIT:
            raise services.FlashLimitError(
                f"at most {terms.per_user_limit} units per shopper in this sale"
            )
        if result.status is ReserveStatus.DUPLICATE:
            held = result.prior
            if stream and held is not None and held.reservation_id and held.order_id:
                return 201, _out(held.reservation_id, held.order_id, held.qty, result, True)
            replay = await run_in_threadpool(
                self._replay, source, terms.id, req.user.id, request_id
            )
            return 201, vars(replay)
        if result.status is not ReserveStatus.RESERVED:
            raise services.SoldOutError(f"counters not ready ({result.status.name})")
        if ids is not None:
            return 201, _out(ids[0], ids[1], req.qty, result, False)
        reserved = await run_in_threadpool(self._record, source, blocking, terms, req, request_id)
        return 201, vars(reserved)

    @staticmethod
    def _refusal(
        terms: services.SaleTerms | None, req: Request, early_s: int = 0
    ) -> TuanboxError | None:
        if terms is None:
            return NotFoundError(f"flash sale {req.sale_id} not found")
        opens = terms.starts_at - timedelta(seconds=early_s)
        if not opens <= req.now < terms.ends_at:
            return services.SaleNotActiveError("this flash sale is not running now")
        if not 1 <= req.qty <= terms.per_user_limit:
            return services.FlashLimitError(
                f"between 1 and {terms.per_user_limit} units per shopper"
            )
        return None

    async def _limits_only(
        self, counters: AsyncFlashCounters, sale_id: str, checks: Admission
    ) -> None:
        limits = replace(checks, limits_only=True)
        self._raise_for_checks(await counters.admit(sale_id, limits))

    @staticmethod
    def _raise_for_checks(result: ReserveResult) -> None:
        if result.status is ReserveStatus.REVOKED:
            raise TokenRevokedError("this account's access was revoked; sign in again")
        if result.status is ReserveStatus.RATE_LIMITED:
            retry_after = max(1, -(-result.user_total // 1_000_000))
            raise RateLimitedError(
                f"rate limit exceeded for flash; retry in {retry_after} s",
                retry_after=retry_after,
            )

    async def _load_terms_once(
        self, source: SessionSource, sale_id: str
    ) -> services.SaleTerms | None:
        pending = self._loading.get(sale_id)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(self._load_terms, source, sale_id))
            self._loading[sale_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(sale_id, None))
        return await asyncio.shield(pending)

    # -- the blocking parts, each in one thread hop ---------------------------------------
    def _load_terms(self, source: SessionSource, sale_id: str) -> services.SaleTerms | None:
        with source() as session:
            try:
                return self.terms.get(session, sale_id)
            except NotFoundError:
                return None

    @staticmethod
    def _load_counters(source: SessionSource, blocking: FlashCounters, sale_id: str) -> None:
        with source() as session:
            services.load_counters(
                session, blocking, services.get_sale(session, sale_id), only_if_missing=True
            )

    @staticmethod
    def _replay(
        source: SessionSource, sale_id: str, user_id: str, request_id: str
    ) -> services.Reserved:
        with source() as session:
            return services.replay(session, sale_id, user_id, request_id)

    def _record(
        self,
        source: SessionSource,
        blocking: FlashCounters,
        terms: services.SaleTerms,
        req: Request,
        request_id: str,
    ) -> services.Reserved:
        with source() as session:
            return services.record_admitted(
                session,
                blocking,
                terms,
                user_id=req.user.id,
                request_id=request_id,
                qty=req.qty,
                pay_timeout_s=self.settings.order_pay_timeout_s,
                station_id=req.station_id,
                delivery=DeliveryTerms.of(self.settings),
            )


def _out(
    reservation_id: str, order_id: str, qty: int, result: ReserveResult, replayed: bool
) -> dict[str, Any]:
    return {
        "reservation_id": reservation_id,
        "order_id": order_id,
        "qty": qty,
        "remaining": result.remaining,
        "replayed": replayed,
    }
