"""RFC 6962 Merkle trees: published vectors, a naive recursive oracle, and tamper properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conftest import load_vectors
from mlts_ray.errors import LedgerError
from mlts_ray.ledger.merkle import (
    MerkleProof,
    merkle_proof,
    merkle_proofs,
    merkle_root,
    verify_proof,
)

VEC = load_vectors("rfc6962_merkle.json")
LEAVES = [bytes.fromhex(x) for x in VEC["leaves_hex"]]


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def oracle_root(d: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1 (recursive split at the largest power of 2 < n)."""
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return _h(b"\x01" + oracle_root(d[:k]) + oracle_root(d[k:]))


def oracle_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 6962 section 2.1.1."""
    n = len(d)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return oracle_path(m, d[:k]) + [oracle_root(d[k:])]
    return oracle_path(m - k, d[k:]) + [oracle_root(d[:k])]


@pytest.mark.parametrize("n", range(9))
def test_rfc6962_vectors(n):
    assert merkle_root(LEAVES[:n]).hex() == VEC["roots_by_size"][str(n)]


leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=40)


@given(leaf_lists)
def test_root_and_path_match_the_rfc_oracle(leaves):
    assert merkle_root(leaves) == oracle_root(leaves)
    for i in range(len(leaves)):
        assert list(merkle_proof(leaves, i).path) == oracle_path(i, leaves)


@given(st.lists(st.binary(max_size=12), min_size=1, max_size=40, unique=True), st.data())
def test_every_proof_verifies_and_any_change_fails(leaves, data):
    # Distinct leaves: with two equal leaves, claiming one's proof at the other's index is right.
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    assert verify_proof(leaves[i], proof, root)
    # changed leaf
    other = data.draw(st.binary(max_size=12))
    assume(other != leaves[i])
    assert not verify_proof(other, proof, root)
    # changed root
    assert not verify_proof(leaves[i], proof, _h(root))
    # changed index (same leaf bytes, claimed elsewhere)
    j = data.draw(st.integers(0, len(leaves) - 1))
    if j != i:
        moved = MerkleProof(j, proof.size, proof.path)
        assert not verify_proof(leaves[i], moved, root)
    # (A changed tree size is not always caught: leaf 0 of [a, b, c] has the same path in a
    # 4-leaf tree. RFC 9162 binds the size only through the path; our blocks bind it in n_txs.)
    # changed, dropped or added sibling
    if proof.path:
        k = data.draw(st.integers(0, len(proof.path) - 1))
        bad = list(proof.path)
        bad[k] = _h(bad[k])
        assert not verify_proof(leaves[i], MerkleProof(i, proof.size, tuple(bad)), root)
        assert not verify_proof(leaves[i], MerkleProof(i, proof.size, proof.path[:-1]), root)
    assert not verify_proof(leaves[i], MerkleProof(i, proof.size, proof.path + (root,)), root)


@given(st.lists(st.binary(max_size=8), min_size=2, max_size=33))
def test_no_second_preimage_inner_nodes_as_leaves(leaves):
    # Present the level above the leaves as if it were the leaf data: the root must change.
    level = [_h(b"\x00" + x) for x in leaves]
    inner = [_h(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        inner.append(level[-1])
    assert merkle_root(inner) != merkle_root(leaves)
    # A leaf whose bytes are the concatenation of two child hashes is not that inner node.
    assert merkle_root([level[0] + level[1]]) != merkle_root(leaves[:2])


def test_no_duplicated_last_leaf_cve_2012_2459():
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a, b, c]) == _h(b"\x01" + merkle_root([a, b]) + _h(b"\x00" + c))


def test_empty_tree_and_bad_indices():
    assert merkle_root([]) == _h(b"")
    with pytest.raises(LedgerError, match="index 0 outside a tree of 0"):
        merkle_proof([], 0)
    with pytest.raises(LedgerError):
        merkle_proof([b"x"], 1)
    assert not verify_proof(b"x", MerkleProof(0, 0, ()), merkle_root([]))
    assert not verify_proof(b"x", "not a proof", merkle_root([b"x"]))  # type: ignore[arg-type]
    assert verify_proof(b"x", merkle_proof([b"x"], 0), merkle_root([b"x"]))


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_all_proofs_at_once_equal_one_proof_per_leaf(leaves):
    """The anchoring shortcut (one tree per main block) against the one-leaf oracle."""
    proofs = merkle_proofs(leaves)
    assert proofs == [merkle_proof(leaves, i) for i in range(len(leaves))]
    root = merkle_root(leaves)
    assert all(verify_proof(x, p, root) for x, p in zip(leaves, proofs, strict=True))
