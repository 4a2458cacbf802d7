"""Many writers at once on PostgreSQL: one chain, no fork, no gap, no deadlock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from tests.platform.audit.conftest import Committed
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor, record
from tuanbox.audit.verify import verify_log

THREADS = 16
ROUNDS = 12


def test_concurrent_writers_build_one_chain(committed: Committed) -> None:
    start = threading.Barrier(THREADS)

    def writer(n: int) -> int:
        actor = Actor(f"u-{n}", "ops")
        kept = 0
        start.wait()
        for i in range(ROUNDS):
            with committed.sessions() as s:
                if n % 2:
                    # Another lock taken after the audit entry: had record() locked the chain
                    # head itself, this order against the other half's would deadlock.
                    record(s, actor, "sku.restock", "sku", f"{n}-{i}")
                    s.execute(sa.text("SELECT pg_advisory_xact_lock(42)"))
                else:
                    s.execute(sa.text("SELECT pg_advisory_xact_lock(42)"))
                    record(s, actor, "sku.restock", "sku", f"{n}-{i}")
                if i % 4 == 0:
                    record(s, actor, "sku.restock", "sku", f"{n}-{i}-b")  # two in one commit
                if i % 5 == 3:
                    s.rollback()  # rolled back: takes no seq
                    continue
                s.commit()
                kept += 2 if i % 4 == 0 else 1
        return kept

    with ThreadPoolExecutor(THREADS) as pool:
        kept = sum(pool.map(writer, range(THREADS)))
    with committed.sessions() as s:
        seqs = list(s.scalars(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)))
        assert seqs == list(range(1, kept + 1))  # gapless, nothing twice
        report = verify_log(s)
        assert report.ok, report.problem
        assert report.entries == report.head_seq == kept
        rolled_back = s.scalar(sa.select(sa.func.count()).where(AuditEntry.subject_id.like("%-3")))
        assert rolled_back == 0
