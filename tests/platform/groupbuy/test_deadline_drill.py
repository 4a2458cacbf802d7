"""Drill: worker and beat SIGKILLed before group deadlines, restarted after; no expiry lost."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, pay, tiered_spec
from tests.platform.payments.test_worker_drill import _kill, _wait
from tuanbox.db.engine import make_session_factory
from tuanbox.groupbuy.domain import Tier
from tuanbox.groupbuy.models import Group, Member
from tuanbox.groupbuy.services import create_campaign, join_group, open_group
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund, SimPayRecord

SECRET = "drill-webhook-secret"
TIERS = (Tier(2, 900), Tier(3, 800), Tier(4, 700))
# Long enough for worker + beat to start and close the filled group before any deadline (beat
# ticks every 10 s; starting both took over 25 s on a loaded two-core box); the wait after the
# kill is spent with both processes dead.
LEAD_S = 40
CLAIM = "tuanbox:drill:claim"


@pytest.fixture
def broker() -> Iterator[str]:
    """A Redis database no one else uses, claimed for this drill (db 14 is the refund drill's)."""
    token = uuid.uuid4().hex
    for db in (13, 12, 11, 10, 9, 8, 15):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        mine = client.client_id()
        others = [c for c in client.client_list() if int(c["db"]) == db and int(c["id"]) != mine]
        if not others and client.set(CLAIM, token, nx=True, ex=600):
            yield f"redis://127.0.0.1:6379/{db}"
            if client.get(CLAIM) == token.encode():
                client.delete(CLAIM)
            client.close()
            return
        client.close()
    pytest.fail("no free Redis database to run the drill in")


def _start(what: str, url: str, broker: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TUANBOX_ENV": "test",
        "TUANBOX_DATABASE_URL": url,
        "TUANBOX_REDIS_URL": broker,
        "TUANBOX_SECRET_KEY": "drill-secret-" + "x" * 32,
        "TUANBOX_PII_KEY": "drill-pii-" + "y" * 32,
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": SECRET,
        "TUANBOX_LOG_FORMAT": "console",
    }
    args = (
        ["worker", "--pool", "solo"]
        if what == "worker"
        else ["beat", "--schedule", str(workdir / "beat-schedule")]
    )
    with (workdir / "drill.log").open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("tuanbox")), *args],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _statuses(factory: Callable[[], Session]) -> dict[str, str]:
    with factory() as session:
        return {g: s for g, s in session.execute(sa.select(Group.id, Group.status))}


def _settled(factory: Callable[[], Session]) -> bool:
    with factory() as session:
        pending = session.scalar(
            sa.select(sa.func.count()).select_from(Refund).where(Refund.status != "succeeded")
        )
        still_open = session.scalar(
            sa.select(sa.func.count())
            .select_from(Group)
            .where(Group.status.in_(["open", "filled"]))
        )
        return pending == 0 and still_open == 0


def _group(
    session: Session, campaign_id: str, shoppers: list[str], paid: int, now: datetime
) -> str:
    """Open a group with `len(shoppers)` members of whom the first `paid` pay."""
    first = open_group(session, campaign_id=campaign_id, user_id=shoppers[0], now=now)
    orders = [first.order_id]
    for user in shoppers[1:]:
        orders.append(join_group(session, group_id=first.group.id, user_id=user, now=now).order_id)
    settings = make_settings(database_url="unused", payment_webhook_secret=SECRET)
    for order_id in orders[:paid]:
        pay(session, settings, order_id)
    return first.group.id


