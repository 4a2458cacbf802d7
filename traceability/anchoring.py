"""Anchoring windows: cut pending event leaves into windows (time or count, whichever first),
build each window's Merkle tree, store it, anchor its root, record the transaction.

Pure use-case logic over two ports: ``AnchorRepository`` (in memory here; SQL in the platform)
and ``RootAnchorer`` (the chain client). A window whose anchoring fails stays unanchored with
its error recorded, and the next run retries it: nothing is lost.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from traceability import merkle
from traceability.chain import TxResult
from traceability.completeness import LotKey, lot_leaves
from traceability.errors import AlreadyAnchoredError, TraceError, WindowConflictError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingLeaf:
    """An event waiting for a window: its id in the store and its Merkle leaf data."""

    event_id: str
    leaf: bytes
    recorded_at: datetime
    lots: tuple[LotKey, ...] = ()
    """GTIN + lot pairs the event names: each gets a completeness leaf in the window."""


@dataclass(frozen=True)
class AnchorRecord:
    """Where and when a window's root went on chain."""

    chain_id: int
    contract: str
    tx_hash: str | None
    block_number: int | None
    block_time: int
    block_hash: str | None = None
    """Hash of the block that holds the transaction: a later check compares it (reorgs)."""


@dataclass(frozen=True)
class Window:
    """A batch of event leaves, in leaf order, with its Merkle root."""

    id: str
    created_at: datetime
    event_ids: tuple[str, ...]
    leaves: tuple[bytes, ...]
    root: bytes
    anchor: AnchorRecord | None = None
    attempts: int = 0
    last_error: str | None = None
    lots: tuple[LotKey, ...] = ()
    """Lots with a completeness leaf; theirs follow the event leaves, in this order."""

    @property
    def size(self) -> int:
        return len(self.leaves)

    def lot_index(self, key: LotKey) -> int | None:
        """Leaf index of a lot's completeness leaf, None if the window has none for it."""
        return len(self.event_ids) + self.lots.index(key) if key in self.lots else None


class AnchorRepository(abc.ABC):
    """Storage of pending leaves and windows; implementations must be durable and atomic."""

    @abc.abstractmethod
    def pending(self, limit: int) -> list[PendingLeaf]:
        """Leaves in no window yet, oldest first."""

    @abc.abstractmethod
    def add_window(self, window: Window) -> None:
        """Store a window and take its events out of the pending set, atomically.

        Raises WindowConflictError when one of its events is already in a window.
        """

    @abc.abstractmethod
    def unanchored(self) -> list[Window]:
        """Windows whose root is not anchored yet, oldest first."""

    @abc.abstractmethod
    def record_anchor(self, window_id: str, anchor: AnchorRecord) -> None:
        """Mark a window anchored."""

    @abc.abstractmethod
    def record_failure(self, window_id: str, error: str) -> None:
        """Count a failed attempt; the window stays unanchored."""

    @abc.abstractmethod
    def anchored_since(self, block_number: int) -> list[Window]:
        """Anchored windows whose transaction is in this block or a later one, oldest first."""

    @abc.abstractmethod
    def record_reorg(self, window_id: str, detail: str) -> None:
        """A reorg took the window's anchor off the chain: mark it (and tell ops) and make the
        window unanchored again, atomically."""


class RootAnchorer(Protocol):
    """The chain side, as the service needs it (``ChainClient`` fits)."""

    def anchor(self, root: bytes, count: int) -> TxResult: ...

    def find_anchor(self, root: bytes) -> TxResult | None: ...

    def chain_identity(self) -> tuple[int, str]: ...


class AnchorChecker(RootAnchorer, Protocol):
    """A chain client that can also tell whether a recorded anchor is still on the chain."""

    def head(self) -> int: ...

    def anchor_intact(self, record: AnchorRecord) -> bool: ...


class InMemoryAnchorRepository(AnchorRepository):
    """For unit tests and the benchmark."""

    def __init__(self) -> None:
        self.leaves: dict[str, PendingLeaf] = {}
        self.windowed: set[str] = set()
        self.windows: dict[str, Window] = {}
        self.reorgs: list[tuple[str, str]] = []

    def add_event(self, leaf: PendingLeaf) -> None:
        self.leaves[leaf.event_id] = leaf

    def pending(self, limit: int) -> list[PendingLeaf]:
        waiting = [v for k, v in self.leaves.items() if k not in self.windowed]
        return sorted(waiting, key=lambda p: (p.recorded_at, p.event_id))[:limit]

    def add_window(self, window: Window) -> None:
        if self.windowed.intersection(window.event_ids):
            raise WindowConflictError("some events are already in a window")
        self.windows[window.id] = window
        self.windowed.update(window.event_ids)

    def unanchored(self) -> list[Window]:
        return sorted(
            (w for w in self.windows.values() if w.anchor is None), key=lambda w: w.created_at
        )

    def record_anchor(self, window_id: str, anchor: AnchorRecord) -> None:
        self.windows[window_id] = replace(self.windows[window_id], anchor=anchor)

    def record_failure(self, window_id: str, error: str) -> None:
        window = self.windows[window_id]
        self.windows[window_id] = replace(window, attempts=window.attempts + 1, last_error=error)

    def window_of(self, event_id: str) -> Window | None:
        return next((w for w in self.windows.values() if event_id in w.event_ids), None)

    def anchored_since(self, block_number: int) -> list[Window]:
        return sorted(
            (
                w
                for w in self.windows.values()
                if w.anchor is not None and (w.anchor.block_number or 0) >= block_number
            ),
            key=lambda w: w.created_at,
        )

    def record_reorg(self, window_id: str, detail: str) -> None:
        self.reorgs.append((window_id, detail))
        self.windows[window_id] = replace(self.windows[window_id], anchor=None, last_error=detail)


