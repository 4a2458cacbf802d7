"""Group seats in Redis (stream join writes): the adapters for the scripts, loading a group
from the database, and reconciling Redis with it (DB wins).

Redis only admits or turns away joiners fast; the database is the record. A group is loaded
when its opening commits (free seats = size − seats taken, its members, its deadline;
`hold_after_commit`), or else the first time a join meets it (`load_group`: a group opened
by a session without the process's settings, or lost by Redis); seats the database takes
or frees outside the stream are told to Redis after their commit (`taken_after_commit`,
`freed_after_commit`). The joins consumer reconciles every few seconds whatever was missed:
seats freed in the database come back, a closed group closes, and after a Redis loss the
groups are loaded again from the database plus the joins still queued.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.errors import DependencyUnavailableError, NotFoundError
from tuanbox.flashsale.counters import CallsRedis
from tuanbox.groupbuy import seatlua
from tuanbox.groupbuy.domain import GroupStatus
from tuanbox.groupbuy.models import Group, Member
from tuanbox.settings import Settings

log = logging.getLogger(__name__)

# A group's keys outlive its deadline by a day: late retries of a key still replay.
KEEP_AFTER_DEADLINE_S = 86_400


@dataclass(frozen=True)
class Join:
    """One join as admitted over HTTP (stream writes)."""

    group_id: str
    user_id: str
    request_id: str
    qty: int
    reservation_id: str
    station_id: str | None
    ip: str | None  # blind indexes (risk control), never the raw values
    device: str | None
    key: str
    digest: str

    def args(self) -> list[str | int]:
        return [
            self.user_id,
            self.request_id,
            self.qty,
            self.reservation_id,
            self.group_id,
            self.station_id or "",
            self.ip or "",
            self.device or "",
            self.key,
            self.digest,
        ]


def prefix_of(settings: Settings) -> str:
    """The deployment's namespace for seats and the joins stream: under the rate limits'
    prefix (`TUANBOX_RATE_LIMIT_PREFIX`), the other per-request counters of the join route,
    so two deployments (or test runs) sharing one Redis never read each other's joins."""
    return f"{settings.rate_limit_prefix}seats"


def request_id(user_id: str, key: str) -> str:
    """A join's id in Redis: the shopper's Idempotency-Key, scoped to the shopper."""
    return hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()[:32]


class GroupSeats:
    """The blocking side (loads, releases, reconciliation); one per process."""

    def __init__(self, client: redis.Redis, prefix: str = "tuanbox") -> None:
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(seatlua.ADMIT)
        self._release = client.register_script(seatlua.RELEASE)
        self._reload = client.register_script(seatlua.RELOAD)
        self._mark = client.register_script(seatlua.MARK)

    def keys(self, group_id: str) -> list[str]:
        return seatlua.keys(group_id, self.prefix)

    def admit(self, join: Join, checks: seatlua.Checks | None = None) -> seatlua.SeatResult:
        keys, args = _script_input(join, self.prefix, checks)
        try:
            return seatlua.parse(self._admit(keys=keys, args=args))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"group seats unavailable: {exc}") from exc

    def release(self, group_id: str, req: str) -> bool:
        """Give a refused join's seat back; a second call frees nothing."""
        try:
            return bool(self._release(keys=self.keys(group_id), args=[req]))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"group seats unavailable: {exc}") from exc

    def mark(self, group_id: str, user_id: str, *, taken: bool) -> bool:
        """A seat the database took or freed for this shopper (see MARK); True if Redis
        changed."""
        try:
            return bool(self._mark(keys=self.keys(group_id)[:2], args=[int(taken), user_id]))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"group seats unavailable: {exc}") from exc

    def version(self, group_id: str) -> str | None:
        """The group's change counter (None: not loaded)."""
        raw = self.client.hget(self.keys(group_id)[0], "ver")
        return raw.decode() if isinstance(raw, bytes) else raw

    def seats(self, group_id: str) -> tuple[int | None, int, dict[str, str]]:
        """Free seats, deadline and members (user → request id, "db" if loaded from the
        database)."""
        seat_key, members_key, _ = self.keys(group_id)
        left, until = self.client.hmget(seat_key, ["left", "until"])
        members = self.client.hgetall(members_key)
        return (
            int(left) if left is not None else None,
            int(until or 0),
            {k.decode(): v.decode() for k, v in members.items()},
        )

    def queued(self) -> dict[str, list[tuple[str, str]]]:
        """Group id → (user, request id) of the joins waiting on the stream."""
        out: dict[str, list[tuple[str, str]]] = {}
        for _, fields in self.client.xrange(seatlua.stream_key(self.prefix)):
            if fields:
                group = fields[b"group"].decode()
                out.setdefault(group, []).append(
                    (fields[b"user"].decode(), fields[b"req"].decode())
                )
        return out

    def load(
        self,
        group_id: str,
        *,
        left: int,
        until: int,
        members: dict[str, str],
        version: str | None = None,
    ) -> int:
        """Replace the group's seats (see RELOAD): `version` None loads only a missing group."""
        args: list[str | int] = [
            "missing" if version is None else "force",
            version or "",
            max(left, 0),
            until,
            # A closed group (until 0) keeps its keys too: retries of its keys replay.
            max(until, int(time.time())) + KEEP_AFTER_DEADLINE_S,
        ]
        for user, req in members.items():
            args += [user, req]
        try:
            return int(self._reload(keys=self.keys(group_id), args=args))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"group seats unavailable: {exc}") from exc


