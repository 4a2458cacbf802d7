"""The joins consumer's batch (`joinstream.write_batch`), against real PostgreSQL: what it reads
once for the batch (groups, campaigns, accounts' sticky risk keys) and the stored answers it
writes in one INSERT leave every join's outcome as writing the joins one by one gives it — a
batch mixing several groups, a group filling mid-batch, a duplicate entry, a risk-blocked
join in the middle; a redelivered batch writes nothing twice; a group closed after the batch
read it is refused as closed, as the per-join path refuses it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, queued_join
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.groupbuy import joinstream, services
from tuanbox.groupbuy.models import Group, Member
from tuanbox.groupbuy.seats import Join
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.orders.models import Order
from tuanbox.risk.models import RiskSignal
from tuanbox.risk.rules import Key
from tuanbox.risk.signals import Hasher, sticky_keys, sticky_keys_of
from tuanbox.settings import Settings

SIZE = 3  # the leader and two seats


def _world(session: Session, settings: Settings, phone: str) -> tuple[list[Join], list[str]]:
    """Three groups of SIZE; eight fresh accounts on one phone (the risk rules block the
    fifth and later accounts of one device), joining in an order that fills group A
    mid-batch, refuses the next join at A as full, repeats one entry and ends with a ninth
    account on another phone after the blocked ones."""
    shop = make_shop(session, stock=100)
    leaders = make_shoppers(session, 3)
    users = make_shoppers(session, 9)
    campaign = services.create_campaign(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=SIZE),
    )
    a, b, c = (
        services.open_group(session, campaign_id=campaign.id, user_id=u, now=utcnow()).group.id
        for u in leaders
    )
    device = Hasher(settings).device(phone)
    plan = [a, b, a, a, c, c, b, a]  # A's second join fills it, its third is refused
    joins = [
        queued_join(g, u, f"join-{i}", device)
        for i, (g, u) in enumerate(zip(plan, users[:8], strict=True))
    ]
    joins.insert(3, joins[0])  # the same entry delivered twice in one batch
    joins.append(queued_join(c, users[8], "join-late", None))  # another phone, after the blocks
    return joins, [a, b, c]


def _outcomes(session: Session, joins: list[Join]) -> list[tuple[int | None, str]]:
    rows = session.execute(
        select(IdempotencyKey.principal, IdempotencyKey.key, IdempotencyKey.response_status)
    ).all()
    status = {(p, k): s for p, k, s in rows}
    out = []
    for j in dict.fromkeys((j.user_id, j.key) for j in joins):
        user_id, _key = j
        member = session.scalar(select(Member.group_id).where(Member.user_id == user_id))
        out.append((status[j], "member" if member else "none"))
    return out


def test_a_batch_writes_each_join_as_one_by_one_does(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, group_join_writes="stream")
    engine = make_engine(url)
    sessions = make_session_factory(engine, settings)
    try:
        with session_scope(sessions) as s:
            batched, groups = _world(s, settings, "farm-phone-batch")
            single, single_groups = _world(s, settings, "farm-phone-single")

        with sessions() as s:
            done = joinstream.write_batch(s, settings, batched)
            s.commit()
        for join in single:
            with sessions() as s:
                joinstream.write_batch(s, settings, [join])
                s.commit()

        with sessions() as s:
            got, want = _outcomes(s, batched), _outcomes(s, single)
            assert got == want, (got, want)
            statuses = [status for status, _ in got]
            # A filled by its second join, its third refused full; the sixth account on the
            # phone and later ones blocked by risk; the join from another phone written.
            assert statuses == [201, 201, 201, 409, 201, 403, 403, 403, 201]
            assert [code for _, code in got].count("member") == 5
            assert done.written == statuses.count(201)
            assert done.refused == len(statuses) - statuses.count(201)
            assert done.duplicates == 1
            assert done.to_release is not None
            assert {j.user_id for j in done.to_release} == {
                j.user_id
                for j, (st, _) in zip(list(dict.fromkeys(batched)), got, strict=True)
                if st is not None and st >= 400
            }
            for mine, theirs in zip(groups, single_groups, strict=True):
                g, h = s.get(Group, mine), s.get(Group, theirs)
                assert g is not None and h is not None
                assert (g.seats_taken, g.join_seq, g.status) == (
                    h.seats_taken,
                    h.join_seq,
                    h.status,
                )
                members = s.scalar(select(func.count()).where(Member.group_id == mine))
                orders = s.scalar(select(func.count()).where(Order.group_id == mine))
                assert members == orders == g.seats_taken
            assert s.get(Group, groups[0]).seats_taken == SIZE  # type: ignore[union-attr]

        # The consumer died after its commit: the batch comes again and only finds answers.
        with sessions() as s:
            before = s.scalar(select(func.count()).select_from(Order))
            again = joinstream.write_batch(s, settings, batched)
            s.commit()
            assert (again.written, again.refused) == (0, 0)
            assert again.duplicates == len(batched)
            assert s.scalar(select(func.count()).select_from(Order)) == before
            assert again.to_release is not None
            assert len(again.to_release) == done.refused
    finally:
        engine.dispose()


def test_a_group_closed_after_the_batch_read_it_is_refused_as_closed(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, group_join_writes="stream")
    engine = make_engine(url)
    sessions = make_session_factory(engine, settings)
    try:
        with session_scope(sessions) as s:
            batched, groups = _world(s, settings, "farm-phone-closed")
        with sessions() as s:
            loaded, sticky = joinstream._prefetch(s, batched[:1])
            assert groups[0] in loaded
            # Another transaction closes the group after the batch read it open.
            with session_scope(sessions) as other:
                other.execute(update(Group).where(Group.id == groups[0]).values(status="failed"))
            status, body = joinstream.write_one(
                s, settings, batched[0], sticky.get(batched[0].user_id), prefetched=True
            )
            s.rollback()
        assert (status, body["code"]) == (409, "GROUP_CLOSED")
    finally:
        engine.dispose()


def test_sticky_keys_of_a_batch_are_each_accounts_own(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url)
    sessions = make_session_factory(engine, settings)
    try:
        with session_scope(sessions) as s:
            users = make_shoppers(s, 3)
            now = utcnow()
            rows = [
                (users[0], Key.ADDRESS, "addr-b"),
                (users[0], Key.ADDRESS, "addr-a"),
                (users[0], Key.ADDRESS, "addr-a"),  # the same address on two events
                (users[0], Key.PAYER, "payer-1"),
                (users[0], Key.DEVICE, "phone-1"),  # not sticky
                (users[1], Key.PAYER, "payer-2"),
            ]
            s.add_all(
                RiskSignal(at=now, event="join", kind=k, value=v, user_id=u) for u, k, v in rows
            )
            s.flush()
            got = sticky_keys_of(s, [users[1], users[0], users[2], users[0]])
            assert got == {u: sticky_keys(s, u) for u in users}
            assert got[users[0]] == (("addr-a", "addr-b"), ("payer-1",))
            assert got[users[2]] == ((), ())
    finally:
        engine.dispose()
