"""What binds a run's tables to its manifest: one digest record per round.

``digests/round-000042.json`` holds the SHA-256 of every table file of round 42 and the hash of
round 41's record, and the manifest holds the hash of the last record (``digest_head``). A file
changed, added to or dropped from any round changes its record's hash, every later one, and the
head -- so an edit that does not also rewrite the digest chain and the manifest is found, and
named by table and round. It does not stop someone who rewrites all three (nothing short of a
re-run does: ``mlts verify --replay``); it binds what no signature covers (latencies, message
counts, credit rows) to the same manifest that binds the config to the run id.

The manifest stays O(1) in the number of rounds: it is rewritten every round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

DIGESTS = "digests"
GENESIS = "0" * 64


def record_name(round_: int) -> str:
    return f"round-{round_:06d}.json"


def table_file(round_: int) -> str:
    """A table's file of round ``round_``: the one name the writer, verify and the loaders use."""
    return f"round-{round_:06d}.parquet"


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_record(round_: int, prev: str, files: Mapping[str, str]) -> bytes:
    """The canonical bytes of one round's record (sorted keys, no whitespace)."""
    body = {"round": round_, "prev": prev, "files": dict(sorted(files.items()))}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def record_hash(encoded: bytes) -> str:
    return hashlib.sha256(encoded).hexdigest()
