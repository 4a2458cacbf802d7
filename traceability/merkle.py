"""RFC 6962 Merkle tree over event leaves: root, audit proofs and their verification.

Leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖ right); a tree of n > 1
leaves splits at k, the largest power of two below n. An odd leaf is never duplicated, so no
two different leaf lists share a root (the Bitcoin CVE-2012-2459 trick does not apply).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from traceability.errors import ProofError

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf, domain-separated from inner nodes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    # Bottom-up, level by level: pairing from the left and carrying an odd last node up
    # unchanged builds exactly RFC 6962's left-balanced tree, without deep recursion.
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        levels.append(paired)
    return levels


def _path(index: int, levels: Sequence[Sequence[bytes]]) -> list[bytes]:
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the leaves (RFC 6962 MTH); the empty tree hashes the empty string."""
    if not leaves:
        return EMPTY_ROOT
    return _levels([leaf_hash(d) for d in leaves])[-1][0]


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` (RFC 6962 PATH), siblings from the leaf upwards."""
    if not 0 <= index < len(leaves):
        raise ProofError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    return _path(index, _levels([leaf_hash(d) for d in leaves]))


def proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's audit path, from one pass over the tree's levels."""
    if not leaves:
        return EMPTY_ROOT, []
    levels = _levels([leaf_hash(d) for d in leaves])
    return levels[-1][0], [_path(i, levels) for i in range(len(leaves))]


def proofs_for(leaves: Sequence[bytes], indices: Sequence[int]) -> dict[int, list[bytes]]:
    """Audit paths of a few leaves of a large tree, building its levels once."""
    for index in indices:
        if not 0 <= index < len(leaves):
            raise ProofError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    levels = _levels([leaf_hash(d) for d in leaves])
    return {index: _path(index, levels) for index in indices}


def root_from_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Fold an audit path to the root it implies (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of {size} leaves")
    if any(len(sibling) != 32 for sibling in path):
        raise ProofError("every sibling must be a 32-byte SHA-256 digest")
    fn, sn = index, size - 1
    current = leaf_hash(leaf)
    for sibling in path:
        if sn == 0:
            raise ProofError("proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            current = node_hash(sibling, current)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the tree is deep")
    return current


def verify(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """True when the audit path proves ``leaf`` at ``index`` in the tree with this root."""
    try:
        return root_from_proof(leaf, index, size, path) == expected_root
    except ProofError:
        return False