@dataclass
class RunSummary:
    """What one anchoring run did."""

    windows_cut: list[str] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class ReorgSummary:
    """What one reorg check found and did."""

    checked: int = 0
    reorged: list[str] = field(default_factory=list)
    reanchored: dict[str, AnchorRecord] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def build_window(window_id: str, now: datetime, leaves: Sequence[PendingLeaf]) -> Window:
    """A window over these event leaves, in the given order, then one completeness leaf per
    lot they name (``traceability.completeness``)."""
    events = tuple(p.leaf for p in leaves)
    committed = lot_leaves(events, [p.lots for p in leaves])
    data = events + tuple(leaf for _, leaf in committed)
    return Window(
        id=window_id,
        created_at=now,
        event_ids=tuple(p.event_id for p in leaves),
        leaves=data,
        root=merkle.root(data),
        lots=tuple(key for key, _ in committed),
    )


class AnchoringService:
    """Cuts windows and anchors them; safe to run from several workers if the repository is."""

    def __init__(
        self,
        repository: AnchorRepository,
        anchorer: RootAnchorer,
        *,
        window_seconds: float,
        window_max_events: int,
        new_id: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repository = repository
        self.anchorer = anchorer
        self.window = timedelta(seconds=window_seconds)
        self.max_events = window_max_events
        self.new_id = new_id
        self.clock = clock

    def cut_windows(self) -> list[Window]:
        """Close every window that is full, or whose oldest event has waited long enough."""
        cut: list[Window] = []
        now = self.clock()
        while True:
            batch = self.repository.pending(self.max_events)
            if not batch:
                break
            full = len(batch) >= self.max_events
            if not full and now - batch[0].recorded_at < self.window:
                break
            window = build_window(self.new_id(), now, batch)
            try:
                self.repository.add_window(window)
            except WindowConflictError:
                log.info("another worker is cutting windows; leaving it to them")
                break
            cut.append(window)
        return cut

    def anchor_window(self, window: Window) -> AnchorRecord:
        """Anchor one window's root (idempotent: a root already on chain is just recorded)."""
        chain_id, contract = self.anchorer.chain_identity()
        try:
            result = self.anchorer.anchor(window.root, window.size)
        except AlreadyAnchoredError:
            # A previous run anchored it but died before recording: find that transaction.
            found = self.anchorer.find_anchor(window.root)
            if found is None:
                raise
            result = found
        record = AnchorRecord(
            chain_id=chain_id,
            contract=contract,
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            block_time=result.block_time,
            block_hash=result.block_hash,
        )
        self.repository.record_anchor(window.id, record)
        return record

    def check_reorgs(self, checker: AnchorChecker, depth_blocks: int) -> ReorgSummary:
        """Check that every window anchored in the last ``depth_blocks`` blocks still has its
        transaction in the recorded block; re-anchor a window a reorg took off the chain.

        Idempotent: an intact anchor is left alone, a re-anchored one has its new block
        recorded, and a root the reorg put back in another block is found, not re-sent.
        """
        summary = ReorgSummary()
        since = max(0, checker.head() - depth_blocks)
        for window in self.repository.anchored_since(since):
            anchor = window.anchor
            if anchor is None or anchor.block_hash is None:
                continue  # recorded before block hashes were kept: nothing to compare
            summary.checked += 1
            if checker.anchor_intact(anchor):
                continue
            detail = (
                f"reorg: tx {anchor.tx_hash} is no longer in block {anchor.block_number} "
                f"({anchor.block_hash}); window {window.id} re-anchored"
            )
            log.error("%s", detail)
            self.repository.record_reorg(window.id, detail)
            summary.reorged.append(window.id)
            try:
                record = self.anchor_window(replace(window, anchor=None))
            except TraceError as exc:
                error = f"{exc.code}: {exc.message}"
                self.repository.record_failure(window.id, error)
                summary.failed[window.id] = error
                log.warning("re-anchoring %s failed (%s); next run retries", window.id, error)
                continue
            summary.reanchored[window.id] = record
        return summary

    def run_once(self) -> RunSummary:
        """Cut due windows, then try to anchor every unanchored window (oldest first)."""
        summary = RunSummary(windows_cut=[w.id for w in self.cut_windows()])
        for window in self.repository.unanchored():
            try:
                self.anchor_window(window)
            except TraceError as exc:
                error = f"{exc.code}: {exc.message}"
                self.repository.record_failure(window.id, error)
                summary.failed[window.id] = error
                log.warning("anchoring window %s failed (%s); it stays pending", window.id, error)
                continue
            summary.anchored.append(window.id)
        return summary
