"""Append-only chain store: one chain's blocks, checked on the way in, found by height or hash."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from mlts_ray.errors import ChainError
from mlts_ray.ledger.block import ZERO_HASH, Block
from mlts_ray.ledger.crypto import KeyRing


class ChainStore:
    """Blocks of one chain, heights 0, 1, 2, ... each linked to the previous block's hash.

    Given ``keys``, every appended block's proposer signature is checked too. With ``keep``,
    only the newest ``keep`` blocks stay in memory (a simulation streams every block to disk and
    needs only the tip to extend the chain, so its memory stays flat over rounds).
    """

    __slots__ = ("chain", "keys", "_blocks", "_by_hash", "_next", "_tip")

    def __init__(self, chain: str, keys: KeyRing | None = None, keep: int | None = None) -> None:
        self.chain = chain
        self.keys = keys
        self._blocks: deque[Block] = deque(maxlen=keep)
        self._by_hash: dict[bytes, int] = {}
        self._next = 0
        self._tip = ZERO_HASH

    @property
    def height(self) -> int:
        """Height of the tip; -1 for an empty chain."""
        return self._next - 1

    @property
    def tip_hash(self) -> bytes:
        return self._tip

    @property
    def next_height(self) -> int:
        return self._next

    def append(self, block: Block) -> bytes:
        """Add ``block`` as the new tip and return its hash; nothing changes on error."""
        h = block.header
        if h.chain != self.chain:
            raise ChainError(h.ref, f"belongs to chain {h.chain!r}, not {self.chain!r}")
        if h.height != self._next:
            raise ChainError(h.ref, f"height {h.height} where {self._next} is next")
        if h.prev_hash != self._tip:
            raise ChainError(h.ref, "prev_hash does not link to the tip")
        block.check(self.keys)
        block_hash = block.hash
        if self._blocks.maxlen is not None and len(self._blocks) == self._blocks.maxlen:
            del self._by_hash[self._blocks[0].hash]
        self._blocks.append(block)
        self._by_hash[block_hash] = h.height
        self._next, self._tip = h.height + 1, block_hash
        return block_hash

    @property
    def _first(self) -> int:
        return self._next - len(self._blocks)

    def by_height(self, height: int) -> Block:
        if not self._first <= height < self._next:
            why = "no block at this height" if not 0 <= height < self._next else "no longer in memory"
            raise ChainError(f"{self.chain}@{height}", why)
        return self._blocks[height - self._first]

    def by_hash(self, block_hash: bytes) -> Block:
        height = self._by_hash.get(block_hash)
        if height is None:
            raise ChainError(self.chain, f"no block with hash {block_hash.hex()}")
        return self.by_height(height)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._by_hash

    def __len__(self) -> int:
        """Blocks in the chain (in memory or not)."""
        return self._next

    def __iter__(self) -> Iterator[Block]:
        """The blocks still in memory, oldest first."""
        return iter(self._blocks)
