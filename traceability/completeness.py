"""Completeness commitments: per lot and window, the count and the ordered list of the lot's
event leaves, committed as one extra leaf of the window's Merkle tree.

The lot leaf is ``tb:lot:v1 {gtin}/{lot} count={n} root=0x{sub-root}`` where the sub-root is the
RFC 6962 root of the lot's event leaves in window order. A report that leaves one of the lot's
events out can no longer reproduce the count or the sub-root the chain commits to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from traceability import merkle

LotKey = tuple[str, str]


def lot_leaf(gtin: str, lot: str, count: int, sub_root: bytes) -> bytes:
    """The leaf that commits a lot's event count and sub-root inside a window."""
    return f"tb:lot:v1 {gtin}/{lot} count={count} root=0x{sub_root.hex()}".encode()


def lot_leaves(
    event_leaves: Sequence[bytes], event_lots: Sequence[Iterable[LotKey]]
) -> list[tuple[LotKey, bytes]]:
    """One commitment leaf per lot the window's events name, sorted by (gtin, lot)."""
    members: dict[LotKey, list[bytes]] = {}
    for leaf, lots in zip(event_leaves, event_lots, strict=True):
        for key in lots:
            members.setdefault(key, []).append(leaf)
    return [
        (key, lot_leaf(key[0], key[1], len(leaves), merkle.root(leaves)))
        for key, leaves in sorted(members.items())
    ]
