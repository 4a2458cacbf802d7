"""Trace use cases: record merchants' EPCIS events, build a lot's report, run anchoring."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from traceability.anchoring import AnchoringService, ReorgSummary, RunSummary, Window
from traceability.epcis import parse_event
from traceability.errors import IdentifierError, TraceError
from traceability.hashing import anchor_leaf, event_hash
from traceability.identifiers import canonical_identifier, normalize_gtin, validate_lot
from traceability.report import StoredEvent, TraceReport, build_report
from traceability.settings import TraceSettings
from tuanbox.catalog.models import Lot, Merchant, Product
from tuanbox.errors import PermissionDeniedError
from tuanbox.trace.errors import InvalidTraceEventError, LotNotFoundError, as_problem
from tuanbox.trace.models import TraceEvent, TraceEventLot, TraceWindow, TraceWindowLeaf
from tuanbox.trace.repository import SqlAnchorRepository, window_of_row

_LOT_URI = re.compile(r"^https://id\.gs1\.org/01/(\d{14})/10/([^/?#]+)$")
_ID_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QTY_FIELDS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


def lot_key(gtin: str, lot: str) -> tuple[str, str]:
    """Validated (gtin14, lot) or a 422 naming the path segment."""
    try:
        return normalize_gtin(gtin, "gtin"), validate_lot(lot, "lot")
    except IdentifierError as exc:
        raise InvalidTraceEventError(exc.message, field=exc.field) from exc


def lots_in(event: dict[str, Any]) -> set[tuple[str, str]]:
    """Every GTIN + lot an event names (EPC lists, quantity lists, parentID)."""
    values: list[str] = [v for f in _ID_FIELDS for v in event.get(f) or []]
    values += [q["epcClass"] for f in _QTY_FIELDS for q in event.get(f) or []]
    if event.get("parentID"):
        values.append(event["parentID"])
    found = set()
    for value in values:
        match = _LOT_URI.match(canonical_identifier(str(value)))
        if match:
            found.add((match.group(1), match.group(2)))
    return found


@dataclass(frozen=True)
class Recorded:
    event: TraceEvent
    created: bool


def record_event(
    session: Session, data: Any, *, merchant_id: str | None, is_admin: bool = False
) -> Recorded:
    """Validate and store one event (idempotent for an identical event); caller commits."""
    try:
        body = parse_event(data).to_jsonld()
        leaf = anchor_leaf(body)
        digest = event_hash(body)
    except TraceError as exc:
        raise as_problem(exc) from exc
    lots = lots_in(body)
    if not lots:
        raise InvalidTraceEventError(
            "quantityList: the event names no GTIN + lot (https://id.gs1.org/01/…/10/…)",
            field="quantityList",
        )
    if not is_admin:
        _check_merchant_owns(session, merchant_id, lots)
    leaf_digest = hashlib.sha256(leaf).hexdigest()
    existing = session.scalar(select(TraceEvent).where(TraceEvent.leaf_digest == leaf_digest))
    if existing is not None:
        return Recorded(existing, created=False)
    row = TraceEvent(
        event_hash=digest,
        leaf_digest=leaf_digest,
        leaf=leaf,
        event_type=body["type"],
        biz_step=body.get("bizStep"),
        event_time=datetime.fromisoformat(body["eventTime"]),
        recorded_at=datetime.now(UTC),
        merchant_id=merchant_id,
        body=body,
    )
    session.add(row)
    session.flush()
    session.add_all(TraceEventLot(event_id=row.id, gtin=g, lot_code=lot) for g, lot in lots)
    session.flush()
    return Recorded(row, created=True)


def _check_merchant_owns(
    session: Session, merchant_id: str | None, lots: Iterable[tuple[str, str]]
) -> None:
    for gtin, code in lots:
        owner = session.scalar(
            select(Product.merchant_id)
            .join(Lot, Lot.product_id == Product.id)
            .where(Lot.gtin == gtin, Lot.lot_code == code)
        )
        if owner is None:
            raise LotNotFoundError(f"lot {gtin}/{code} is not in the catalog", gtin=gtin, lot=code)
        if owner != merchant_id:
            raise PermissionDeniedError(f"lot {gtin}/{code} belongs to another merchant")


def lot_events(session: Session, gtin: str, lot: str) -> list[TraceEvent]:
    return list(
        session.scalars(
            select(TraceEvent)
            .join(TraceEventLot, TraceEventLot.event_id == TraceEvent.id)
            .where(TraceEventLot.gtin == gtin, TraceEventLot.lot_code == lot)
            .order_by(TraceEvent.event_time, TraceEvent.recorded_at)
        )
    )


def report_for(
    session: Session, gtin: str, lot: str, *, rpc_url: str | None, now: datetime | None = None
) -> TraceReport:
    """The lot's trace report; LotNotFoundError when neither events nor a catalog lot exist."""
    gtin, lot = lot_key(gtin, lot)
    events = lot_events(session, gtin, lot)
    if not events:
        known = session.scalar(select(Lot.id).where(Lot.gtin == gtin, Lot.lot_code == lot))
        if known is None:
            raise LotNotFoundError(f"no trace for lot {gtin}/{lot}", gtin=gtin, lot=lot)
    windows: dict[str, Window] = {}
    stored = []
    for row in events:
        window_id = session.scalar(
            select(TraceWindowLeaf.window_id).where(TraceWindowLeaf.event_id == row.id)
        )
        window = None
        if window_id is not None:
            if window_id not in windows:
                windows[window_id] = window_of_row(session, session.get_one(TraceWindow, window_id))
            window = windows[window_id]
        stored.append(StoredEvent(row.id, row.body, window))
    return build_report(gtin, lot, stored, generated_at=now or datetime.now(UTC), rpc_url=rpc_url)


def merchant_of_lot(session: Session, gtin: str, lot: str) -> Merchant | None:
    return session.scalar(
        select(Merchant)
        .join(Product, Product.merchant_id == Merchant.id)
        .join(Lot, Lot.product_id == Product.id)
        .where(Lot.gtin == gtin, Lot.lot_code == lot)
    )


def anchoring_service(
    sessions: sessionmaker[Session], trace: TraceSettings, anchorer: Any | None = None
) -> AnchoringService:
    """The composition of the anchoring use case over SQL and the chain client."""
    if anchorer is None:
        from traceability.chain import ChainClient

        anchorer = ChainClient(trace)
    return AnchoringService(
        SqlAnchorRepository(sessions),
        anchorer,
        window_seconds=trace.window_seconds,
        window_max_events=trace.window_max_events,
        new_id=lambda: str(uuid.uuid4()),
    )


def run_anchoring(
    sessions: sessionmaker[Session], trace: TraceSettings, anchorer: Any | None = None
) -> RunSummary:
    """One beat tick: cut due windows and anchor every unanchored one (failures retried)."""
    return anchoring_service(sessions, trace, anchorer).run_once()


def check_reorgs(
    sessions: sessionmaker[Session], trace: TraceSettings, checker: Any | None = None
) -> ReorgSummary:
    """Check recorded anchors are still on the chain; re-anchor (and alert ops) where a reorg
    deeper than the confirmations removed one. Safe to repeat."""
    if checker is None:
        from traceability.chain import ChainClient

        checker = ChainClient(trace)
    service = anchoring_service(sessions, trace, checker)
    return service.check_reorgs(checker, trace.reorg_check_blocks)
