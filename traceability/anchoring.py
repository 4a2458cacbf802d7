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
from traceability.errors import AlreadyAnchoredError, TraceError, WindowConflictError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingLeaf:
    """An event waiting for a window: its id in the store and its Merkle leaf data."""

    event_id: str
    leaf: bytes
    recorded_at: datetime


@dataclass(frozen=True)
class AnchorRecord:
    """Where and when a window's root went on chain."""

    chain_id: int
    contract: str
    tx_hash: str | None
    block_number: int | None
    block_time: int


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

    @property
    def size(self) -> int:
        return len(self.leaves)


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


class RootAnchorer(Protocol):
    """The chain side, as the service needs it (``ChainClient`` fits)."""

    def anchor(self, root: bytes, count: int) -> TxResult: ...

    def find_anchor(self, root: bytes) -> TxResult | None: ...

    def chain_identity(self) -> tuple[int, str]: ...


class InMemoryAnchorRepository(AnchorRepository):
    """For unit tests and the benchmark."""

    def __init__(self) -> None:
        self.leaves: dict[str, PendingLeaf] = {}
        self.windowed: set[str] = set()
        self.windows: dict[str, Window] = {}

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


@dataclass
class RunSummary:
    """What one anchoring run did."""

    windows_cut: list[str] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def build_window(window_id: str, now: datetime, leaves: Sequence[PendingLeaf]) -> Window:
    """A window over these leaves, in the given order."""
    data = tuple(p.leaf for p in leaves)
    return Window(
        id=window_id,
        created_at=now,
        event_ids=tuple(p.event_id for p in leaves),
        leaves=data,
        root=merkle.root(data),
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
        )
        self.repository.record_anchor(window.id, record)
        return record

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
