"""Referral binding on real PostgreSQL: first touch wins with its campaign, self-referral and
loops of any length refused with a reason, and two opposite touches racing bind only one."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import make_user
from tuanbox.db.base import utcnow
from tuanbox.growth.binding import bind, inviter_of
from tuanbox.growth.errors import ReferralRefusedError
from tuanbox.growth.models import ReferralBinding


def test_first_touch_wins_and_records_the_campaign(db_session: Session) -> None:
    a, b, c = (make_user(db_session) for _ in range(3))
    first = bind(
        db_session, invitee_id=b.id, inviter_id=a.id, source="poster", campaign_id="camp-1"
    )
    later = bind(db_session, invitee_id=b.id, inviter_id=c.id, source="link")
    assert (first.created, later.created) == (True, False)
    assert later.inviter_id == a.id and later.campaign_id == "camp-1"
    row = db_session.get(ReferralBinding, b.id)
    assert row is not None and (row.inviter_id, row.source) == (a.id, "poster")


@pytest.mark.parametrize("length", [1, 2, 3, 6])
def test_loops_of_any_length_are_refused(db_session: Session, length: int) -> None:
    users = [make_user(db_session) for _ in range(length + 1)]
    if length == 1:
        with pytest.raises(ReferralRefusedError) as info:
            bind(db_session, invitee_id=users[0].id, inviter_id=users[0].id, source="link")
        assert info.value.extra["reason"] == "SELF"
        return
    # users[0] invites users[1], users[1] invites users[2], ...
    for inviter, invitee in itertools.pairwise(users[:length]):
        bind(db_session, invitee_id=invitee.id, inviter_id=inviter.id, source="link")
    with pytest.raises(ReferralRefusedError) as info:
        bind(db_session, invitee_id=users[0].id, inviter_id=users[length - 1].id, source="link")
    assert info.value.extra["reason"] == "LOOP"
    assert inviter_of(db_session, users[0].id) is None


def test_staff_are_not_bound(db_session: Session) -> None:
    shopper, ops = make_user(db_session), make_user(db_session, role="ops")
    with pytest.raises(ReferralRefusedError) as info:
        bind(db_session, invitee_id=shopper.id, inviter_id=ops.id, source="link")
    assert info.value.extra["reason"] == "NOT_A_SHOPPER"


def test_opposite_touches_racing_bind_one_way_only(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        a, b = make_user(session).id, make_user(session).id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def touch(invitee: str, inviter: str) -> None:
        barrier.wait()
        try:
            with factory() as session, session.begin():
                bind(session, invitee_id=invitee, inviter_id=inviter, source="poster")
            result = "bound"
        except ReferralRefusedError as exc:
            result = str(exc.extra["reason"])
        with lock:
            outcomes.append(result)

    threads = [
        threading.Thread(target=touch, args=(b, a)),
        threading.Thread(target=touch, args=(a, b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["LOOP", "bound"]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(ReferralBinding)) == 1


def test_a_group_share_link_binds_platform_wide_with_its_campaign(db_session: Session) -> None:
    from tests.platform.shop.conftest import make_catalogue
    from tuanbox.referrals.services import record

    cat = make_catalogue(db_session)
    leader, invitee, third = cat.shoppers
    now = utcnow()
    assert record(db_session, group_id=cat.group_id, invitee_id=invitee, inviter_id=leader, now=now)
    row = db_session.get(ReferralBinding, invitee)
    assert row is not None and (row.inviter_id, row.source) == (leader, "group")
    assert row.campaign_id == cat.campaign_id
    # The leader coming through the invitee's link would close a loop: the group referral
    # may stand, the platform-wide binding is refused and the leader stays unbound.
    record(db_session, group_id=cat.group_id, invitee_id=leader, inviter_id=invitee, now=now)
    assert db_session.get(ReferralBinding, leader) is None
    assert inviter_of(db_session, third) is None