@pytest.mark.slow
def test_group_deadlines_survive_killed_worker_and_beat(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    broker: str,
    tmp_path: Path,
) -> None:
    url = fresh_database()
    # Paying runs hooks that need the process's settings.
    factory = make_session_factory(engines(url), make_settings(database_url=url))
    # Opened `60 - LEAD_S` seconds "ago" with the shortest TTL a campaign allows (60 s), so
    # every deadline falls LEAD_S seconds from now, and is held only in the database.
    opened = datetime.now(UTC) - timedelta(seconds=60 - LEAD_S)
    with factory() as session, session.begin():
        shop = make_shop(session, price_cents=1000)
        spec = tiered_spec(shop.sku_id, tiers=TIERS, max_size=4, now=opened, group_ttl_s=60)
        campaign = create_campaign(
            session, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=spec
        )
        people = iter(make_shoppers(session, 13))

        def group(size: int, paid: int) -> str:
            users = [next(people) for _ in range(size)]
            return _group(session, campaign.id, users, paid, opened)

        filled = group(4, 4)  # closes on beat's first tick: 900, 900, 800, 700 paid → 700
        reached = group(3, 3)  # due at its deadline with tier 3 reached: 900, 900, 800 → 800
        lonely = group(1, 1)  # below the first tier: fails, 900 back
        half_paid = group(2, 1)  # one paid, one never did: fails, the paid one refunded
        waiting = group(3, 2)  # third member unpaid; 2 paid reach tier 2: confirmed at 900
    assert _statuses(factory)[filled] == "filled"
    deadline = opened + timedelta(seconds=60)
    log = tmp_path / "drill.log"

    procs = [_start("worker", url, broker, tmp_path), _start("beat", url, broker, tmp_path)]
    try:
        _wait("the filled group to close", lambda: _statuses(factory)[filled] != "filled", 60, log)
        for proc in procs:
            _kill(proc)
        assert datetime.now(UTC) < deadline, f"worker and beat took over {LEAD_S} s to start"
        due = {g: s for g, s in _statuses(factory).items() if g != filled}
        assert set(due.values()) == {"open"}, "a group closed before its deadline"

        _wait("the deadlines to pass", lambda: datetime.now(UTC) > deadline, LEAD_S + 5, log)
        assert _statuses(factory) == {**due, filled: "confirmed"}, "nothing ran while down"
        procs = [_start("worker", url, broker, tmp_path), _start("beat", url, broker, tmp_path)]
        _wait("every group closed and refunded", lambda: _settled(factory), 45, log)
    finally:
        for proc in procs:
            if proc.poll() is None:
                _kill(proc)

    with factory() as session:
        groups = {g.id: g for g in session.scalars(sa.select(Group))}
        assert {g: groups[g].status for g in groups} == {
            filled: "confirmed",
            reached: "confirmed",
            waiting: "confirmed",
            lonely: "failed",
            half_paid: "failed",
        }
        assert groups[filled].final_unit_price_cents == 700
        assert groups[reached].final_unit_price_cents == 800
        assert groups[waiting].final_unit_price_cents == 900
        rows = session.scalars(sa.select(Refund)).all()
        refunds = {r.order_id: r for r in rows}
        assert len(rows) == len(refunds), "at most one refund per order"
        ledger = session.scalars(
            sa.select(SimPayRecord.idempotency_key).where(SimPayRecord.kind == "refund")
        ).all()
        # Each refund names the gateway record that paid it; print both sides if they differ.
        paid_by = {r.id: (r.status, r.attempts, r.provider_refund_id) for r in rows}
        assert len(ledger) == len(set(ledger)) == len(refunds), (
            f"no refund paid twice, none paid outside the gateway: refunds {paid_by}, "
            f"gateway refunds {sorted(ledger)}; worker log:\n{_tail(log)}"
        )
        members = session.execute(
            sa.select(Member.group_id, Order).join(Order, Order.id == Member.order_id)
        ).all()
        assert len(members) == 13
        for group_id, order in members:
            group_row = groups[group_id]
            refund = refunds.get(order.id)
            if order.paid_cents == 0:
                assert order.status == "cancelled" and refund is None, order.id
            elif group_row.status == "failed":
                assert refund is not None and refund.amount_cents == order.paid_cents, order.id
                assert order.refunded_cents == order.paid_cents, order.id
            else:
                owed = group_row.final_unit_price_cents * order.qty
                assert order.status == "confirmed", order.id
                assert order.refunded_cents == order.paid_cents - owed, order.id
                if order.paid_cents > owed:
                    assert refund is not None and refund.amount_cents == order.paid_cents - owed
                else:
                    assert refund is None, order.id
        assert all(r.status == "succeeded" for r in refunds.values())
        # 200+200+100 (filled), 100+100 (reached), 900 (lonely), 900 (half_paid), 0 (waiting)
        assert sorted(r.amount_cents for r in refunds.values()) == [
            100, 100, 100, 200, 200, 900, 900,
        ]  # fmt: skip
