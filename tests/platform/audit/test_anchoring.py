"""Chain heads anchored through the traceability Anchor contract (on our own anvil), and
`verify --chain` catching a log rewritten consistently after its head was anchored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.platform.audit.conftest import Committed
from tests.traceability.conftest import Anvil, anvil, settings_for  # noqa: F401
from traceability.chain import ChainClient
from traceability.lookup import RpcRootLookup
from traceability.settings import ANVIL_DEV_KEY, TraceSettings
from traceability.settings import get_settings as get_trace_settings
from tuanbox.audit.anchoring import anchor_head
from tuanbox.audit.chain import GENESIS, entry_hash
from tuanbox.audit.cli import EXIT_BROKEN, EXIT_INTACT, app
from tuanbox.audit.models import AuditAnchor, AuditEntry
from tuanbox.audit.services import Actor, link_of, record
from tuanbox.audit.tasks import beat_entry
from tuanbox.audit.verify import verify_log

OPS = Actor("u-ops", "ops")


@pytest.fixture(scope="module")
def contract(anvil: Anvil) -> str:  # noqa: F811
    address = ChainClient(settings_for(anvil)).deploy().contract_address
    assert address is not None
    return address


@pytest.fixture
def trace(anvil: Anvil, contract: str) -> TraceSettings:  # noqa: F811
    return settings_for(anvil, contract_address=contract)


def fill(db: Committed, n: int, prefix: str = "s") -> None:
    for i in range(n):
        with db.sessions.begin() as s:
            record(s, OPS, "sku.restock", "sku", f"{prefix}-{i}", after={"stock_on_hand": i})


def rewrite_from(db: Committed, seq: int, *, anchors_too: bool) -> None:
    """What an attacker with the superuser and this code would do: edit one entry and re-hash
    it and every later one, the chain head (and the anchored hashes) consistently."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        session = Session(bind=conn)
        rows = list(session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)))
        head = GENESIS
        for row in rows:
            if row.seq == seq:
                row.reason = f"nothing to see {row.reason}"
            if row.seq is not None and row.seq >= seq:
                row.prev_hash = head
                row.hash = entry_hash(link_of(row))
            head = row.hash or head
        session.flush()
        conn.execute(sa.text("UPDATE audit_chain SET hash = :h"), {"h": head})
        if anchors_too:
            conn.execute(
                sa.text(
                    "UPDATE audit_anchors SET hash = audit_log.hash FROM audit_log "
                    "WHERE audit_log.seq = audit_anchors.seq"
                )
            )


def test_head_is_anchored_once_per_move(committed: Committed, trace: TraceSettings) -> None:
    client = ChainClient(trace)
    assert anchor_head(committed.sessions, client) is None  # an empty chain: nothing to send
    fill(committed, 3)
    first = anchor_head(committed.sessions, client)
    assert first is not None and (first.seq, first.entries) == (3, 3)
    assert anchor_head(committed.sessions, client) is None  # the head has not moved
    fill(committed, 2, "t")
    second = anchor_head(committed.sessions, client)
    assert second is not None and (second.seq, second.entries) == (5, 2)
    with committed.sessions() as s:
        rows = list(s.scalars(sa.select(AuditAnchor).order_by(AuditAnchor.seq)))
        assert [(r.seq, r.tx_hash) for r in rows] == [(3, first.tx_hash), (5, second.tx_hash)]
        assert rows[0].hash == s.scalar(sa.select(AuditEntry.hash).where(AuditEntry.seq == 3))
        assert client.anchored_at(bytes.fromhex(rows[1].hash)) == rows[1].block_time
        assert rows[0].contract.lower() == trace.contract_address.lower()  # type: ignore[union-attr]
        report = verify_log(s, lookup=RpcRootLookup(trace.rpc_url), chain_id=trace.chain_id)
        assert report.ok and (report.anchors, report.anchors_on_chain) == (2, 2)


