"""RFC 6962 Merkle tree: reference roots, proofs for 1, 2, 3 and 1,000 leaves, wrong proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceability import merkle
from traceability.errors import ProofError

# Inputs and roots of Certificate Transparency's reference Merkle tree tests (RFC 6962).
CT_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _reference_root(leaves: list[bytes]) -> bytes:
    """The recursive definition straight from RFC 6962 §2.1, independent of our levels."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    left, right = _reference_root(leaves[:k]), _reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_certificate_transparency_roots(n: int) -> None:
    assert merkle.root(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


def test_empty_tree() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_one_leaf_has_empty_proof() -> None:
    leaves = [b"only"]
    assert merkle.proof(leaves, 0) == []
    assert merkle.verify(b"only", 0, 1, [], merkle.root(leaves))


def test_two_leaves() -> None:
    a, b = b"a", b"b"
    r = merkle.root([a, b])
    assert r == merkle.node_hash(merkle.leaf_hash(a), merkle.leaf_hash(b))
    assert merkle.proof([a, b], 0) == [merkle.leaf_hash(b)]
    assert merkle.verify(b, 1, 2, [merkle.leaf_hash(a)], r)


def test_three_leaves_no_duplicate_last_leaf() -> None:
    leaves = [b"a", b"b", b"c"]
    r = merkle.root(leaves)
    assert r == _reference_root(leaves)
    assert merkle.proof(leaves, 2) == [
        merkle.node_hash(merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"))
    ]
    # The Bitcoin trick would make [a, b, c] and [a, b, c, c] collide; RFC 6962 does not.
    assert merkle.root([*leaves, b"c"]) != r


def test_thousand_leaves_every_proof_verifies() -> None:
    leaves = [f"event-{i}".encode() for i in range(1000)]
    r, paths = merkle.proofs(leaves)
    assert r == _reference_root(leaves)
    for i in (0, 1, 511, 512, 998, 999):
        assert paths[i] == merkle.proof(leaves, i)
    assert merkle.proofs_for(leaves, [3, 999]) == {3: paths[3], 999: paths[999]}
    assert all(merkle.verify(leaf, i, 1000, paths[i], r) for i, leaf in enumerate(leaves))


def test_wrong_proofs_fail() -> None:
    leaves = [f"e{i}".encode() for i in range(13)]
    r, paths = merkle.proofs(leaves)
    assert not merkle.verify(b"tampered", 5, 13, paths[5], r)
    assert not merkle.verify(leaves[5], 6, 13, paths[5], r)
    assert not merkle.verify(leaves[5], 5, 8, paths[5], r)  # another tree shape
    assert not merkle.verify(leaves[5], 5, 13, paths[5][:-1], r)
    assert not merkle.verify(leaves[5], 5, 13, [*paths[5], bytes(32)], r)
    assert not merkle.verify(leaves[5], 5, 13, list(reversed(paths[5])), r)
    with pytest.raises(ProofError):
        merkle.root_from_proof(leaves[5], 13, 13, paths[5])
    with pytest.raises(ProofError):
        merkle.root_from_proof(leaves[5], 5, 13, [b"short"])
    with pytest.raises(ProofError):
        merkle.proof(leaves, 13)


@settings(max_examples=200, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=40), min_size=1, max_size=70),
    data=st.data(),
)
def test_property_proofs_verify_and_any_flip_breaks_them(
    leaves: list[bytes], data: st.DataObject
) -> None:
    r, paths = merkle.proofs(leaves)
    assert r == _reference_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = paths[index]
    assert merkle.verify(leaves[index], index, len(leaves), path, r)
    if path:
        which = data.draw(st.integers(0, len(path) - 1))
        bit = data.draw(st.integers(0, 255))
        broken = list(path)
        broken[which] = bytes([broken[which][0] ^ (1 << (bit % 8))]) + broken[which][1:]
        assert not merkle.verify(leaves[index], index, len(leaves), broken, r)
    other = data.draw(st.binary(max_size=40).filter(lambda b: b != leaves[index]))
    assert not merkle.verify(other, index, len(leaves), path, r)
