"""Stream join writes (`TUANBOX_GROUP_JOIN_WRITES=stream`), against real PostgreSQL and Redis:
processes racing the admission script, consumers crashing after their commit and entries
delivered twice, Redis losing a group's seats; then through HTTP: 202, the written 201 on
replay, refusals giving the seat back. No group overfilled, no admitted seat lost."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import redis
from sqlalchemy import Engine, func, select, update

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import (
    auth,
    fixed_spec,
    make_shop,
    make_shoppers,
    queued_join,
)
from tests.platform.groupbuy.server import running_api
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.groupbuy import seatlua, services
from tuanbox.groupbuy.joinstream import JoinStreamConsumer
from tuanbox.groupbuy.models import Group, Member
from tuanbox.groupbuy.seats import GroupSeats, load_group, prefix_of
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

SIZE = 5


def _settings(url: str, redis_url: str) -> Settings:
    return make_settings(
        database_url=url,
        redis_url=redis_url,
        rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:",
        group_join_writes="stream",
        group_join_stream_batch=7,  # several batches, some split across a crash
    )


def _seed(settings: Settings, groups: int, shoppers: int) -> tuple[list[str], list[str]]:
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        shop = make_shop(s, stock=1000)
        users = make_shoppers(s, groups + shoppers)
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=fixed_spec(shop.sku_id, members=SIZE),
        )
        group_ids = [
            services.open_group(s, campaign_id=campaign.id, user_id=u, now=utcnow()).group.id
            for u in users[:groups]
        ]
    engine.dispose()
    return group_ids, users[groups:]


def admit_share(url: str, redis_url: str, prefix: str, plans: list[tuple[str, str, str]]) -> list:
    """One process's share of the admissions: (group, user, key) each once, some twice."""
    settings = make_settings(database_url=url, redis_url=redis_url)
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    seats = GroupSeats(redis.Redis.from_url(redis_url), prefix)
    out = []
    for group_id, user_id, key in plans:
        join = queued_join(group_id, user_id, key)
        result = seats.admit(join)
        if result.status is seatlua.SeatStatus.NOT_LOADED:
            with factory() as session:
                load_group(session, seats, group_id)
            result = seats.admit(join)
        out.append((group_id, user_id, key, result.status.name))
    engine.dispose()
    return out


def _drain(consumer: JoinStreamConsumer, client: redis.Redis, key: str) -> None:
    for _ in range(200):
        consumer.poll(block_ms=50)
        pending = client.xpending(key, "writers")["pending"]
        if client.xlen(key) == 0 and pending == 0:
            return
    raise AssertionError("the joins stream did not drain")


