"""Append-only chain store: one chain's blocks, checked on the way in, found by height or hash."""

from __future__ import annotations

from collections.abc import Iterator

from mlts_ray.errors import ChainError
from mlts_ray.ledger.block import ZERO_HASH, Block
from mlts_ray.ledger.crypto import KeyRing


class ChainStore:
    """Blocks of one chain, heights 0, 1, 2, ... each linked to the previous block's hash.

    Given ``keys``, every appended block's proposer signature is checked too.
    """

    __slots__ = ("chain", "keys", "_blocks", "_by_hash")

    def __init__(self, chain: str, keys: KeyRing | None = None) -> None:
        self.chain = chain
        self.keys = keys
        self._blocks: list[Block] = []
        self._by_hash: dict[bytes, int] = {}

    @property
    def height(self) -> int:
        """Height of the tip; -1 for an empty chain."""
        return len(self._blocks) - 1

    @property
    def tip_hash(self) -> bytes:
        return self._blocks[-1].hash if self._blocks else ZERO_HASH

    @property
    def next_height(self) -> int:
        return len(self._blocks)

    def append(self, block: Block) -> bytes:
        """Add ``block`` as the new tip and return its hash; nothing changes on error."""
        h = block.header
        if h.chain != self.chain:
            raise ChainError(h.ref, f"belongs to chain {h.chain!r}, not {self.chain!r}")
        if h.height != self.next_height:
            raise ChainError(h.ref, f"height {h.height} where {self.next_height} is next")
        if h.prev_hash != self.tip_hash:
            raise ChainError(h.ref, "prev_hash does not link to the tip")
        block.check(self.keys)
        block_hash = block.hash
        self._blocks.append(block)
        self._by_hash[block_hash] = h.height
        return block_hash

    def by_height(self, height: int) -> Block:
        if not 0 <= height < len(self._blocks):
            raise ChainError(f"{self.chain}@{height}", "no block at this height")
        return self._blocks[height]

    def by_hash(self, block_hash: bytes) -> Block:
        height = self._by_hash.get(block_hash)
        if height is None:
            raise ChainError(self.chain, f"no block with hash {block_hash.hex()}")
        return self._blocks[height]

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._by_hash

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(self._blocks)
