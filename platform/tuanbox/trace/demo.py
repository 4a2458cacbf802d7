"""The trace part of `tuanbox demo`: anchor the demo batch's journey and verify its report.

On the local dev chain (31337) without a configured signer it uses anvil's public dev key and
deploys the Anchor contract itself; anywhere else it needs TRACE_SIGNER_KEY (or a keystore)
and TRACE_CONTRACT_ADDRESS.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from traceability import journey
from traceability.chain import ChainClient
from traceability.cli import run_verify
from traceability.journey import Batch, TemperatureSummary
from traceability.settings import ANVIL_DEV_KEY, DEV_CHAIN_ID, TraceSettings
from traceability.settings import get_settings as get_trace_settings
from tuanbox.catalog.models import Lot, Merchant, Product
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings
from tuanbox.trace import services

DEMO_GTIN = "06901234567892"
DEMO_LOT = "DEMO-PEACH-1"
DEMO_LICENCE = "JY-DEMO-33021300001"
FARM_GLN, HUB_GLN = "6901234000016", "6901234000023"
DEMO_START = datetime(2026, 11, 28, 6, 0, tzinfo=timezone(timedelta(hours=8)))


def _dev_ready(trace: TraceSettings) -> TraceSettings:
    updates: dict[str, object] = {"poll_interval_seconds": 0.05}
    if trace.signer_key is None and trace.keystore_path is None:
        if trace.chain_id != DEV_CHAIN_ID:
            raise RuntimeError("set TRACE_SIGNER_KEY or TRACE_KEYSTORE_PATH for this chain")
        updates["signer_key"] = SecretStr(ANVIL_DEV_KEY)  # dev chain only: traceability.settings
    ready = trace.model_copy(update=updates)
    if not ready.contract_address:
        deployed = ChainClient(ready).deploy()
        ready = ready.model_copy(update={"contract_address": deployed.contract_address})
    return ready


def _demo_lot(session: Session) -> None:
    if session.scalar(select(Lot.id).where(Lot.gtin == DEMO_GTIN, Lot.lot_code == DEMO_LOT)):
        return
    merchant = session.scalar(select(Merchant).where(Merchant.licence_number == DEMO_LICENCE))
    if merchant is None:
        merchant = Merchant(
            name="奉化水蜜桃合作社 Fenghua Peach Co-op", licence_number=DEMO_LICENCE, verified=True
        )
        session.add(merchant)
        session.flush()
    product = Product(
        merchant_id=merchant.id,
        name="奉化水蜜桃 Honey peaches 2 kg",
        zone="chilled",
        gtin=DEMO_GTIN,
    )
    session.add(product)
    session.flush()
    session.add(Lot(product_id=product.id, gtin=DEMO_GTIN, lot_code=DEMO_LOT, farm="Fenghua"))
    session.flush()


def _journey(trace: TraceSettings, start: datetime) -> list[dict[str, object]]:
    batch = Batch(DEMO_GTIN, DEMO_LOT)
    at = start.astimezone(timezone(timedelta(hours=8)))
    locker = trace.operator_gln
    events = [
        journey.commissioning(
            batch,
            when=at,
            farm_gln=FARM_GLN,
            quantity=200,
            uom="KGM",
            harvest_start=date(2026, 11, 27),
            harvest_end=at.date(),
            farm_name="奉化水蜜桃合作社",
            certifications=["GB/T 19630 organic"],
            country="CN",
        ),
        journey.shipping(batch, when=at + timedelta(hours=2), from_gln=FARM_GLN, to_gln=HUB_GLN),
        journey.receiving(batch, when=at + timedelta(hours=5), at_gln=HUB_GLN, from_gln=FARM_GLN),
        journey.storing(
            batch,
            when=at + timedelta(hours=7),
            locker_gln=locker,
            compartment="A03",
            temperature=TemperatureSummary(
                at + timedelta(hours=7), at + timedelta(hours=9), 2.4, 4.1, 3.1, 3.2, 24
            ),
        ),
        journey.pickup(batch, when=at + timedelta(hours=9), locker_gln=locker, compartment="A03"),
    ]
    return [e.to_jsonld() for e in events]


def run(settings: Settings, trace: TraceSettings | None = None, out_dir: Path | None = None) -> str:
    """Record, anchor and verify the demo batch; return the trace URL and what was checked."""
    trace = _dev_ready(trace or get_trace_settings())
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine, settings)
    try:
        with sessions() as session, session.begin():
            _demo_lot(session)
            # Fixed times keep the demo idempotent: a re-run finds the same events stored.
            for event in _journey(trace, DEMO_START):
                services.record_event(session, event, merchant_id=None, is_admin=True)
        services.run_anchoring(sessions, trace.model_copy(update={"window_seconds": 0.001}))
        with sessions() as session:
            report = services.report_for(session, DEMO_GTIN, DEMO_LOT, rpc_url=trace.rpc_url)
    finally:
        engine.dispose()
    folder = out_dir or Path("var")
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "trace-demo-report.json"
    good.write_text(report.model_dump_json(indent=2))
    data = json.loads(good.read_text())
    data["events"][3]["event"]["sensorElementList"][0]["sensorReport"][0]["maxValue"] = 3.0
    tampered = folder / "trace-demo-report-tampered.json"
    tampered.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    ok, _ = run_verify(good, trace.rpc_url, offline=False)
    bad, bad_text = run_verify(tampered, trace.rpc_url, offline=False)
    if ok != 0 or bad == 0:
        raise RuntimeError(f"trace verification misbehaved (genuine {ok}, tampered {bad})")
    url = f"{settings.public_base_url.rstrip('/')}/01/{DEMO_GTIN}/10/{DEMO_LOT}"
    anchored = sum(1 for e in report.events if e.status == "anchored")
    return (
        f"{anchored} events anchored at {trace.contract_address} on chain {trace.chain_id}; "
        f"trace page {url}; `tuanbox trace verify {good} --rpc {trace.rpc_url}` passes, "
        f"the tampered copy {tampered.name} fails ({bad_text.splitlines()[-1][:60]}…)"
    )
