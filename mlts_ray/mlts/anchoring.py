"""Collaborative blocks and anchoring (docs/architecture.md section 4).

When main block ``H`` commits, the VMC of every VPP that is party to one of its trades appends
a *collaborative block* to its side chain (outside consensus, signed by the VMC): header
``index`` = the side chain's number, ``type`` = ``H``, body = the ids of those trades. Main block
``H + 1`` then carries ``anchor_root`` = the Merkle root over ``(index, hash, type)`` of every
collaborative block made for ``H``, in ``index`` order -- so anyone can walk from a trade to its
side chain and back to the main chain with two Merkle proofs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlts_ray.ledger.block import Block, BlockKind, side_chain_index
from mlts_ray.ledger.chain import ChainStore
from mlts_ray.ledger.crypto import Identity
from mlts_ray.ledger.merkle import MerkleProof, merkle_proof, merkle_proofs, merkle_root


@dataclass(frozen=True, slots=True)
class Anchor:
    """One collaborative block as the anchoring main block sees it."""

    chain: str
    height: int
    block_hash: bytes
    main_type: int  # the main height it records
    leaf: bytes


def collaborative_block(
    vmc: Identity, store: ChainStore, round_: int, main_height: int, trade_ids: Sequence[bytes]
) -> Block:
    """The VMC's collaborative block for the trades of main block ``main_height`` that touch
    its VPP (their ids, in the main block's order); appended to ``store`` (checked like any
    block)."""
    block = Block.create(
        vmc, chain=store.chain, height=store.next_height, kind=BlockKind.COLLABORATIVE,
        round=round_, prev_hash=store.tip_hash, txs=list(trade_ids),
        index=side_chain_index(store.chain), type=main_height,
    )
    store.append(block)
    return block


def anchor_of(block: Block) -> Anchor:
    h = block.header
    return Anchor(h.chain, h.height, block.hash, h.type, block.anchor_leaf())


def ordered(anchors: Sequence[Anchor]) -> list[Anchor]:
    """The one order the anchor root is computed in: by side chain number, then height."""
    return sorted(anchors, key=lambda a: (side_chain_index(a.chain), a.height))


def anchor_root(anchors: Sequence[Anchor]) -> bytes:
    return merkle_root([a.leaf for a in ordered(anchors)])


def anchor_proof(anchors: Sequence[Anchor], chain: str, height: int) -> MerkleProof:
    leaves = ordered(anchors)
    index = next(i for i, a in enumerate(leaves) if (a.chain, a.height) == (chain, height))
    return merkle_proof([a.leaf for a in leaves], index)


def anchor_proofs(anchors: Sequence[Anchor]) -> list[tuple[Anchor, MerkleProof]]:
    """Every anchor with its proof, in root order; the tree is built once per main block."""
    leaves = ordered(anchors)
    return list(zip(leaves, merkle_proofs([a.leaf for a in leaves]), strict=True))
