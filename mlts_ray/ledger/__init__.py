"""Ledger layer: identities and signatures, canonical encoding, transactions, blocks, Merkle
trees, chain store and settlement. Pure Python over hashlib and libsodium; no ``ray``, no clock."""

from mlts_ray.ledger.block import Block, BlockHeader, BlockKind, anchor_leaf
from mlts_ray.ledger.chain import ChainStore
from mlts_ray.ledger.crypto import (
    Identity,
    KeyRing,
    SigKind,
    VerifyCache,
    signing_root,
    verify,
)
from mlts_ray.ledger.merkle import merkle_proof, merkle_root, verify_proof
from mlts_ray.ledger.settlement import Reject, Settlement
from mlts_ray.ledger.tx import Order, Side, SignedOrder, SignedTrade, Trade

__all__ = [
    "Block",
    "BlockHeader",
    "BlockKind",
    "ChainStore",
    "Identity",
    "KeyRing",
    "Order",
    "Reject",
    "Settlement",
    "Side",
    "SigKind",
    "SignedOrder",
    "SignedTrade",
    "Trade",
    "VerifyCache",
    "anchor_leaf",
    "merkle_proof",
    "merkle_root",
    "signing_root",
    "verify",
    "verify_proof",
]
