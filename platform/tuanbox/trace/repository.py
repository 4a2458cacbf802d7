"""SQL implementation of traceability's AnchorRepository port (each call is one transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from traceability import merkle
from traceability.anchoring import AnchorRecord, AnchorRepository, PendingLeaf, Window
from traceability.completeness import LotKey, lot_leaves
from traceability.errors import ReportError, WindowConflictError
from tuanbox.fulfilment.alerts import open_alert
from tuanbox.trace.models import TraceEvent, TraceEventLot, TraceWindow, TraceWindowLeaf

REORG_NEXT_STEP = (
    "A chain reorganisation deeper than TRACE_CONFIRMATIONS removed an anchored root; the "
    "window was re-anchored (see trace_windows). Check the RPC node and raise "
    "TRACE_CONFIRMATIONS if such reorgs recur on this chain."
)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store only ever writes UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def window_of_row(session: Session, row: TraceWindow) -> Window:
    """The domain window for a stored one, leaves in position order."""
    members = session.execute(
        select(TraceWindowLeaf.event_id, TraceEvent.leaf)
        .join(TraceEvent, TraceEvent.id == TraceWindowLeaf.event_id)
        .where(TraceWindowLeaf.window_id == row.id)
        .order_by(TraceWindowLeaf.position)
    ).all()
    event_ids = tuple(m.event_id for m in members)
    event_leaves = tuple(bytes(m.leaf) for m in members)
    lots = _lots_of(session, event_ids)
    root = bytes.fromhex(row.root.removeprefix("0x"))
    committed = lot_leaves(event_leaves, [lots.get(e, ()) for e in event_ids])
    # The completeness leaves are derived from the (append-only) events' lots; windows cut
    # before they existed have a root over the event leaves alone.
    if merkle.root(event_leaves) == root:
        committed = []
    anchor = None
    if row.anchored_at is not None and row.chain_id is not None and row.contract:
        anchor = AnchorRecord(
            chain_id=row.chain_id,
            contract=row.contract,
            tx_hash=row.tx_hash,
            block_number=row.block_number,
            block_time=int(row.block_time or 0),
            block_hash=row.block_hash,
        )
    window = Window(
        id=row.id,
        created_at=_aware(row.created_at),
        event_ids=event_ids,
        leaves=event_leaves + tuple(leaf for _, leaf in committed),
        root=root,
        anchor=anchor,
        attempts=row.attempts,
        last_error=row.last_error,
        lots=tuple(key for key, _ in committed),
    )
    if merkle.root(window.leaves) != root:
        raise ReportError(f"window {row.id}: stored leaves no longer make its root")
    return window


def _lots_of(session: Session, event_ids: Sequence[str]) -> dict[str, tuple[LotKey, ...]]:
    found: dict[str, list[LotKey]] = {}
    for event_id, gtin, lot in session.execute(
        select(TraceEventLot.event_id, TraceEventLot.gtin, TraceEventLot.lot_code).where(
            TraceEventLot.event_id.in_(event_ids)
        )
    ):
        found.setdefault(event_id, []).append((gtin, lot))
    return {k: tuple(sorted(v)) for k, v in found.items()}


class SqlAnchorRepository(AnchorRepository):
    """Windows and leaves in the platform database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def pending(self, limit: int) -> list[PendingLeaf]:
        with self.sessions() as session:
            rows = session.execute(
                select(TraceEvent.id, TraceEvent.leaf, TraceEvent.recorded_at)
                .outerjoin(TraceWindowLeaf, TraceWindowLeaf.event_id == TraceEvent.id)
                .where(TraceWindowLeaf.event_id.is_(None))
                .order_by(TraceEvent.recorded_at, TraceEvent.id)
                .limit(limit)
            ).all()
            lots = _lots_of(session, [r.id for r in rows])
            return [
                PendingLeaf(r.id, bytes(r.leaf), _aware(r.recorded_at), lots.get(r.id, ()))
                for r in rows
            ]

    def add_window(self, window: Window) -> None:
        # The unique event_id of window leaves makes a racing second cutter fail, not double up.
        try:
            self._insert_window(window)
        except IntegrityError as exc:
            raise WindowConflictError(f"window {window.id} overlaps another window") from exc

    def _insert_window(self, window: Window) -> None:
        with self.sessions() as session, session.begin():
            session.add(
                TraceWindow(
                    id=window.id,
                    created_at=window.created_at,
                    root="0x" + window.root.hex(),
                    size=window.size,
                )
            )
            session.flush()
            session.add_all(
                TraceWindowLeaf(window_id=window.id, position=i, event_id=event_id)
                for i, event_id in enumerate(window.event_ids)
            )

    def unanchored(self) -> list[Window]:
        with self.sessions() as session:
            rows = session.scalars(
                select(TraceWindow)
                .where(TraceWindow.anchored_at.is_(None))
                .order_by(TraceWindow.created_at)
            ).all()
            return [window_of_row(session, row) for row in rows]

    def record_anchor(self, window_id: str, anchor: AnchorRecord) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(TraceWindow, window_id)
            row.chain_id = anchor.chain_id
            row.contract = anchor.contract
            row.tx_hash = anchor.tx_hash
            row.block_number = anchor.block_number
            row.block_time = anchor.block_time
            row.block_hash = anchor.block_hash
            row.anchored_at = datetime.now(UTC)
            row.last_error = None

    def record_failure(self, window_id: str, error: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(TraceWindow, window_id)
            row.attempts += 1
            row.last_error = error[:500]

    def anchored_since(self, block_number: int) -> list[Window]:
        with self.sessions() as session:
            rows = session.scalars(
                select(TraceWindow)
                .where(
                    TraceWindow.anchored_at.is_not(None),
                    TraceWindow.block_number >= block_number,
                )
                .order_by(TraceWindow.created_at)
            ).all()
            return [window_of_row(session, row) for row in rows]

    def record_reorg(self, window_id: str, detail: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get_one(TraceWindow, window_id, with_for_update=True)
            row.reorg_count += 1
            row.reorged_at = datetime.now(UTC)
            row.last_error = detail[:500]
            row.tx_hash = row.block_number = row.block_time = row.block_hash = None
            row.anchored_at = None
            open_alert(
                session,
                kind="trace_anchor_reorged",
                locker_id=None,
                compartment_id=None,
                severity="critical",
                detail=detail,
                next_step=REORG_NEXT_STEP,
            )
