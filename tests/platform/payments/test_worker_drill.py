"""Drill: the refund worker is killed with SIGKILL mid-run and restarted; every owed refund is
paid exactly once (flaky gateway, real Celery worker + beat, real Redis and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import make_settings
from tests.platform.factories import make_order, make_sku
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Refund, SimPayRecord
from tuanbox.payments.services import handle_event, start_checkout
from tuanbox.payments.simpay import SimPay

REFUNDS = 20
BROKER = "redis://127.0.0.1:6379/14"  # a database of its own: no other worker takes our tasks


def _worker(url: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TUANBOX_ENV": "test",
        "TUANBOX_DATABASE_URL": url,
        "TUANBOX_REDIS_URL": BROKER,
        "TUANBOX_SECRET_KEY": "drill-secret-" + "x" * 32,
        "TUANBOX_PII_KEY": "drill-pii-" + "y" * 32,
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": "drill-webhook-secret",
        "TUANBOX_SIMPAY_REFUND_FAILURE_RATE": "0.5",
        "TUANBOX_REFUND_RETRY_BASE_S": "0.3",
        "TUANBOX_REFUND_RETRY_MAX_S": "1",
        "TUANBOX_LOG_FORMAT": "console",
    }
    cmd = [
        str(Path(sys.executable).with_name("tuanbox")),
        "worker", "-B", "--pool", "solo", "--schedule", str(workdir / "beat-schedule"),
    ]  # fmt: skip
    with (workdir / "worker.log").open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _counts(factory: Callable[[], sa.orm.Session]) -> dict[str, int]:
    with factory() as session:
        rows = session.execute(sa.select(Refund.status, sa.func.count()).group_by(Refund.status))
        return {status: int(n) for status, n in rows}


def _wait(what: str, check: Callable[[], bool], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{tail}")
        time.sleep(0.1)


@pytest.mark.slow
def test_refunds_survive_a_killed_worker(fresh_database: Callable[[], str], tmp_path: Path) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, payment_webhook_secret="drill-webhook-secret")
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    with factory() as session, session.begin():
        sku = make_sku(session, price_cents=990, stock=REFUNDS)
        for _ in range(REFUNDS):
            order = make_order(session, sku=sku)
            intent = start_checkout(session, order, sim)
            body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
            handle_event(session, sim.verify_webhook(headers, body))
            transition(
                session, order, "cancelled", actor=Actor("ops", "ops"), reason="group failed"
            )
    assert _counts(factory) == {"pending": REFUNDS}
    log = tmp_path / "worker.log"

    worker = _worker(url, tmp_path)
    try:
        # Kill it once some refunds went through and some are still being retried.
        _wait("first refunds", lambda: _counts(factory).get("succeeded", 0) >= 3, 90, log)
        _kill(worker)
        assert _counts(factory).get("pending", 0) > 0, "the gateway was too reliable to drill"
        worker = _worker(url, tmp_path)
        _wait("every refund", lambda: _counts(factory) == {"succeeded": REFUNDS}, 120, log)
    finally:
        if worker.poll() is None:
            _kill(worker)
    with factory() as session:
        ledger = session.scalars(
            sa.select(SimPayRecord.idempotency_key).where(SimPayRecord.kind == "refund")
        ).all()
        assert len(ledger) == len(set(ledger)) == REFUNDS, "no refund paid twice"
        orders = session.scalars(sa.select(Order)).all()
        assert {(o.status, o.paid_cents, o.refunded_cents) for o in orders} == {
            ("refunded", 990, 990)
        }
        attempts = session.scalars(sa.select(Refund.attempts)).all()
    engine.dispose()
    assert max(attempts) > 1, "the flaky gateway made refunds retry"
