"""Offline verification of a trace report: recompute every event hash from its JSON, fold
every Merkle proof to its root, check each window's committed list of the lot's events is
all there, and ask a node of the chain whether each root is anchored.

Returns every check with a clear message; ``first_failure`` names the first one that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from traceability import merkle
from traceability.completeness import lot_leaf
from traceability.errors import ProofError, TraceError
from traceability.hashing import HASH_VERSIONS, anchor_leaf, event_hash
from traceability.report import Anchor, LotCommitment, ReportEvent, TraceReport

Status = Literal["pass", "fail", "pending", "skip"]


class RootLookup(Protocol):
    """A node of the chain (``traceability.lookup.RpcRootLookup`` fits)."""

    def chain_id(self) -> int: ...

    def anchored_at(self, contract: str, root: bytes) -> int: ...


@dataclass(frozen=True)
class Check:
    """One verification step."""

    subject: str
    check: str
    status: Status
    detail: str


@dataclass
class VerificationResult:
    """All checks of one report."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (skipped on-chain checks do not count as failures)."""
        return all(c.status != "fail" for c in self.checks)

    @property
    def complete(self) -> bool:
        """No check failed and none was skipped."""
        return all(c.status in ("pass", "pending") for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status == "fail"), None)


def _label(index: int, item: ReportEvent) -> str:
    step = str(item.event.get("bizStep", item.event.get("type", "event")))
    return f"event {index + 1} ({step.rsplit('-', 1)[-1]})"


def _check_event(index: int, item: ReportEvent, anchors: dict[str, Anchor]) -> list[Check]:
    label = _label(index, item)
    checks: list[Check] = []
    if item.hash_version not in HASH_VERSIONS:
        return [Check(label, "hash", "fail", f"unknown hash version {item.hash_version}")]
    try:
        recomputed = event_hash(item.event, version=item.hash_version)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [Check(label, "hash", "fail", f"event JSON cannot be hashed: {exc}")]
    if recomputed != item.event_hash:
        checks.append(
            Check(
                label,
                "hash",
                "fail",
                f"tampered event: its content hashes to {recomputed}, "
                f"not to the reported {item.event_hash}",
            )
        )
        return checks
    checks.append(Check(label, "hash", "pass", "event JSON hashes to the reported hash"))
    if item.status == "pending":
        checks.append(Check(label, "anchor", "pending", "not anchored yet (next window)"))
        return checks
    if item.proof is None or item.root is None or item.root not in anchors:
        checks.append(Check(label, "proof", "fail", "anchored event without proof or anchor"))
        return checks
    try:
        siblings = [bytes.fromhex(s.removeprefix("0x")) for s in item.proof.siblings]
        folded = merkle.root_from_proof(
            anchor_leaf(item.event, version=item.hash_version),
            item.proof.leaf_index,
            item.proof.tree_size,
            siblings,
        )
    except (ProofError, ValueError) as exc:
        checks.append(Check(label, "proof", "fail", f"wrong proof: {exc}"))
        return checks
    if "0x" + folded.hex() != item.root:
        checks.append(
            Check(
                label,
                "proof",
                "fail",
                f"wrong proof: it folds to 0x{folded.hex()}, not to root {item.root}",
            )
        )
    elif anchors[item.root].event_count != item.proof.tree_size:
        checks.append(
            Check(
                label,
                "proof",
                "fail",
                f"wrong proof: tree size {item.proof.tree_size} but the anchor "
                f"covers {anchors[item.root].event_count} events",
            )
        )
    else:
        checks.append(
            Check(
                label,
                "proof",
                "pass",
                f"leaf {item.proof.leaf_index} of {item.proof.tree_size} folds to "
                f"root {item.root[:18]}…",
            )
        )
    return checks