class AsyncGroupSeats:
    """The admission script on the API's asyncio connection: one round trip, no thread."""

    def __init__(self, client: CallsRedis, prefix: str = "tuanbox") -> None:
        self.client = client
        self.prefix = prefix

    async def admit(self, join: Join, checks: seatlua.Checks | None = None) -> seatlua.SeatResult:
        """The caller's checks (revocation, windows; none if `checks` is None), then the seat."""
        keys, args = _script_input(join, self.prefix, checks)
        try:
            try:
                raw = await self.client.call("EVALSHA", _sha(), len(keys), *keys, *args)
            except redis.ResponseError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                raw = await self.client.call("EVAL", seatlua.ADMIT, len(keys), *keys, *args)
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"group seats unavailable: {exc}") from exc
        return seatlua.parse(raw)


def _script_input(
    join: Join, prefix: str, checks: seatlua.Checks | None
) -> tuple[list[str], list[str | int]]:
    seat_keys = seatlua.keys(join.group_id, prefix)
    checks = checks or seatlua.no_checks(seat_keys[0])
    return (
        [*seat_keys, seatlua.stream_key(prefix), *checks.keys],
        [*join.args(), *checks.args],
    )


@lru_cache(maxsize=1)
def _sha() -> str:
    return hashlib.sha1(seatlua.ADMIT.encode()).hexdigest()  # noqa: S324 - Redis's script name


def _epoch(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp())


def db_view(session: Session, group_id: str) -> tuple[Group, dict[str, str]]:
    group = session.get(Group, group_id, populate_existing=True)
    if group is None:
        raise NotFoundError(f"group {group_id} not found")
    members = session.scalars(select(Member.user_id).where(Member.group_id == group_id))
    return group, dict.fromkeys(members, "db")


def expected(
    group: Group, in_db: dict[str, str], queued: list[tuple[str, str]]
) -> tuple[int, int, dict[str, str]]:
    """(free seats, deadline, members) Redis should hold: the database's seats and members
    plus the joins queued and not yet written."""
    members = dict(in_db)
    for user, req in queued:
        members.setdefault(user, req)
    is_open = group.status == GroupStatus.OPEN.value
    left = group.max_size - group.seats_taken - (len(members) - len(in_db))
    return (left if is_open else 0), (_epoch(group.deadline_at) if is_open else 0), members


def load_group(session: Session, seats: GroupSeats, group_id: str) -> None:
    """Load a group Redis does not hold yet (NotFoundError for an unknown group)."""
    queued = seats.queued().get(group_id, [])  # read before the DB: see `reconcile_group`
    group, in_db = db_view(session, group_id)
    left, until, members = expected(group, in_db, queued)
    seats.load(group_id, left=left, until=until, members=members)


def _after_commit(session: Session, what: str, change: Callable[[GroupSeats], object]) -> None:
    """Stream join writes: `change` the seats in Redis once this transaction commits (never
    after a rollback). Best effort: without settings bound to the session (a seed or script:
    nothing is guessed), in request mode, or with Redis unreachable, nothing is written, and
    the first join (`load_group`) or the next reconciliation brings Redis to the database."""
    from tuanbox.db.bump import redis_client
    from tuanbox.db.engine import SettingsNotBoundError, settings_of
    from tuanbox.db.hooks import after_commit

    try:
        settings = settings_of(session)
    except SettingsNotBoundError:
        return
    if settings.group_join_writes != "stream":
        return

    def run() -> None:
        try:
            change(GroupSeats(redis_client(settings.redis_url), prefix_of(settings)))
        except DependencyUnavailableError as exc:
            log.warning("%s not told to Redis (%s): reconciliation will", what, exc)

    after_commit(session, run)


