"""Merkle Tree Hash and inclusion proofs exactly as RFC 6962 section 2.1 (and RFC 9162 2.1.3).

Leaves are hashed as ``SHA-256(0x00 || data)`` and inner nodes as ``SHA-256(0x01 || l || r)``, so an
inner node can never pass for a leaf (no second preimage), and an unpaired node is carried up as
it is, never paired with a copy of itself (the duplicated-last-leaf mistake of CVE-2012-2459, which
gives ``[a, b, c]`` and ``[a, b, c, c]`` the same root).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from mlts_ray.errors import LedgerError

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    # Pairing bottom-up and carrying an odd last node up unchanged builds the same left-full
    # tree as RFC 6962's "split at the largest power of two below n" recursion.
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(leaves); ``SHA-256("")`` for no leaves."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(x) for x in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Inclusion proof of leaf ``index`` in a tree of ``size`` leaves; ``path`` leaf-to-root."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_dict(self) -> dict:
        return {"index": self.index, "size": self.size, "path": [p.hex() for p in self.path]}


def merkle_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    """The audit path PATH(index, leaves) of RFC 6962 section 2.1.1."""
    n = len(leaves)
    if not 0 <= index < n:
        raise LedgerError("merkle proof", f"leaf index {index} outside a tree of {n} leaves")
    level = [leaf_hash(x) for x in leaves]
    path: list[bytes] = []
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _next_level(level)
        i >>= 1
    return MerkleProof(index, n, tuple(path))


def merkle_proofs(leaves: Sequence[bytes]) -> list[MerkleProof]:
    """Every leaf's audit path, in leaf order: the tree is built once (n log n hashes), where
    ``merkle_proof`` for each leaf would rebuild it n times. Each path equals
    ``merkle_proof(leaves, i)``."""
    n = len(leaves)
    levels = [[leaf_hash(x) for x in leaves]]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    proofs = []
    for index in range(n):
        path, i = [], index
        for level in levels[:-1]:
            if i ^ 1 < len(level):
                path.append(level[i ^ 1])
            i >>= 1
        proofs.append(MerkleProof(index, n, tuple(path)))
    return proofs


def verify_proof(leaf: bytes, proof: MerkleProof, root: bytes) -> bool:
    """True iff ``leaf`` sits at ``proof.index`` of a ``proof.size``-leaf tree with ``root``.

    RFC 9162 section 2.1.3.2; never raises on malformed input.
    """
    try:
        index, size, path = int(proof.index), int(proof.size), proof.path
    except (AttributeError, TypeError, ValueError):
        return False
    if not 0 <= index < size or not isinstance(leaf, bytes):
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0 or not isinstance(p, bytes) or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
