"""The join route's stream path: one Redis script on the event loop admits a joiner, and the
answer (202 with the reservation) goes out before any row is written.

Used with TUANBOX_GROUP_JOIN_WRITES=stream for a join that carries an Idempotency-Key (the
key is how the shopper later gets the written answer). The same script first checks the
caller (token revocation, per-shopper and per-IP windows), so a join is one round trip. The
database is reached, in a thread, only to load a group Redis does not hold (groups are
loaded when their opening commits, `seats.hold_after_commit`; this is for the others and
after a Redis loss) and to replay a key whose join the consumer has written
(`groupbuy.joinstream`).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tuanbox.accounts.deps import Principal
from tuanbox.api.burst import caller_checks, caller_refused
from tuanbox.api.deps import SessionSource, session_source_for
from tuanbox.crypto import PiiCipher
from tuanbox.errors import DependencyUnavailableError
from tuanbox.flashsale.counters import CallsRedis
from tuanbox.groupbuy import seatlua
from tuanbox.groupbuy.domain import AlreadyMemberError, GroupClosedError, GroupFullError
from tuanbox.groupbuy.schemas import JoinIn
from tuanbox.groupbuy.seatlua import Entry, SeatStatus
from tuanbox.groupbuy.seats import (
    AsyncGroupSeats,
    GroupSeats,
    Join,
    load_group,
    prefix_of,
    request_id,
)
from tuanbox.idempotency import services as idempotency
from tuanbox.ratelimit.deps import client_ip
from tuanbox.settings import Settings


class JoinAcceptedOut(BaseModel):
    """202: the seat is held and the join queued; its order is being written. Repeat the
    request with the same Idempotency-Key to get the written answer (201 `JoinedOut`, or
    the refusal the database gave, e.g. 409 `GROUP_CLOSED`)."""

    reservation_id: str = Field(max_length=36)
    group_id: str = Field(max_length=36)
    qty: int
    seats_left: int = Field(description="Free seats left in the group after this one")
    status: str = Field("pending", description="Always `pending`: the order is being written")


def _blocking_seats(request: Request) -> GroupSeats:
    from tuanbox.ratelimit.deps import get_redis

    seats: GroupSeats | None = getattr(request.app.state, "group_seats", None)
    if seats is None:
        seats = GroupSeats(get_redis(request), prefix_of(request.app.state.settings))
        request.app.state.group_seats = seats
    return seats


def _load(source: SessionSource, seats: GroupSeats, group_id: str) -> None:
    with source() as session:
        load_group(session, seats, group_id)


def _stored(
    source: SessionSource, settings: Settings, user_id: str, key: str, digest: str
) -> idempotency.StoredResponse | None:
    with source() as session:
        return idempotency.stored_answer(session, PiiCipher(settings), user_id, key, digest)


def _accepted(join: Join, seats_left: int) -> dict[str, Any]:
    return JoinAcceptedOut(
        reservation_id=join.reservation_id,
        group_id=join.group_id,
        qty=join.qty,
        seats_left=seats_left,
    ).model_dump(mode="json")


# The caller's windows (`name` of `api.burst.caller_checks`), shared with group openings.
LIMIT_NAME = "group-join"


async def join(
    request: Request,
    client: CallsRedis,
    user: Principal,
    group_id: str,
    body: JoinIn,
    key: str,
    device_id: str | None,
) -> Response:
    """Admit or turn away one joiner (raises the refusal as a TuanboxError): the token's
    revocation, the per-shopper and per-IP windows and the seat in one script call."""
    from tuanbox.risk.signals import Hasher

    settings: Settings = request.app.state.settings
    user_id = user.id
    checks = seatlua.Checks(
        *caller_checks(
            request,
            user,
            LIMIT_NAME,
            per_user=(settings.group_join_per_user_per_min, 60),
            per_ip=(settings.group_join_per_ip_per_min, 60),
        )
    )
    url_path = request.scope["path"]
    digest = idempotency.request_hash("POST", url_path, {"group_id": group_id, **body.model_dump()})
    hasher: Hasher | None = None
    if settings.risk_enabled:
        hasher = getattr(request.app.state, "group_join_hasher", None)
        if hasher is None:
            hasher = request.app.state.group_join_hasher = Hasher(settings)
    ip = client_ip(request)
    new = Join(
        group_id=group_id,
        user_id=user_id,
        request_id=request_id(user_id, key),
        qty=body.qty,
        reservation_id=str(uuid.uuid4()),
        station_id=body.station_id,
        ip=hasher.ip(ip) if hasher and ip else None,
        device=hasher.device(device_id) if hasher and device_id else None,
        key=key,
        digest=digest,
    )
    cached: AsyncGroupSeats | None = getattr(request.app.state, "group_seats_async", None)
    if cached is None or cached.client is not client:
        cached = AsyncGroupSeats(client, prefix_of(settings))
        request.app.state.group_seats_async = cached
    result = await cached.admit(new, checks)
    if result.status is SeatStatus.REVOKED:
        raise caller_refused(LIMIT_NAME, revoked=True)
    if result.status is SeatStatus.RATE_LIMITED:
        raise caller_refused(LIMIT_NAME, revoked=False, wait_us=result.wait_us)
    if result.status is SeatStatus.NOT_LOADED:
        # Only a group opened without stream writes' loading (or lost by Redis): load it,
        # then admit without the checks, which the first call made (and logged).
        source = session_source_for(request)
        await run_in_threadpool(_load, source, _blocking_seats(request), group_id)
        result = await cached.admit(new)
    if result.status is SeatStatus.FULL:
        raise GroupFullError(f"group {group_id} has no seat left")
    if result.status is SeatStatus.ALREADY_MEMBER:
        raise AlreadyMemberError("you are already in this group")
    if result.status is SeatStatus.CLOSED:
        raise GroupClosedError(f"group {group_id} is no longer open")
    if result.status is SeatStatus.DUPLICATE:
        prior = result.prior
        assert prior is not None
        return await _replay(request, new, prior)
    if result.status is not SeatStatus.ADMITTED:
        raise DependencyUnavailableError(f"group seats not ready ({result.status.name})")
    return JSONResponse(_accepted(new, result.seats_left), status_code=202)


async def _replay(request: Request, new: Join, prior: Entry) -> Response:
    """A repeated key: the written answer once the consumer stored it, else the same 202."""
    settings: Settings = request.app.state.settings
    if prior.digest != new.digest:
        from tuanbox.idempotency.errors import IdempotencyKeyReusedError

        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request", key=new.key
        )
    stored = await run_in_threadpool(
        _stored, session_source_for(request), settings, new.user_id, new.key, new.digest
    )
    headers = {"Idempotent-Replayed": "true"}
    if stored is not None:
        return JSONResponse(stored.body, status_code=stored.status, headers=headers)
    held = Join(**{**vars(new), "reservation_id": prior.reservation_id, "qty": prior.qty})
    return JSONResponse(_accepted(held, prior.seats_left), status_code=202, headers=headers)
