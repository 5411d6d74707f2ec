"""Identities and Ed25519 signatures (RFC 8032) with domain-separated signing roots.

Everything the protocol signs is first reduced to a *signing root* (as in the Ethereum consensus
specs): ``sha256(DOMAIN || len(chain) || chain || kind || canonical bytes)``. A vote signed on one
chain or as one kind of message therefore never verifies on another chain or as another kind.

Backend: libsodium through PyNaCl. Ed25519 is deterministic, so any RFC 8032 implementation gives
the same bytes (the tests cross-check with ``cryptography``); libsodium measured faster here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from enum import IntEnum

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError as _CryptoError

from mlts_ray.errors import LedgerError

DOMAIN = b"MLTS-RAY/v1\x00"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_IDENTITY_DOMAIN = b"MLTS-RAY/identity/v1\x00"

#: Process-wide counts of real Ed25519 operations (the benchmark's crypto floor); they never
#: influence results.
COUNTS = {"signs": 0, "verifies": 0}


class SigKind(IntEnum):
    """What a signature is for; part of every signing root (never reuse or renumber a value)."""

    ORDER = 1
    TRADE = 2
    BLOCK = 3
    REQUEST = 10
    PRE_PREPARE = 11
    PREPARE = 12
    COMMIT = 13
    REPLY = 14
    VIEW_CHANGE = 15
    NEW_VIEW = 16
    AUDIT = 20
    COMPLAINT = 21
    METER = 22


def signing_root(kind: SigKind, chain: str, data: bytes) -> bytes:
    """The 32 bytes actually signed for ``data`` of ``kind`` on ``chain``."""
    chain_b = chain.encode()
    if len(chain_b) > 255:
        raise LedgerError("chain", f"name longer than 255 bytes: {chain[:40]!r}...")
    return hashlib.sha256(
        DOMAIN + bytes((len(chain_b),)) + chain_b + bytes((int(kind),)) + data
    ).digest()


class Identity:
    """A named Ed25519 key pair. Secret keys never leave this object."""

    __slots__ = ("name", "public_key_bytes", "_secret")

    def __init__(self, name: str, secret_seed: bytes) -> None:
        if not isinstance(secret_seed, bytes) or len(secret_seed) != 32:
            raise LedgerError(f"identity {name}", "secret seed must be 32 bytes")
        public, secret = _sodium.crypto_sign_seed_keypair(secret_seed)
        self.name = name
        self.public_key_bytes: bytes = public
        self._secret = secret

    @classmethod
    def derive(cls, seed: int, name: str) -> Identity:
        """The same key for the same ``(seed, name)``, on every machine and run."""
        if not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise LedgerError("seed", f"must be an integer in [0, 2**64), got {seed!r}")
        secret = hashlib.sha256(_IDENTITY_DOMAIN + seed.to_bytes(8, "big") + name.encode()).digest()
        return cls(name, secret)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data`` (raw bytes, no domain added)."""
        COUNTS["signs"] += 1
        return _sodium.crypto_sign(data, self._secret)[:SIGNATURE_SIZE]

    def sign_root(self, kind: SigKind, chain: str, data: bytes) -> bytes:
        """Sign the domain-separated signing root of ``data``."""
        return self.sign(signing_root(kind, chain, data))

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, {self.public_key_bytes.hex()[:16]}...)"


def verify(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``data``; False for any bad input."""
    if not (
        isinstance(public_key, bytes)
        and isinstance(data, bytes)
        and isinstance(signature, bytes)
        and len(public_key) == PUBLIC_KEY_SIZE
        and len(signature) == SIGNATURE_SIZE
    ):
        return False
    COUNTS["verifies"] += 1
    try:
        _sodium.crypto_sign_open(signature + data, public_key)
    except (_CryptoError, ValueError, TypeError):
        return False
    return True


class VerifyCache:
    """Remembers the answer for ``(public key, data, signature)`` triples already checked.

    It returns exactly what :func:`verify` would, so results never depend on it; it only saves
    repeating the same check when many receivers get one signed message in one process. Bounded:
    when full it starts afresh (answers stay the same, only the saving is lost).
    """

    __slots__ = ("_seen", "max_entries", "hits", "misses")

    def __init__(self, max_entries: int = 1 << 17) -> None:  # ~45 MB when full
        self._seen: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        key = (public_key, data, signature)
        answer = self._seen.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.misses += 1
        answer = verify(public_key, data, signature)
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        self._seen[key] = answer
        return answer

    def __len__(self) -> int:
        return len(self._seen)

    def clear(self) -> None:
        self._seen.clear()
        self.hits = self.misses = 0

    def swap(self, seen: dict[tuple[bytes, bytes, bytes], bool]) -> dict:
        """Remember ``seen`` instead; returns what was remembered (the bench runs one config
        several ways in one process, each with a memory of its own)."""
        old, self._seen = self._seen, seen
        return old


#: The process-wide cache docs/architecture.md section 6 allows.
VERIFY_CACHE = VerifyCache()


class KeyRing(Mapping[str, bytes]):
    """Public keys by node name: what every node knows about every other node."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, bytes] | None = None) -> None:
        self._keys: dict[str, bytes] = dict(keys or {})

    @classmethod
    def of(cls, identities: Iterable[Identity]) -> KeyRing:
        return cls({i.name: i.public_key_bytes for i in identities})

    def add(self, name: str, public_key: bytes) -> None:
        self._keys[name] = public_key

    def public_key(self, name: str) -> bytes:
        try:
            return self._keys[name]
        except KeyError:
            raise LedgerError(name, "unknown node (no public key)") from None

    def verify(
        self,
        name: str,
        kind: SigKind,
        chain: str,
        data: bytes,
        signature: bytes,
        cache: VerifyCache | None = VERIFY_CACHE,
    ) -> bool:
        """Did ``name`` sign ``data`` as ``kind`` on ``chain``? False for unknown names too."""
        return self.verify_root(name, signing_root(kind, chain, data), signature, cache)

    def verify_root(
        self, name: str, root: bytes, signature: bytes, cache: VerifyCache | None = VERIFY_CACHE
    ) -> bool:
        """Did ``name`` sign this signing root (already computed by the caller)?"""
        key = self._keys.get(name)
        if key is None:
            return False
        return cache.verify(key, root, signature) if cache is not None else verify(key, root, signature)

    def __getitem__(self, name: str) -> bytes:
        return self._keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class DerivedKeyRing(KeyRing):
    """Every node's public key -- and, for a process that runs nodes, its identity -- derived
    on first use from ``(seed, name)`` (docs/architecture.md section 3): what a verifier or a remote process
    can rebuild without being sent any key."""

    __slots__ = ("seed", "_identities")

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self._identities: dict[str, Identity] = {}

    def identity(self, name: str) -> Identity:
        me = self._identities.get(name)
        if me is None:
            me = self._identities[name] = Identity.derive(self.seed, name)
            self._keys[name] = me.public_key_bytes
        return me

    def _get(self, name: str) -> bytes:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = Identity.derive(self.seed, name).public_key_bytes
        return key

    def public_key(self, name: str) -> bytes:
        return self._get(name)

    def verify_root(
        self, name: str, root: bytes, signature: bytes, cache: VerifyCache | None = VERIFY_CACHE
    ) -> bool:
        self._get(name)
        return super().verify_root(name, root, signature, cache)

    def __getitem__(self, name: str) -> bytes:
        return self._get(name)