def test_a_head_anchored_by_a_run_that_died_is_recorded(
    committed: Committed, trace: TraceSettings
) -> None:
    fill(committed, 2)
    client = ChainClient(trace)
    with committed.sessions() as s:
        head = s.scalar(sa.select(AuditEntry.hash).where(AuditEntry.seq == 2))
    assert head is not None
    sent = client.anchor(bytes.fromhex(head), 2)  # the transaction went out, then the crash
    done = anchor_head(committed.sessions, client)
    assert done is not None and (done.seq, done.tx_hash) == (2, sent.tx_hash)


def test_rewritten_log_is_caught_by_its_anchors(committed: Committed, trace: TraceSettings) -> None:
    fill(committed, 4)
    assert anchor_head(committed.sessions, ChainClient(trace)) is not None
    fill(committed, 2, "t")
    lookup = RpcRootLookup(trace.rpc_url)

    rewrite_from(committed, 2, anchors_too=False)
    with committed.sessions() as s:
        problem = verify_log(s).problem
        assert problem is not None and (problem.seq, problem.kind) == (4, "anchor")

    rewrite_from(committed, 2, anchors_too=True)  # the anchors table rewritten too
    with committed.sessions() as s:
        assert verify_log(s).ok  # consistent in the database alone...
        problem = verify_log(s, lookup=lookup, chain_id=trace.chain_id).problem
        assert problem is not None and (problem.seq, problem.kind) == (
            4,
            "anchor",
        )  # ...not on chain
        assert "not anchored in contract" in problem.detail


@pytest.fixture
def trace_env(
    committed: Committed, trace: TraceSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Committed]:
    from tuanbox.settings import get_settings

    for key, value in {
        "TUANBOX_DATABASE_URL": committed.url,
        "TRACE_RPC_URL": trace.rpc_url,
        "TRACE_SIGNER_KEY": ANVIL_DEV_KEY,
        "TRACE_CONTRACT_ADDRESS": str(trace.contract_address),
        "TRACE_CHAIN_ID": "31337",
        "TRACE_POLL_INTERVAL_SECONDS": "0.02",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_trace_settings.cache_clear()
    yield committed
    get_settings.cache_clear()
    get_trace_settings.cache_clear()


def test_beat_task_and_cli_anchor_and_verify_on_chain(trace_env: Committed, redis_url: str) -> None:
    import tuanbox.audit.tasks  # noqa: F401  registers the shared task
    from tests.conftest import make_settings
    from tuanbox.worker.app import create_celery

    fill(trace_env, 3)
    celery = create_celery(make_settings(database_url=trace_env.url, redis_url=redis_url))
    assert celery.conf.beat_schedule["audit.anchor_head"]["schedule"] == 3600.0
    result = celery.tasks["audit.anchor_head"].apply().get()
    assert result["seq"] == 3
    assert celery.tasks["audit.anchor_head"].apply().get() is None  # nothing new

    runner = CliRunner()
    fill(trace_env, 1, "t")
    anchored = runner.invoke(app, ["anchor"])
    assert anchored.exit_code == 0, anchored.output
    assert "anchored head seq 4 (1 new entries)" in anchored.output
    head = runner.invoke(app, ["head"])
    assert "head seq 4 hash" in head.output and "anchored seq 4" in head.output
    ok = runner.invoke(app, ["verify", "--chain"])
    assert ok.exit_code == EXIT_INTACT, ok.output
    assert "4 entries, head seq 4, 2 anchored heads, 2 confirmed on chain" in ok.output

    rewrite_from(trace_env, 1, anchors_too=True)
    broken = runner.invoke(app, ["verify", "--chain"])
    assert broken.exit_code == EXIT_BROKEN
    assert "audit log BROKEN at seq 3 (anchor)" in broken.output


def test_anchoring_period_is_a_setting() -> None:
    assert beat_entry(0) == {}
    assert beat_entry(900.0) == {
        "audit.anchor_head": {"task": "audit.anchor_head", "schedule": 900.0}
    }