def _check_anchor(anchor: Anchor, chain: RootLookup | None, node_chain: int | None) -> Check:
    subject = f"root {anchor.root[:18]}…"
    if chain is None or node_chain is None:
        return Check(subject, "on-chain", "skip", "no chain RPC given: root not checked on chain")
    if node_chain != anchor.chain_id:
        return Check(
            subject,
            "on-chain",
            "fail",
            f"report checked against a different chain: it names chain "
            f"{anchor.chain_id}, the RPC serves chain {node_chain}",
        )
    try:
        when = chain.anchored_at(anchor.contract, bytes.fromhex(anchor.root.removeprefix("0x")))
    except TraceError as exc:
        return Check(subject, "on-chain", "fail", f"{exc.code}: {exc.message}")
    if when == 0:
        return Check(
            subject,
            "on-chain",
            "fail",
            f"root never anchored: contract {anchor.contract} on chain "
            f"{anchor.chain_id} has no record of {anchor.root}",
        )
    if when != int(anchor.block_time.timestamp()):
        return Check(
            subject,
            "on-chain",
            "fail",
            f"anchored at {when}, but the report claims {anchor.block_time.isoformat()}",
        )
    return Check(
        subject,
        "on-chain",
        "pass",
        f"anchored at block time {anchor.block_time.isoformat()} "
        f"(contract {anchor.contract}, chain {anchor.chain_id})",
    )


def _check_commitment(report: TraceReport, root: str, commitment: LotCommitment) -> Check:
    subject = f"root {root[:18]}…"
    try:
        leaf = lot_leaf(
            report.gtin,
            report.lot,
            commitment.count,
            bytes.fromhex(commitment.sub_root.removeprefix("0x")),
        )
        folded = merkle.root_from_proof(
            leaf,
            commitment.proof.leaf_index,
            commitment.proof.tree_size,
            [bytes.fromhex(s.removeprefix("0x")) for s in commitment.proof.siblings],
        )
    except (ProofError, ValueError) as exc:
        return Check(subject, "completeness", "fail", f"wrong completeness proof: {exc}")
    if "0x" + folded.hex() != root:
        return Check(
            subject,
            "completeness",
            "fail",
            f"wrong completeness proof: the lot's commitment folds to 0x{folded.hex()}",
        )
    members = sorted(
        (e for e in report.events if e.status == "anchored" and e.root == root and e.proof),
        key=lambda e: e.proof.leaf_index if e.proof else 0,
    )
    if len(members) != commitment.count:
        return Check(
            subject,
            "completeness",
            "fail",
            f"incomplete report: this window commits {commitment.count} events of lot "
            f"{report.gtin}/{report.lot}, the report shows {len(members)}",
        )
    try:
        leaves = [anchor_leaf(e.event, version=e.hash_version) for e in members]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Check(subject, "completeness", "fail", f"event JSON cannot be hashed: {exc}")
    if "0x" + merkle.root(leaves).hex() != commitment.sub_root:
        return Check(
            subject,
            "completeness",
            "fail",
            "incomplete report: the lot's events in this window are not the committed list "
            f"(sub-root {commitment.sub_root[:18]}…)",
        )
    return Check(
        subject,
        "completeness",
        "pass",
        f"all {commitment.count} events of the lot in this window are in the report",
    )


def _check_completeness(report: TraceReport) -> list[Check]:
    committed = {c.root: c for c in report.lot_commitments}
    checks = []
    for anchor in report.anchors:
        commitment = committed.pop(anchor.root, None)
        if commitment is None:
            checks.append(
                Check(
                    f"root {anchor.root[:18]}…",
                    "completeness",
                    "skip",
                    "this window commits no list of the lot's events (cut before completeness "
                    "commitments): an event left out of it would go unnoticed",
                )
            )
            continue
        checks.append(_check_commitment(report, anchor.root, commitment))
    for root in committed:
        checks.append(
            Check(f"root {root[:18]}…", "completeness", "fail", "commitment for no anchor")
        )
    return checks


def verify_report(report: TraceReport, chain: RootLookup | None) -> VerificationResult:
    """Run every check; pass ``chain=None`` to check hashes and proofs only."""
    result = VerificationResult()
    anchors = {a.root: a for a in report.anchors}
    for index, item in enumerate(report.events):
        result.checks.extend(_check_event(index, item, anchors))
    result.checks.extend(_check_completeness(report))
    node_chain: int | None = None
    if chain is not None and report.anchors:
        try:
            node_chain = chain.chain_id()
        except TraceError as exc:
            result.checks.append(Check("chain", "rpc", "fail", f"{exc.code}: {exc.message}"))
            return result
    for anchor in report.anchors:
        result.checks.append(_check_anchor(anchor, chain, node_chain))
    return result
