"""Anchoring windows with our own fakes of the ports: cutting rules, retries, idempotency."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from traceability import merkle
from traceability.anchoring import AnchoringService, InMemoryAnchorRepository, PendingLeaf
from traceability.chain import TxResult
from traceability.errors import AlreadyAnchoredError, ChainUnavailableError, TraceError

T0 = datetime(2026, 11, 30, tzinfo=UTC)


class FakeAnchorer:
    """A chain that we can break and heal; remembers what was anchored."""

    def __init__(self) -> None:
        self.anchored: dict[bytes, TxResult] = {}
        self.failure: TraceError | None = None
        self.block = 100

    def chain_identity(self) -> tuple[int, str]:
        return 31337, "0x" + "ab" * 20

    def anchor(self, root: bytes, count: int) -> TxResult:
        if self.failure is not None:
            raise self.failure
        if root in self.anchored:
            raise AlreadyAnchoredError("already anchored")
        self.block += 1
        result = TxResult(
            f"0x{self.block:064x}", self.block, "0x" + "00" * 32, 1_790_000_000, 46_000
        )
        self.anchored[root] = result
        return result

    def find_anchor(self, root: bytes) -> TxResult | None:
        return self.anchored.get(root)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _service(max_events: int = 3, seconds: float = 600):
    repo = InMemoryAnchorRepository()
    chain = FakeAnchorer()
    clock = Clock()
    ids = (f"w{i}" for i in itertools.count(1))
    service = AnchoringService(
        repo,
        chain,
        window_seconds=seconds,
        window_max_events=max_events,
        new_id=lambda: next(ids),
        clock=clock,
    )
    return repo, chain, clock, service


def _add(repo: InMemoryAnchorRepository, n: int, at: datetime, start: int = 0) -> None:
    for i in range(start, start + n):
        repo.add_event(PendingLeaf(f"e{i:03d}", f"leaf-{i}".encode(), at))


def test_nothing_due_before_time_or_count() -> None:
    repo, chain, clock, service = _service()
    _add(repo, 2, T0)
    clock.now = T0 + timedelta(seconds=599)
    summary = service.run_once()
    assert summary.windows_cut == [] and chain.anchored == {}


def test_count_closes_a_window_first() -> None:
    repo, _chain, clock, service = _service(max_events=3)
    _add(repo, 7, T0)
    summary = service.run_once()
    assert summary.windows_cut == ["w1", "w2"]  # 3 + 3; the 7th waits for time or company
    assert [w.size for w in repo.windows.values()] == [3, 3]
    assert summary.anchored == ["w1", "w2"]
    clock.now = T0 + timedelta(minutes=10)
    assert service.run_once().windows_cut == ["w3"]
    assert repo.windows["w3"].event_ids == ("e006",)


def test_time_closes_a_window() -> None:
    repo, chain, clock, service = _service(max_events=10_000, seconds=600)
    _add(repo, 5, T0)
    clock.now = T0 + timedelta(seconds=600)
    summary = service.run_once()
    assert summary.windows_cut == ["w1"]
    window = repo.windows["w1"]
    assert window.root == merkle.root([f"leaf-{i}".encode() for i in range(5)])
    assert chain.anchored[window.root].block_number == window.anchor.block_number  # type: ignore[union-attr]


def test_failed_anchoring_stays_pending_and_is_retried() -> None:
    repo, chain, _clock, service = _service(max_events=2)
    _add(repo, 2, T0)
    chain.failure = ChainUnavailableError("node down")
    summary = service.run_once()
    assert summary.failed == {"w1": "chain_unavailable: node down"}
    assert repo.windows["w1"].anchor is None
    assert repo.windows["w1"].attempts == 1
    assert service.run_once().failed  # still down: still pending, tried again
    assert repo.windows["w1"].attempts == 2
    chain.failure = None
    summary = service.run_once()
    assert summary.anchored == ["w1"] and summary.windows_cut == []
    assert repo.windows["w1"].anchor is not None
    assert repo.unanchored() == []


def test_root_anchored_by_a_run_that_died_is_recorded_not_lost() -> None:
    repo, chain, _clock, service = _service(max_events=2)
    _add(repo, 2, T0)
    service.cut_windows()
    window = repo.windows["w1"]
    earlier = chain.anchor(window.root, window.size)  # anchored, but never recorded
    summary = service.run_once()
    assert summary.anchored == ["w1"]
    assert repo.windows["w1"].anchor.tx_hash == earlier.tx_hash  # type: ignore[union-attr]


def test_events_arriving_later_join_later_windows() -> None:
    repo, _chain, _clock, service = _service(max_events=2)
    _add(repo, 2, T0)
    service.run_once()
    _add(repo, 2, T0 + timedelta(minutes=1), start=2)
    service.run_once()
    assert [w.event_ids for w in repo.windows.values()] == [("e000", "e001"), ("e002", "e003")]


def test_a_racing_cutter_leaves_the_window_to_the_other_worker() -> None:
    repo, _chain, clock, service = _service(max_events=2)
    _add(repo, 2, T0)
    racing = AnchoringService(
        repo,
        FakeAnchorer(),
        window_seconds=600,
        window_max_events=2,
        new_id=lambda: "other",
        clock=clock,
    )
    stale = repo.pending(2)  # both workers read the same pending events
    repo.pending = lambda limit: stale  # type: ignore[method-assign]
    assert [w.id for w in racing.cut_windows()] == ["other"]
    assert service.cut_windows() == []  # conflict: nothing cut twice, no error
    assert list(repo.windows) == ["other"]
