"""A reorg deeper than the confirmations, after the anchor was recorded, on our own anvil:
the check finds the root gone from its block, marks the window, tells ops and re-anchors it;
the lot's report then verifies against the new transaction."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from tests.traceability.conftest import Anvil
from traceability.chain import ChainClient
from traceability.lookup import RpcRootLookup
from traceability.settings import TraceSettings
from traceability.verify import verify_report
from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import upgrade
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.models import load_all_models
from tuanbox.trace import services
from tuanbox.trace.models import TraceWindow


def _anchored_window(db_session: Session) -> TraceWindow:
    row = db_session.scalars(select(TraceWindow)).one()
    db_session.refresh(row)
    return row


def test_deep_reorg_is_detected_and_the_window_re_anchored(
    anvil: Anvil,
    db_session: Session,
    sessions: sessionmaker[Session],
    shop: Shop,
    trace_settings: TraceSettings,
) -> None:
    for event in tf.journey_events():
        services.record_event(db_session, event, merchant_id=shop.merchant.id)
    db_session.flush()
    # A contract of this test's own: the journey's root is the same in every test, and the
    # session's shared contract may hold it from an earlier one, which no revert removes.
    own = ChainClient(trace_settings).deploy().contract_address
    assert own is not None
    trace = trace_settings.model_copy(
        update={"contract_address": own, "window_seconds": 0.001, "confirmations": 1}
    )
    snapshot = anvil.rpc("evm_snapshot")
    assert services.run_anchoring(sessions, trace).anchored
    before = _anchored_window(db_session)
    assert before.block_hash is not None and before.block_number is not None
    old_tx, old_block, old_hash = before.tx_hash, before.block_number, before.block_hash
    root = bytes.fromhex(before.root.removeprefix("0x"))

    # Nothing happened on chain: the check leaves the anchor alone.
    quiet = services.check_reorgs(sessions, trace)
    assert quiet.checked == 1 and quiet.reorged == [] and quiet.reanchored == {}

    # A reorg past the confirmations: the chain forgets the anchoring block and grows anew.
    anvil.rpc("evm_revert", snapshot)
    anvil.mine(5)
    client = ChainClient(trace)
    assert client.anchored_at(root) == 0  # the root is really off the chain
    assert anvil.w3.eth.get_block(old_block)["hash"].to_0x_hex() != old_hash

    found = services.check_reorgs(sessions, trace)
    assert found.reorged == [before.id] and not found.failed
    record = found.reanchored[before.id]
    after = _anchored_window(db_session)
    assert after.reorg_count == 1 and after.reorged_at is not None
    assert after.anchored_at is not None and after.last_error is None
    assert (after.tx_hash, after.block_number, after.block_hash) == (
        record.tx_hash,
        record.block_number,
        record.block_hash,
    )
    assert after.block_hash != old_hash and after.tx_hash is not None
    assert client.anchored_at(root) == after.block_time
    alerts = select(OpsAlert).where(OpsAlert.kind == "trace_anchor_reorged")
    alert = db_session.scalars(alerts).one()
    assert alert.severity == "critical" and str(old_tx) in alert.detail

    # The lot's report names the new transaction and verifies against the chain.
    report = services.report_for(db_session, tf.GTIN, tf.LOT, rpc_url=anvil.url)
    assert [a.tx_hash for a in report.anchors] == [after.tx_hash]
    assert [a.block_number for a in report.anchors] == [after.block_number]
    result = verify_report(report, RpcRootLookup(anvil.url))
    assert result.complete, result.first_failure

    # Idempotent: the next run finds everything in place and sends nothing.
    head = anvil.w3.eth.block_number
    again = services.check_reorgs(sessions, trace)
    assert again.checked == 1 and again.reorged == [] and again.reanchored == {}
    assert anvil.w3.eth.block_number == head
    assert _anchored_window(db_session).reorg_count == 1


TRACE_TABLES = {"trace_events", "trace_event_lots", "trace_windows", "trace_window_leaves"}


def _trace_only(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    if type_ == "table":
        return name in TRACE_TABLES
    return parent_names.get("table_name") in TRACE_TABLES


def _trace_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in TRACE_TABLES


def _no_drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": _trace_only,
                "include_object": _trace_object,
            },
        )
        return list(compare_metadata(context, load_all_models()))


def test_trace_tables_match_the_models_on_postgresql_and_sqlite(
    engine: Engine, tmp_path: Path
) -> None:
    assert _no_drift(engine) == []
    url = f"sqlite:///{tmp_path}/trace.sqlite3"
    upgrade(url)
    lite = make_engine(url)
    try:
        assert _no_drift(lite) == []
        assert {"block_hash", "reorg_count", "reorged_at"} <= {
            c["name"] for c in inspect(lite).get_columns("trace_windows")
        }
    finally:
        lite.dispose()
