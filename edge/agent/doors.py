"""Door tracking (pure): polled hook/infrared bits in, door facts out.

Kept free of I/O so the rules (first poll sets the baseline, ``left_open`` once per opening)
are unit tested without a board.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.protocol.compartments import compartment_id
from edge.protocol.kerong import BoardStatus

DoorFactKind = Literal["opened", "closed", "left_open"]


@dataclass(frozen=True)
class DoorFact:
    kind: DoorFactKind
    compartment: str
    item_present: bool
    open_seconds: float = 0.0


@dataclass
class DoorView:
    """What the agent last saw of one compartment."""

    is_open: bool
    item_present: bool
    opened_at: float | None = None  # monotonic seconds
    left_open_reported: bool = False


class DoorTracker:
    """Feed it each board's status with a monotonic timestamp; it returns what changed."""

    def __init__(self, compartments: dict[str, tuple[int, int]], left_open_seconds: float) -> None:
        self._where = compartments  # compartment id -> (board, lock)
        self.left_open_seconds = left_open_seconds
        self.views: dict[str, DoorView] = {}
        self._seen_at: dict[int, float] = {}  # board -> time of the newest status used

    def update(self, status: BoardStatus, now: float) -> list[DoorFact]:
        """Facts from one status; a status older than one already used is ignored."""
        if now < self._seen_at.get(status.board, float("-inf")):
            return []
        self._seen_at[status.board] = now
        facts: list[DoorFact] = []
        for lock in range(1, len(status.hooks_closed) + 1):
            cid = compartment_id(status.board, lock)
            if cid not in self._where:
                continue
            is_open = not status.hook_closed(lock)
            item = status.item_present(lock)
            view = self.views.get(cid)
            if view is None:
                # First sight after a (re)start: a baseline, not an event.
                self.views[cid] = DoorView(is_open, item, now if is_open else None)
                continue
            if is_open and not view.is_open:
                view.opened_at, view.left_open_reported = now, False
                facts.append(DoorFact("opened", cid, item))
            elif not is_open and view.is_open:
                opened = now - view.opened_at if view.opened_at is not None else 0.0
                view.opened_at = None
                facts.append(DoorFact("closed", cid, item, opened))
            elif (
                is_open
                and view.opened_at is not None
                and not view.left_open_reported
                and now - view.opened_at >= self.left_open_seconds
            ):
                view.left_open_reported = True
                facts.append(DoorFact("left_open", cid, item, now - view.opened_at))
            view.is_open, view.item_present = is_open, item
        return facts