def test_processes_racing_admission_consumers_crashing_and_duplicates_lose_nothing(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    prefix = prefix_of(settings)
    group_ids, users = _seed(settings, groups=4, shoppers=40)
    # 40 shoppers at 4 groups of 4 free seats: each shopper tries two groups, some keys twice.
    plans = [(group_ids[i % 4], u, f"k-{i}") for i, u in enumerate(users)]
    plans += [(group_ids[(i + 1) % 4], u, f"k2-{i}") for i, u in enumerate(users)]
    plans += plans[::5]  # retries of the same key
    shares = [plans[i::3] for i in range(3)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = [r for share in pool.starmap(
            admit_share, [(url, redis_url, prefix, s) for s in shares]
        ) for r in share]  # fmt: skip
    admitted = {(g, u, k) for g, u, k, status in results if status == "ADMITTED"}
    statuses = Counter(status for *_, status in results)
    assert len(admitted) == 4 * (SIZE - 1), statuses  # every free seat taken once
    assert set(statuses) <= {"ADMITTED", "FULL", "DUPLICATE", "ALREADY_MEMBER"}, statuses

    client = redis.Redis.from_url(redis_url)
    key = seatlua.stream_key(prefix)
    engine = engines(url)
    factory = make_session_factory(engine, settings)
    # Entries delivered twice: a copy of every third queued join on the stream.
    for _, fields in client.xrange(key)[::3]:
        client.xadd(key, fields)
    # A consumer that dies after its first commit, before acknowledging anything.
    crashing = JoinStreamConsumer(client, factory, settings, name="crashes")
    crashing._ensure_group()
    batch = crashing._xread(">", None)
    assert batch
    crashing._commit([join for _, join in batch])  # committed; the ack never happens
    # Restarted under the same name: its own pending entries come back first.
    restarted = JoinStreamConsumer(client, factory, settings, name="crashes")
    _drain(restarted, client, key)
    assert restarted.reconcile() == {"changed": 0, "raced": 0}

    with session_scope(factory) as s:
        for group_id in group_ids:
            group = s.get(Group, group_id)
            assert group is not None
            members = set(s.scalars(select(Member.user_id).where(Member.group_id == group_id)))
            won = {u for g, u, _ in admitted if g == group_id}
            assert group.seats_taken == len(members) == SIZE  # full, never over
            assert won <= members and len(members - won) == 1  # the leader
            left, _, in_redis = restarted.seats.seats(group_id)
            assert left == 0 and set(in_redis) == members
        orders = s.scalar(select(func.count()).select_from(Order).where(Order.user_id.in_(users)))
        assert orders == len(admitted)  # exactly once, despite the copies and the crash
        answers = Counter(
            s.scalars(
                select(IdempotencyKey.response_status).where(IdempotencyKey.principal.in_(users))
            )
        )
        assert answers == {201: len(admitted)}


def test_redis_losing_seats_rebuilds_them_from_the_database_and_the_queue(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    prefix = prefix_of(settings)
    (group_id,), users = _seed(settings, groups=1, shoppers=12)
    engine = engines(url)
    factory = make_session_factory(engine, settings)
    client = redis.Redis.from_url(redis_url)
    seats = GroupSeats(client, prefix)
    consumer = JoinStreamConsumer(client, factory, settings, name="c1")
    with factory() as session:
        load_group(session, seats, group_id)
    assert seats.admit(queued_join(group_id, users[0], "a")).status is seatlua.SeatStatus.ADMITTED
    _drain(consumer, client, seatlua.stream_key(prefix))  # written: 2 seats taken
    assert seats.admit(queued_join(group_id, users[1], "b")).status is seatlua.SeatStatus.ADMITTED
    # Redis loses the group's seats; one admitted join still waits on the stream.
    client.delete(*seats.keys(group_id))
    assert seats.admit(queued_join(group_id, users[2], "c")).status is seatlua.SeatStatus.NOT_LOADED
    with factory() as session:
        load_group(session, seats, group_id)
    assert seats.seats(group_id)[0] == SIZE - 3  # leader + written + queued
    outcomes = [seats.admit(queued_join(group_id, u, f"x-{u}")).status for u in users[2:]]
    assert outcomes.count(seatlua.SeatStatus.ADMITTED) == SIZE - 3
    _drain(consumer, client, seatlua.stream_key(prefix))
    with session_scope(factory) as s:
        group = s.get(Group, group_id)
        assert group is not None and group.seats_taken == SIZE
        assert s.scalar(select(func.count()).where(Member.group_id == group_id)) == SIZE
    # A seat freed in the database where Redis was not told (a session without the process's
    # settings, a lost after-commit call) comes back at reconciliation.
    with session_scope(make_session_factory(engine)) as s:
        member = s.scalars(
            select(Member).where(Member.group_id == group_id, Member.user_id == users[0])
        ).one()
        group = s.get(Group, group_id)
        assert group is not None
        assert services.release_seat(s, group, member)
    assert consumer.reconcile()["changed"] == 1
    assert seats.seats(group_id)[0] == 1
    assert (
        seats.admit(queued_join(group_id, users[0], "again")).status is seatlua.SeatStatus.ADMITTED
    )
    # A join the database refuses outright (its account is gone) is refused and its seat
    # given back; the joins queued with it are written.
    ghost = str(uuid.uuid4())
    assert seats.admit(queued_join(group_id, ghost, "ghost")).status is seatlua.SeatStatus.FULL
    _drain(consumer, client, seatlua.stream_key(prefix))
    with session_scope(factory) as s:
        member = s.scalars(
            select(Member).where(Member.group_id == group_id, Member.user_id == users[0])
        ).one()
        group = s.get(Group, group_id)
        assert group is not None
        assert services.release_seat(s, group, member)
    # Freed by a session of the process (settings bound): free in Redis once it committed.
    assert seats.seats(group_id)[0] == 1 and users[0] not in seats.seats(group_id)[2]
    assert consumer.reconcile()["changed"] == 0
    assert seats.admit(queued_join(group_id, ghost, "ghost2")).status is seatlua.SeatStatus.ADMITTED
    _drain(consumer, client, seatlua.stream_key(prefix))
    with session_scope(factory) as s:
        answer = s.get(IdempotencyKey, (ghost, "ghost2"))
        assert answer is not None and answer.response_status == 409
    assert seats.seats(group_id)[0] == 1 and ghost not in seats.seats(group_id)[2]


def test_http_join_answers_202_then_the_written_answer_and_refusals_free_the_seat(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    group_ids, users = _seed(settings, groups=2, shoppers=8)
    engine = engines(url)
    factory = make_session_factory(engine, settings)
    client = redis.Redis.from_url(redis_url)
    consumer = JoinStreamConsumer(client, factory, settings, name="http")
    key = seatlua.stream_key(prefix_of(settings))
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=30) as http:

        def post(group_id: str, user: str, idem: str | None) -> httpx.Response:
            extra = {"Idempotency-Key": idem} if idem else {}
            return http.post(
                f"/api/v1/groups/{group_id}/join",
                json={},
                headers={**auth(settings, user), **extra},
            )

        first = post(group_ids[0], users[0], "j0")
        assert first.status_code == 202, first.text
        accepted = first.json()
        assert accepted["status"] == "pending" and accepted["seats_left"] == SIZE - 2
        again = post(group_ids[0], users[0], "j0")  # not written yet: the same reservation
        assert again.status_code == 202 and again.json() == accepted
        assert again.headers["Idempotent-Replayed"] == "true"
        other = post(group_ids[0], users[0], "j0-other")  # one seat per shopper per group
        assert other.status_code == 409 and other.json()["code"] == "ALREADY_MEMBER"
        reused = http.post(
            f"/api/v1/groups/{group_ids[0]}/join",
            json={"qty": 2},
            headers={**auth(settings, users[0]), "Idempotency-Key": "j0"},
        )
        assert reused.status_code == 422, reused.text
        for i, user in enumerate(users[1:4]):
            assert post(group_ids[0], user, f"j{i + 1}").status_code == 202
        full = post(group_ids[0], users[4], "j4")
        assert full.status_code == 409 and full.json()["code"] == "GROUP_FULL"
        # Admitted to the second group, which the database closes before the join is written.
        assert post(group_ids[1], users[5], "late").status_code == 202
        with session_scope(factory) as s:
            s.execute(update(Group).where(Group.id == group_ids[1]).values(status="failed"))
        _drain(consumer, client, key)

        written = post(group_ids[0], users[0], "j0")
        assert written.status_code == 201, written.text
        body = written.json()
        # The group as this join left it, the leader and this shopper, as the request path
        # would have answered.
        assert body["group"]["progress"]["members"] == 2 and body["order_id"]
        refused = post(group_ids[1], users[5], "late")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "GROUP_CLOSED"
        # Without a key the join is written in the request, as before: 201 at once.
        keyless = post(group_ids[1], users[6], None)
        assert keyless.status_code == 409, keyless.text
        assert keyless.json()["code"] == "GROUP_CLOSED"
    seats = GroupSeats(client, prefix_of(settings))
    _, _, members = seats.seats(group_ids[1])
    assert users[5] not in members  # the refused join's seat was given back
    with session_scope(factory) as s:
        order = s.scalars(select(Order).where(Order.id == body["order_id"])).one()
        assert order.user_id == users[0] and order.group_id == group_ids[0]
        assert s.scalar(select(func.count()).where(Member.group_id == group_ids[1])) == 1
