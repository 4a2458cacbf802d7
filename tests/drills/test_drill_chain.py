"""Drill: the chain node restarted during anchoring; every window anchored once, and verifies."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from eth_typing import HexStr

from tests.drills.support import Drill, OwnAnvil
from tests.support import wait_until
from tests.traceability.conftest import Anvil, settings_for
from traceability import merkle
from traceability.anchoring import AnchoringService, InMemoryAnchorRepository, PendingLeaf
from traceability.chain import ChainClient

EVENTS = 120
PER_WINDOW = 4


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OwnAnvil]:
    anvil = OwnAnvil(tmp_path)
    anvil.start()
    yield anvil
    anvil.stop()


@pytest.mark.slow
def test_chain_node_restarted_during_anchoring(node: OwnAnvil, drill: Drill) -> None:
    drill.title = "chain node (anvil) restarted during anchoring"
    rpc = cast(Anvil, node)  # settings_for reads only the node's url
    address = ChainClient(settings_for(rpc)).deploy().contract_address
    assert address is not None
    chain = ChainClient(settings_for(rpc, contract_address=address, confirmation_timeout_seconds=5))
    repo = InMemoryAnchorRepository()
    ids = (f"w{i:03d}" for i in itertools.count(1))
    service = AnchoringService(
        repo, chain, window_seconds=3600, window_max_events=PER_WINDOW, new_id=lambda: next(ids)
    )
    failures: Counter[str] = Counter()

    def anchored() -> int:
        return sum(w.anchor is not None for w in list(repo.windows.values()))

    added = 0
    stop = threading.Event()

    def worker() -> None:
        """The beat task's loop: events keep arriving, each run cuts and anchors windows."""
        nonlocal added
        while not stop.is_set():
            for _ in range(2):
                if added < EVENTS:
                    at = datetime.now(UTC)
                    repo.add_event(PendingLeaf(f"e{added:04d}", f"event-{added}".encode(), at))
                    added += 1
            summary = service.run_once()
            failures.update(error.split(":")[0] for error in summary.failed.values())
            if added >= EVENTS and not repo.unanchored() and not repo.pending(1):
                return
            stop.wait(0.02)  # the loop's pace, not a wait for a result

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        wait_until(lambda: anchored() >= 3, 60, "anchoring under way")
        node.stop()
        drill.fault(
            f"anvil stopped (SIGTERM, state kept) with {anchored()} windows anchored "
            f"and {added}/{EVENTS} events recorded; anchoring went on against a dead node"
        )
        wait_until(lambda: failures, 30, "anchoring to fail against the dead node")
        node.start()
        thread.join(120)
        assert not thread.is_alive(), "anchoring never caught up"
    finally:
        stop.set()
        thread.join(10)

    windows = list(repo.windows.values())
    event_ids = [e for w in windows for e in w.event_ids]
    drill.note(f"runs that failed while the node was away: {dict(failures)}")
    drill.check("events recorded", EVENTS, added)
    drill.check("events in a window, each exactly once", sorted(set(event_ids)), sorted(event_ids))
    drill.check("events windowed", EVENTS, len(event_ids))
    drill.check("windows anchored", len(windows), anchored())
    logs = chain.contract().events.Anchored().get_logs(from_block=0)
    on_chain = Counter(bytes(entry["args"]["root"]) for entry in logs)
    drill.check("Anchored logs per window root", {1}, {on_chain[w.root] for w in windows})
    drill.check("Anchored logs in all", len(windows), len(logs))
    survived = {
        chain.w3.eth.get_transaction_receipt(HexStr(w.anchor.tx_hash))["blockNumber"]
        == w.anchor.block_number
        for w in windows
        if w.anchor is not None and w.anchor.tx_hash is not None
    }
    drill.check("recorded anchor transactions still on the restarted chain", {True}, survived)
    drill.check(
        "roots anchored (contract anchored_at > 0)",
        {True},
        {chain.anchored_at(w.root) > 0 for w in windows},
    )
    proofs_ok = {
        merkle.verify(leaf, i, w.size, merkle.proof(w.leaves, i), w.root)
        for w in windows
        for i, leaf in enumerate(w.leaves)
    }
    drill.check("every event's Merkle proof verifies against its anchored root", {True}, proofs_ok)
    drill.done()
