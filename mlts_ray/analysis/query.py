"""``mlts query``: the anchoring path of one trade, with both Merkle proofs, checked.

A cross-VPP trade sits in main block ``H`` (proof 1: trade in ``merkle_root``); each party's
VMC recorded it in a collaborative block whose ``type`` is ``H``; main block ``H + 1`` anchors
those collaborative blocks (proof 2: ``(index, hash, type)`` in ``anchor_root``). An intra-VPP
trade has only proof 1, in its side block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlts_ray.analysis.load import load_table, read_manifest
from mlts_ray.errors import ContentError
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.merkle import MerkleProof, merkle_proof, verify_proof
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.names import MAIN
from mlts_ray.mlts.anchoring import anchor_of, anchor_proof


class QueryError(ContentError):
    """The path of the trade is missing or does not check; ``subject`` names what."""


def _blocks(run_dir: Path) -> dict[tuple[str, int], Block]:
    df = load_table(run_dir, "blocks")
    return {(r.chain, int(r.height)): Block.decode(bytes(r.payload)) for r in df.itertuples()}


def _proof(leaves: list[bytes], leaf: bytes, root: bytes, what: str) -> MerkleProof:
    proof = merkle_proof(leaves, leaves.index(leaf))
    if not verify_proof(leaf, proof, root):
        raise QueryError(what, "Merkle proof does not verify")
    return proof


def query_trade(run_dir: str | Path, tx_id: str) -> dict[str, Any]:
    """The checked path of ``tx_id`` as a plain dict (printable as JSON)."""
    run_dir = Path(run_dir)
    read_manifest(run_dir)
    trades = load_table(run_dir, "trades")
    rows = trades[trades.tx_id == tx_id]
    if rows.empty:
        raise QueryError(f"trade {tx_id}", "no such trade in this run")
    row = rows.iloc[0]
    if pd.isna(row["height"]):
        raise QueryError(f"trade {tx_id}", f"is in no block (status {row['status']}: {row['reason']})")
    blocks = _blocks(run_dir)
    st = SignedTrade.decode(bytes(row["payload"]))
    height = int(row["height"])
    home = blocks.get((st.trade.chain, height))
    if home is None:
        raise QueryError(f"block {st.trade.chain}@{height}", "missing from the run")
    leaf = st.encode()
    if leaf not in home.txs:
        raise QueryError(f"trade {tx_id}", f"not in block {home.ref}")
    path: dict[str, Any] = {
        "tx_id": tx_id, "status": row["status"], "cross": st.trade.cross,
        "block": _describe(home),
        "trade_proof": _proof(list(home.txs), leaf, home.header.merkle_root, home.ref).to_dict(),
    }
    if st.trade.cross:
        path["anchoring"] = [
            _anchoring(blocks, vpp, height, st) for vpp in (st.trade.buyer_vpp, st.trade.seller_vpp)
        ]
    return path


def _anchoring(blocks: dict[tuple[str, int], Block], vpp: str, main_height: int, st: SignedTrade) -> dict[str, Any]:
    collab = next(
        (b for (chain, _), b in sorted(blocks.items())
         if chain == vpp and b.header.kind == BlockKind.COLLABORATIVE
         and b.header.type == main_height and st.trade.id_bytes in b.txs),
        None,
    )
    if collab is None:
        raise QueryError(f"trade {st.tx_id}",
                         f"{vpp} has no collaborative block for main height {main_height}")
    anchoring = blocks.get((MAIN, main_height + 1))
    if anchoring is None:
        raise QueryError(
            f"collaborative block {collab.ref}",
            f"not anchored yet: main block {main_height + 1} is not in the run",
        )
    siblings = [b for b in blocks.values()
                if b.header.kind == BlockKind.COLLABORATIVE and b.header.type == main_height]
    anchors = [anchor_of(b) for b in siblings]
    proof = anchor_proof(anchors, collab.header.chain, collab.header.height)
    if not verify_proof(collab.anchor_leaf(), proof, anchoring.header.anchor_root):
        raise QueryError(f"collaborative block {collab.ref}",
                         f"anchor proof does not verify against {anchoring.ref}")
    return {
        "side_chain": vpp,
        "collaborative_block": _describe(collab),
        "anchored_by": _describe(anchoring),
        "anchor_proof": proof.to_dict(),
    }


def _describe(block: Block) -> dict[str, Any]:
    h = block.header
    return {
        "chain": h.chain, "height": h.height, "kind": h.kind.label, "hash": block.hash.hex(),
        "merkle_root": h.merkle_root.hex(), "anchor_root": h.anchor_root.hex(),
        "index": h.index, "type": h.type,
    }
