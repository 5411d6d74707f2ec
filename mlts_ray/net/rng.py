"""Named, seeded random streams: one independent stream per ``(seed, purpose, *names)``.

A draw in one stream never shifts another, so adding randomness for one purpose (say, a new
fault) leaves every other draw of a run exactly as it was.
"""

from __future__ import annotations

import hashlib
import random


def stream_seed(seed: int, purpose: str, *names: object) -> int:
    text = "\x1f".join([purpose, *map(str, names)]).encode()
    return int.from_bytes(hashlib.sha256(seed.to_bytes(8, "big") + text).digest()[:8], "big")


def stream(seed: int, purpose: str, *names: object) -> random.Random:
    """A ``random.Random`` that only this ``(seed, purpose, names)`` ever draws from."""
    return random.Random(stream_seed(seed, purpose, *names))


def tie_break(seed: int, round_: int, node: str) -> bytes:
    """``sha256(seed, round, node_id)``: the deterministic tie-break of docs/architecture.md section 5."""
    return hashlib.sha256(
        seed.to_bytes(8, "big") + round_.to_bytes(8, "big") + node.encode()
    ).digest()
