"""Trace report: a lot's events with their hashes, Merkle proofs and on-chain anchors.

Self-contained JSON: anyone can check it offline against any node of the chain
(``traceability.verify``). Pending events (not anchored yet) are marked as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from traceability import merkle
from traceability.anchoring import AnchorRecord, Window
from traceability.errors import ReportError
from traceability.hashing import (
    CURRENT_HASH_VERSION,
    HASH_VERSIONS,
    LEGACY_HASH_VERSION,
    anchor_leaf,
    event_hash,
)
from traceability.identifiers import gtin_lot_uri

REPORT_VERSION = 1


class Proof(BaseModel):
    """RFC 6962 audit path of one leaf: siblings from the leaf upwards, hex."""

    leaf_index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    siblings: list[str]


class Anchor(BaseModel):
    """One anchored root: where to check it."""

    root: str
    event_count: int
    chain_id: int
    contract: str
    tx_hash: str | None
    block_number: int | None
    block_time: datetime


class LotCommitment(BaseModel):
    """What a window commits about this lot: how many of its events, and their sub-root
    (``traceability.completeness``), proven by the lot leaf's audit path to the root."""

    root: str
    count: int = Field(ge=1)
    sub_root: str
    proof: Proof


class ReportEvent(BaseModel):
    """An event as stored, its EPCIS Event Hash and (when anchored) its proof."""

    event: dict[str, Any]
    event_hash: str
    hash_version: int = LEGACY_HASH_VERSION
    """Pre-hash version of ``event_hash`` and the leaf: 1 before GS1 conformance, 2 since
    (``traceability.hashing``); reports written before the field existed are version 1."""
    status: Literal["anchored", "pending"]
    leaf: str | None = None
    """Merkle leaf text, for browsers that fold proofs; verifiers recompute it themselves."""
    root: str | None = None
    proof: Proof | None = None


class TraceReport(BaseModel):
    """Everything needed to verify a lot's history without trusting Tuanbox."""

    version: int = REPORT_VERSION
    gtin: str
    lot: str
    digital_link: str
    generated_at: datetime
    hash_algorithm: str = "GS1 EPCIS Event Hash, CBV 2.0 (ni:///sha-256)"
    merkle_tree: str = "RFC 6962 (SHA-256, leaf 0x00, node 0x01)"
    leaf_data: str = "UTF-8 event hash URI, plus '#' and the error declaration if any"
    rpc_url: str | None = None
    events: list[ReportEvent]
    anchors: list[Anchor]
    lot_commitments: list[LotCommitment] = []
    """One per anchored window that commits this lot's event list (windows cut before
    completeness commitments have none)."""

    @property
    def pending_count(self) -> int:
        return sum(1 for e in self.events if e.status == "pending")


@dataclass(frozen=True)
class StoredEvent:
    """What a store knows about one event of the lot: its JSON and its window, if any."""

    event_id: str
    event: dict[str, Any]
    window: Window | None


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _anchor_model(window: Window, record: AnchorRecord) -> Anchor:
    return Anchor(
        root=_hex(window.root),
        event_count=window.size,
        chain_id=record.chain_id,
        contract=record.contract,
        tx_hash=record.tx_hash,
        block_number=record.block_number,
        block_time=datetime.fromtimestamp(record.block_time, UTC),
    )


def _anchored_version(event: dict[str, Any], leaf: bytes) -> int | None:
    """The hash version an anchored leaf was made with (windows before version 2 keep 1)."""
    for version in sorted(HASH_VERSIONS, reverse=True):
        if anchor_leaf(event, version=version) == leaf:
            return version
    return None


def build_report(
    gtin: str,
    lot: str,
    stored: Sequence[StoredEvent],
    *,
    generated_at: datetime,
    rpc_url: str | None = None,
) -> TraceReport:
    """Assemble the report; proofs are computed from each anchored window's leaves."""
    events: list[ReportEvent] = []
    anchors: dict[str, Anchor] = {}
    wanted: dict[str, list[int]] = {}
    for item in stored:
        if item.window is not None and item.window.anchor is not None:
            wanted.setdefault(item.window.id, []).append(item.window.event_ids.index(item.event_id))
            at = item.window.lot_index((gtin, lot))
            if at is not None and at not in wanted[item.window.id]:
                wanted[item.window.id].append(at)
    paths: dict[str, dict[int, list[bytes]]] = {}
    for item in stored:
        window = item.window
        if window is not None and window.id in wanted and window.id not in paths:
            paths[window.id] = merkle.proofs_for(window.leaves, wanted[window.id])
    for item in stored:
        window = item.window
        if window is None or window.anchor is None:
            digest = event_hash(item.event, version=CURRENT_HASH_VERSION)
            events.append(
                ReportEvent(
                    event=item.event,
                    event_hash=digest,
                    hash_version=CURRENT_HASH_VERSION,
                    status="pending",
                )
            )
            continue
        index = window.event_ids.index(item.event_id)
        version = _anchored_version(item.event, window.leaves[index])
        if version is None:
            raise ReportError(f"stored event {item.event_id} no longer matches its anchored leaf")
        digest = event_hash(item.event, version=version)
        siblings = paths[window.id][index]
        anchors.setdefault(_hex(window.root), _anchor_model(window, window.anchor))
        events.append(
            ReportEvent(
                event=item.event,
                event_hash=digest,
                hash_version=version,
                status="anchored",
                leaf=window.leaves[index].decode("utf-8"),
                root=_hex(window.root),
                proof=Proof(
                    leaf_index=index,
                    tree_size=window.size,
                    siblings=[_hex(s) for s in siblings],
                ),
            )
        )
    commitments = []
    seen: set[str] = set()
    for item in stored:
        window = item.window
        if window is None or window.anchor is None or window.id in seen:
            continue
        seen.add(window.id)
        at = window.lot_index((gtin, lot))
        if at is None:
            continue
        text = window.leaves[at].decode("utf-8")
        count, sub_root = text.rsplit(" count=", 1)[1].split(" root=")
        commitments.append(
            LotCommitment(
                root=_hex(window.root),
                count=int(count),
                sub_root=sub_root,
                proof=Proof(
                    leaf_index=at,
                    tree_size=window.size,
                    siblings=[_hex(s) for s in paths[window.id][at]],
                ),
            )
        )
    return TraceReport(
        lot_commitments=commitments,
        gtin=gtin,
        lot=lot,
        digital_link=gtin_lot_uri(gtin, lot),
        generated_at=generated_at,
        rpc_url=rpc_url,
        events=events,
        anchors=list(anchors.values()),
    )


def load_report(data: Any) -> TraceReport:
    """Parse report JSON (already decoded) or raise ReportError naming the broken field."""
    try:
        return TraceReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "report"
        raise ReportError(f"not a trace report: {where}: {first['msg']}") from exc
