"""Benchmark: event hashing and proving throughput, gas per anchored event by window size
against one transaction per event, and trace-report verification time.

Starts its own anvil (``node_modules/.bin/anvil``). Run: ``.venv/bin/python bench/anchoring.py``.
Baselines are measured in the same run: plain SHA-256 of sorted JSON for hashing, one
anchoring transaction per event for gas.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.traceability import factories  # noqa: E402
from traceability import merkle  # noqa: E402
from traceability.anchoring import (  # noqa: E402
    AnchoringService,
    InMemoryAnchorRepository,
    PendingLeaf,
)
from traceability.chain import ChainClient  # noqa: E402
from traceability.errors import ChainUnavailableError  # noqa: E402
from traceability.hashing import anchor_leaf  # noqa: E402
from traceability.lookup import RpcRootLookup  # noqa: E402
from traceability.report import StoredEvent, build_report  # noqa: E402
from traceability.settings import ANVIL_DEV_KEY, TraceSettings  # noqa: E402
from traceability.verify import verify_report  # noqa: E402

N_EVENTS = 10_000
PER_EVENT_TXS = 100


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = REPO / "node_modules" / ".bin" / "anvil"
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            RpcRootLookup(url, timeout=1).chain_id()
            return process, url
        except ChainUnavailableError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def make_events(n: int) -> list[dict]:
    events: list[dict] = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    while len(events) < n:
        events.extend(factories.journey_events(start=start + timedelta(minutes=len(events))))
    return events[:n]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def main() -> None:
    events = make_events(N_EVENTS)
    print(
        f"# {N_EVENTS} journey events (5 kinds: commissioning/ILMD, shipping, receiving,"
        " storing/sensor, pickup)\n"
    )

    t = time.perf_counter()
    for e in events:
        hashlib.sha256(json.dumps(e, sort_keys=True).encode()).hexdigest()
    naive = time.perf_counter() - t
    t = time.perf_counter()
    leaves = [anchor_leaf(e) for e in events]
    gs1 = time.perf_counter() - t
    t = time.perf_counter()
    root, proofs = merkle.proofs(leaves)
    proving = time.perf_counter() - t
    t = time.perf_counter()
    ok = all(merkle.verify(leaves[i], i, N_EVENTS, proofs[i], root) for i in range(N_EVENTS))
    folding = time.perf_counter() - t
    assert ok
    print("| step | throughput | total |")
    print("| --- | --- | --- |")
    print(f"| baseline: SHA-256 of sorted JSON | {rate(N_EVENTS, naive)} | {naive:.3f} s |")
    print(f"| GS1 EPCIS Event Hash (pre-hash + SHA-256) | {rate(N_EVENTS, gs1)} | {gs1:.3f} s |")
    print(f"| Merkle root + all {N_EVENTS} proofs | {rate(N_EVENTS, proving)} | {proving:.3f} s |")
    print(f"| proof verification (fold to root) | {rate(N_EVENTS, folding)} | {folding:.3f} s |")
    print(
        f"| hash + prove, end to end | {rate(N_EVENTS, gs1 + proving)} | {gs1 + proving:.3f} s |\n"
    )

    process, url = start_anvil()
    try:
        settings = TraceSettings(
            rpc_url=url, signer_key=ANVIL_DEV_KEY, confirmations=1, poll_interval_seconds=0.01
        )
        deployment = ChainClient(settings).deploy()
        print(f"deploy gas: {deployment.gas_used:,}\n")
        client = ChainClient(
            settings.model_copy(update={"contract_address": deployment.contract_address})
        )

        per_event_gas = []
        for i in range(PER_EVENT_TXS):
            per_event_gas.append(client.anchor(hashlib.sha256(leaves[i]).digest(), 1).gas_used)
        baseline = sum(per_event_gas) / len(per_event_gas)
        print("| anchoring | txs | gas per tx | gas per event | vs one tx per event |")
        print("| --- | --- | --- | --- | --- |")
        print(
            f"| baseline: one tx per event ({PER_EVENT_TXS} events) | {PER_EVENT_TXS} |"
            f" {baseline:,.0f} | {baseline:,.0f} | 1x |"
        )
        for size in (1, 100, 10_000):
            window_leaves = [b"w%d-" % size + leaf for leaf in leaves[:size]]
            result = client.anchor(merkle.root(window_leaves), size)
            label = "event" if size == 1 else "events"
            print(
                f"| window of {size:,} {label} | 1 | {result.gas_used:,} |"
                f" {result.gas_used / size:,.2f} |"
                f" {baseline / (result.gas_used / size):,.2f}x cheaper |"
            )

        repo = InMemoryAnchorRepository()
        journey = factories.journey_events(start=datetime(2026, 11, 29, tzinfo=UTC))
        now = datetime(2026, 11, 30, tzinfo=UTC)
        for i, e in enumerate(journey):
            repo.add_event(PendingLeaf(f"j{i}", anchor_leaf(e), now))
        for i, leaf in enumerate(leaves[: N_EVENTS - len(journey)]):
            repo.add_event(PendingLeaf(f"x{i:05d}", b"bench-" + leaf, now))
        ids = iter(["w-report"])
        AnchoringService(
            repo,
            client,
            window_seconds=600,
            window_max_events=N_EVENTS,
            new_id=lambda: next(ids),
            clock=lambda: now,
        ).run_once()
        t = time.perf_counter()
        report = build_report(
            factories.GTIN,
            factories.LOT,
            [StoredEvent(f"j{i}", e, repo.window_of(f"j{i}")) for i, e in enumerate(journey)],
            generated_at=now,
        )
        building = time.perf_counter() - t
        lookup = RpcRootLookup(url)
        t = time.perf_counter()
        offline = verify_report(report, None)
        offline_s = time.perf_counter() - t
        t = time.perf_counter()
        online = verify_report(report, lookup)
        online_s = time.perf_counter() - t
        assert offline.ok and online.complete
        print(f"\n| trace report ({len(journey)} events, window of {N_EVENTS:,}) | time |")
        print("| --- | --- |")
        print(f"| build (proofs from the stored window) | {building * 1000:.1f} ms |")
        print(f"| verify offline (hashes + proofs) | {offline_s * 1000:.1f} ms |")
        print(f"| verify with on-chain root check (local anvil RPC) | {online_s * 1000:.1f} ms |")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
