"""Blocks: a signed header plus a body of leaves committed to by the header's ``merkle_root``.

``hash = sha256(header.encode())``; the proposer's signature covers the header's signing root
and is kept beside it (as Ethereum's ``SignedBeaconBlockHeader``). Body leaves are canonical
bytes: signed trades for side and main blocks, trade ids for collaborative blocks.

Header fields ``index`` and ``type`` carry meaning only on collaborative blocks (docs/architecture.md section 4):
``index`` is the side chain's number (``vpp-3`` -> 3) and ``type`` the main block's height.
On other blocks both are 0; ``anchor_root`` is set only on main blocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from mlts_ray.errors import ChainError, LedgerError
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing, SigKind
from mlts_ray.ledger.encoding import Reader, Writer
from mlts_ray.ledger.merkle import merkle_root
from mlts_ray.ledger.tx import TX_ID_BYTES, SignedTrade
from mlts_ray.names import MAIN

TAG_HEADER, TAG_BLOCK, TAG_ANCHOR_LEAF = 5, 6, 7
VERSION = 1
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)


class BlockKind(IntEnum):
    SIDE = 0
    COLLABORATIVE = 1
    MAIN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def side_chain_index(chain: str) -> int:
    """``vpp-7`` -> 7; the value a collaborative block's ``index`` field must hold."""
    prefix, _, number = chain.partition("-")
    if prefix != "vpp" or not number.isdigit():
        raise LedgerError(chain, "is not a side chain name (vpp-<number>)")
    return int(number)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain: str
    height: int
    kind: BlockKind
    round: int
    prev_hash: bytes
    merkle_root: bytes
    anchor_root: bytes
    index: int
    type: int
    n_txs: int
    proposer: str
    # Hash of the previous block's commit certificate (the q signed commits that prove it), as
    # Tendermint's LastCommit: the chain commits to the proof of its own history. Zero for the
    # first block and for collaborative blocks, which no consensus round makes.
    last_commit: bytes = ZERO_HASH
    # Merkle root over the chain's credit table as it stood when the round began (after the
    # chain's previous round): the chain commits to the credit every node selects committees
    # from. Zero for collaborative blocks.
    credit_root: bytes = ZERO_HASH
    # Merkle root over the round records the block carries (consensus.conduct.RoundRecord:
    # view changes, proofs, complaints and audits of the chain's rounds since its last block);
    # zero when it carries none.
    evidence_root: bytes = ZERO_HASH

    @property
    def ref(self) -> str:
        """How errors name this block: ``chain@height``."""
        return f"{self.chain}@{self.height}"

    def encode(self) -> bytes:
        w = Writer(TAG_HEADER, VERSION).text(self.chain).u64(self.height).u8(self.kind)
        w.u64(self.round)
        for h in (self.prev_hash, self.merkle_root, self.anchor_root, self.last_commit,
                  self.credit_root, self.evidence_root):
            w.fixed(h, HASH_SIZE)
        return w.u64(self.index).u64(self.type).u32(self.n_txs).text(self.proposer).value()

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        r = Reader(data, "block header", TAG_HEADER, VERSION)
        chain, height, kind = r.text(), r.u64(), r.u8()
        if kind not in BlockKind._value2member_map_:
            raise LedgerError(f"{chain}@{height}", f"unknown block kind {kind}")
        rnd = r.u64()
        prev, root, anchor, last_commit, credit, evidence = (r.fixed(HASH_SIZE) for _ in range(6))
        out = cls(chain, height, BlockKind(kind), rnd, prev, root, anchor, r.u64(), r.u64(),
                  r.u32(), r.text(), last_commit, credit, evidence)
        r.done()
        return out

    def hash(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()


def evidence_root(evidence: Sequence[bytes]) -> bytes:
    """Merkle root of a block's round records; zero for none."""
    return merkle_root(evidence) if evidence else ZERO_HASH


def anchor_leaf(index: int, block_hash: bytes, type_: int) -> bytes:
    """The anchoring leaf ``(index, hash, type)`` of one collaborative block."""
    return Writer(TAG_ANCHOR_LEAF, VERSION).u64(index).fixed(block_hash, HASH_SIZE).u64(type_).value()


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    signature: bytes
    txs: tuple[bytes, ...]
    evidence: tuple[bytes, ...] = ()  # round records (consensus.conduct.RoundRecord)

    @classmethod
    def create(
        cls,
        proposer: Identity,
        *,
        chain: str,
        height: int,
        kind: BlockKind,
        round: int,
        prev_hash: bytes,
        txs: Sequence[bytes],
        anchor_root: bytes = ZERO_HASH,
        index: int = 0,
        type: int = 0,
        last_commit: bytes = ZERO_HASH,
        credit_root: bytes = ZERO_HASH,
        evidence: Sequence[bytes] = (),
    ) -> Block:
        txs, evidence = tuple(txs), tuple(evidence)
        header = BlockHeader(
            chain, height, kind, round, prev_hash, merkle_root(txs), anchor_root,
            index, type, len(txs), proposer.name, last_commit, credit_root,
            evidence_root(evidence),
        )
        header.encode()  # fail here, naming the block, if a field is out of range
        return cls(header, proposer.sign_root(SigKind.BLOCK, chain, header.encode()), txs,
                   evidence)

    @property
    def hash(self) -> bytes:
        return self.header.hash()

    @property
    def ref(self) -> str:
        return self.header.ref

    def anchor_leaf(self) -> bytes:
        return anchor_leaf(self.header.index, self.hash, self.header.type)

    def encode(self) -> bytes:
        w = Writer(TAG_BLOCK, VERSION).blob(self.header.encode()).fixed(self.signature, SIGNATURE_SIZE)
        return w.items(self.txs, Writer.blob).items(self.evidence, Writer.blob).value()

    @classmethod
    def decode(cls, data: bytes) -> Block:
        r = Reader(data, "block", TAG_BLOCK, VERSION)
        header = BlockHeader.decode(r.blob())
        out = cls(header, r.fixed(SIGNATURE_SIZE), tuple(r.items(Reader.blob)),
                  tuple(r.items(Reader.blob)))
        r.done()
        return out

    def signed_trades(self, known: Iterable[SignedTrade] = ()) -> list[SignedTrade]:
        """The block's trades; a ``known`` trade with exactly a transaction's bytes stands for
        it (the same bytes decode to an equal trade), sparing the decode."""
        if self.header.kind == BlockKind.COLLABORATIVE:
            raise LedgerError(self.ref, "a collaborative block lists trade ids, not trades")
        by_bytes = {t.encode(): t for t in known}
        return [by_bytes.get(tx) or SignedTrade.decode(tx) for tx in self.txs]

    def check(self, keys: KeyRing | None = None) -> None:
        """Self-consistency: body vs ``merkle_root``, kind-specific fields, and (given the keys)
        the proposer's signature. Raises ChainError naming ``chain@height``."""
        h = self.header
        if h.n_txs != len(self.txs):
            raise ChainError(h.ref, f"header says {h.n_txs} txs, body has {len(self.txs)}")
        if merkle_root(self.txs) != h.merkle_root:
            raise ChainError(h.ref, "merkle_root does not match the body")
        if evidence_root(self.evidence) != h.evidence_root:
            raise ChainError(h.ref, "evidence_root does not match the evidence")
        self._check_kind_fields()
        if keys is not None and not keys.verify(
            h.proposer, SigKind.BLOCK, h.chain, h.encode(), self.signature
        ):
            raise ChainError(h.ref, f"bad block signature by proposer {h.proposer}")

    def _check_kind_fields(self) -> None:
        h = self.header
        if h.kind == BlockKind.MAIN:
            if h.chain != MAIN:
                raise ChainError(h.ref, f"a main block on chain {h.chain!r}")
        elif h.anchor_root != ZERO_HASH:
            raise ChainError(h.ref, f"anchor_root set on a {h.kind.label} block")
        if h.kind == BlockKind.COLLABORATIVE:
            if h.last_commit != ZERO_HASH or h.credit_root != ZERO_HASH or self.evidence:
                raise ChainError(h.ref, "last_commit, credit_root or evidence on a collaborative "
                                 "block")
            if h.index != side_chain_index(h.chain):
                raise ChainError(h.ref, f"index {h.index} is not this side chain's number")
            bad = [tx for tx in self.txs if len(tx) != TX_ID_BYTES]
            if bad:
                raise ChainError(h.ref, "collaborative body holds something other than trade ids")
        else:
            if h.kind == BlockKind.SIDE:
                side_chain_index(h.chain)
            if h.index or h.type:
                raise ChainError(h.ref, f"index/type set on a {h.kind.label} block")