def hold_after_commit(session: Session, group: Group) -> None:
    """A group opened in this transaction: its seats in Redis once it commits, so the first
    join to it is one script call with no database hop. Its seats are taken from `group` now
    (the opener's seat just taken; after the commit its attributes may not be readable), and
    loaded only if still missing: a join that met the group first loaded it from the DB."""
    group_id, leader = group.id, group.leader_user_id
    is_open = group.status == GroupStatus.OPEN.value
    left = group.max_size - group.seats_taken if is_open else 0
    until = _epoch(group.deadline_at) if is_open else 0
    members = dict.fromkeys([leader] if leader else [], "db")
    _after_commit(
        session,
        f"group {group_id} opened",
        lambda seats: seats.load(group_id, left=left, until=until, members=members),
    )


def taken_after_commit(session: Session, group_id: str, user_id: str) -> None:
    """A seat taken in the database outside the stream (a join without an Idempotency-Key,
    the shop's form): Redis counts it once this commits, if it holds the group."""
    _after_commit(
        session,
        f"seat taken in group {group_id}",
        lambda seats: seats.mark(group_id, user_id, taken=True),
    )


def freed_after_commit(session: Session, group_id: str, user_id: str) -> None:
    """A seat freed in the database (a member left, an unpaid order lapsed): free in Redis
    once this commits, not at the next reconciliation."""
    _after_commit(
        session,
        f"seat freed in group {group_id}",
        lambda seats: seats.mark(group_id, user_id, taken=False),
    )


def reconcile_group(
    session: Session,
    seats: GroupSeats,
    group_id: str,
    *,
    version: str | None = None,
    queued: list[tuple[str, str]] | None = None,
) -> bool | None:
    """Make Redis hold the database's view of one group (plus its queued joins); True if it
    changed anything, None if a join or release raced it (the next run tries again).

    Read in this order: the group's version, the stream, the database. The consumer commits
    a join's rows, then drops its entry, so a join read off the stream is either still
    queued or in the DB by the time the DB is read, never neither; and a join admitted after
    the version was read changes the version, so the reload below refuses to run."""
    if queued is None:
        version = seats.version(group_id)
        if version is None:
            load_group(session, seats, group_id)
            return True
        queued = seats.queued().get(group_id, [])
    elif version is None:
        return None  # gone meanwhile (expired): the next join loads it again
    left_now, until_now, members_now = seats.seats(group_id)
    group, in_db = db_view(session, group_id)
    left, until, members = expected(group, in_db, queued)
    if (left_now, until_now, set(members_now)) == (left, until, set(members)):
        return False
    loaded = seats.load(group_id, left=left, until=until, members=members, version=version)
    return None if loaded < 0 else True


def reconcile_loaded(session: Session, seats: GroupSeats, *, limit: int = 1000) -> dict[str, Any]:
    """Reconcile every group Redis holds (SCAN of the seat keys); a summary for the log.
    The versions are read first, then the stream once for all groups, then each group's
    rows (the order `reconcile_group` needs)."""
    pattern = f"{seats.prefix}:gb:{{gb:*}}:seat"
    group_ids: list[str] = []
    for raw in seats.client.scan_iter(match=pattern, count=500):
        key = raw.decode() if isinstance(raw, bytes) else raw
        group_ids.append(key.split("{gb:", 1)[1].split("}", 1)[0])
        if len(group_ids) >= limit:
            break
    pipe = seats.client.pipeline(transaction=False)
    for group_id in group_ids:
        pipe.hget(seats.keys(group_id)[0], "ver")
    versions = [v.decode() if isinstance(v, bytes) else v for v in pipe.execute()]
    queued = seats.queued()
    changed = raced = 0
    for group_id, version in zip(group_ids, versions, strict=True):
        try:
            outcome = reconcile_group(
                session, seats, group_id, version=version, queued=queued.get(group_id, [])
            )
        except NotFoundError:
            seats.client.delete(*seats.keys(group_id))
            continue
        finally:
            session.rollback()  # a fresh snapshot for the next group
        changed += outcome is True
        raced += outcome is None
    return {"changed": changed, "raced": raced}
