"""The bridge's counters: what it published, received and applied, and where its time went."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BridgeStats:
    published: int = 0
    received: int = 0  # messages the broker handed over (counted on paho's one thread)
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0  # messages of lockers this platform does not know
    acks: int = 0
    states: int = 0
    statuses: int = 0
    expired: int = 0
    stalled: int = 0
    reused_seqs: int = 0  # different events under an applied seq (not applied, reported)
    rejected_messages: int = 0
    dead_letters: int = 0
    connects: int = 0
    claims: int = 0  # claiming transactions
    batches: int = 0  # inbound transactions committed
    by_kind: dict[str, int] = field(default_factory=dict)
    # Seconds spent in claiming passes, in housekeeping, and applying inbound batches (summed
    # over the inbound workers): where a bridge's time goes, next to the time it waits.
    claim_s: float = 0.0
    housekeeping_s: float = 0.0
    inbound_s: float = 0.0
