"""Drill: the edge agent killed with SIGKILL during pickups; no double pickup, no burnt token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol.envelopes import Event
from tests.drills.support import Drill
from tests.edge.agent.support import OwnMosquitto, qr, wait_until
from tests.edge.agent.test_agent_crash_pickup import Locker, _arm, locker

__all__ = ["locker"]  # the crash-pickup rig (a victim agent process, the bus, the scanner)

PICKUPS = {"0-1": "order-1", "0-2": "order-2", "0-3": "order-3", "0-4": "order-4"}


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The rig's broker: our own, not the machine's."""
    broker = OwnMosquitto(tmp_path / "mosquitto")
    broker.start()
    yield "127.0.0.1", broker.port
    broker.stop()


def _once_by_seq(events: list[Event]) -> list[Event]:
    seen: dict[int, Event] = {}
    for event in events:
        seen.setdefault(event.seq, event)
    return list(seen.values())


def _pick_up(locker: Locker, token: str, compartment: str) -> None:
    """A shopper's pickup: scan, the door opens, the parcel out, the door shut."""
    locker.scanner.scan(token)
    wait_until(lambda: locker.door(compartment) == "open", 10, f"door {compartment} open")
    locker.bus.remove_item(compartment)
    locker.bus.close_door(compartment)


@pytest.mark.slow
def test_edge_agent_killed_during_pickups(
    locker: Locker, signing_key: Ed25519PrivateKey, drill: Drill
) -> None:
    drill.title = "edge agent killed with SIGKILL during a pickup"
    for compartment in PICKUPS:
        locker.bus.place_item(compartment, force=True)
    locker.start()
    tokens = {}
    for n, (compartment, order) in enumerate(PICKUPS.items(), 1):
        _arm(locker, compartment, order, f"tok-{n}")
        tokens[compartment] = qr(signing_key, locker.locker_id, compartment, order, f"tok-{n}")

    _pick_up(locker, tokens["0-1"], "0-1")

    # Fault 1: killed at the unlock frame of 0-2, and the lock did not act on it.
    locker.bus.set_stuck("0-2")
    locker.victim.armed = True
    locker.scanner.scan(tokens["0-2"])
    assert locker.victim.killed.wait(10), "the agent was never killed at the unlock frame"
    locker.victim.killed.clear()
    drill.fault("agent SIGKILLed as the unlock frame for 0-2 hit the bus (lock did not act)")
    drill.check("token of 0-2 while the agent is dead", "pending", locker.ledger("tok-2"))
    locker.bus.set_stuck("0-2", False)
    locker.start()
    wait_until(lambda: locker.ledger("tok-2") is None, 10, "the interrupted token released")
    drill.check("token of 0-2 after restart (not burnt)", None, locker.ledger("tok-2"))
    _pick_up(locker, tokens["0-2"], "0-2")  # the same QR works on the second try

    # Fault 2: killed at the unlock frame of 0-3; the door opens while the agent is dead and
    # the shopper takes the parcel and shuts the door before it comes back.
    locker.victim.armed = True
    locker.scanner.scan(tokens["0-3"])
    assert locker.victim.killed.wait(10), "the agent was never killed at the unlock frame"
    wait_until(lambda: locker.door("0-3") == "open", 10, "door 0-3 open with the agent dead")
    locker.bus.remove_item("0-3")
    locker.bus.close_door("0-3")
    drill.fault("agent SIGKILLed as the unlock frame for 0-3 hit the bus (door opened meanwhile)")
    locker.start()
    wait_until(lambda: locker.ledger("tok-3") == "used", 10, "the token of 0-3 spent")

    _pick_up(locker, tokens["0-4"], "0-4")
    wait_until(
        lambda: len(_once_by_seq(locker.platform.events_of("picked_up"))) == 4,
        20,
        "four pickups reported",
    )

    # Every QR again: each refused, no door opens.
    for compartment in PICKUPS:
        locker.scanner.scan(tokens[compartment])
    rejected = locker.platform.wait_event("pickup_rejected", 20, count=len(PICKUPS))
    picked = _once_by_seq(locker.platform.events_of("picked_up"))
    drill.check(
        "picked_up events (distinct seq) per order",
        {order: 1 for order in PICKUPS.values()},
        {o: [e.payload["order_id"] for e in picked].count(o) for o in PICKUPS.values()},
    )
    drill.check(
        "replayed QRs refused as TOKEN_USED",
        {"TOKEN_USED"},
        {e.payload["reason"] for e in rejected},
    )
    drill.check(
        "unlock frames per lock (0-2: the stuck one, then the retry)",
        {"0-1": 1, "0-2": 2, "0-3": 1, "0-4": 1},  # 0-2: the stuck attempt, then the real one
        {c: locker.bus.unlock_count(c) for c in PICKUPS},
    )
    drill.check("doors shut at the end", {"closed"}, {locker.door(c) for c in PICKUPS})
    drill.check(
        "tokens spent in the agent's ledger",
        {"used"},
        {locker.ledger(f"tok-{n}") for n in range(1, 5)},
    )
    failed = _once_by_seq(locker.platform.events_of("unlock_failed"))
    drill.check(
        "unlock_failed reported (the released token only)",
        ["order-2"],
        [e.payload["order_id"] for e in failed],
    )
    seqs = sorted({e.seq for e in locker.platform.events})
    drill.check("event seqs without a gap", list(range(1, len(seqs) + 1)), seqs)
    drill.done()
