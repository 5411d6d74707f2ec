"""Ed25519 identities and domain-separated signing roots (RFC 8032, docs/architecture.md section 6)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from mlts_ray.errors import LedgerError
from mlts_ray.ledger.crypto import (
    Identity,
    KeyRing,
    SigKind,
    VerifyCache,
    signing_root,
    verify,
)

RFC8032 = load_vectors("rfc8032_ed25519.json")["vectors"]
names = st.text(min_size=1, max_size=20)
data = st.binary(max_size=200)
seeds = st.integers(min_value=0, max_value=2**64 - 1)


@pytest.mark.parametrize("vec", RFC8032, ids=lambda v: v["message"] or "empty")
def test_rfc8032_vectors_byte_for_byte(vec):
    ident = Identity("rfc", bytes.fromhex(vec["secret_key"]))
    msg, sig, pk = (bytes.fromhex(vec[k]) for k in ("message", "signature", "public_key"))
    assert ident.public_key_bytes == pk
    assert ident.sign(msg) == sig
    assert verify(pk, msg, sig)


@pytest.mark.parametrize("vec", RFC8032, ids=lambda v: v["message"] or "empty")
def test_rfc8032_any_one_byte_change_is_rejected(vec):
    msg, sig, pk = (bytes.fromhex(vec[k]) for k in ("message", "signature", "public_key"))
    for field in ("pk", "msg", "sig"):
        value = {"pk": pk, "msg": msg, "sig": sig}[field]
        for i in range(len(value)):
            changed = value[:i] + bytes((value[i] ^ 0x01,)) + value[i + 1 :]
            args = {"pk": pk, "msg": msg, "sig": sig, field: changed}
            assert not verify(args["pk"], args["msg"], args["sig"]), (field, i)
    assert not verify(pk, msg + b"\x00", sig)


def test_derive_is_deterministic_and_name_and_seed_separated():
    a = Identity.derive(7, "vpp-3/n-017")
    assert a.public_key_bytes == Identity.derive(7, "vpp-3/n-017").public_key_bytes
    assert a.public_key_bytes != Identity.derive(8, "vpp-3/n-017").public_key_bytes
    assert a.public_key_bytes != Identity.derive(7, "vpp-3/n-018").public_key_bytes
    # Pinned: keys must not change between versions, or stored runs stop verifying.
    expected = hashlib.sha256(b"MLTS-RAY/identity/v1\x00" + (7).to_bytes(8, "big") + b"vpp-3/n-017")
    assert a.public_key_bytes == Identity("x", expected.digest()).public_key_bytes


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7"])
def test_derive_rejects_bad_seed(seed):
    with pytest.raises(LedgerError, match="seed"):
        Identity.derive(seed, "n")


@given(seeds, names, data)
def test_signature_matches_an_independent_implementation(seed, name, msg):
    ident = Identity.derive(seed, name)
    sig = ident.sign(msg)
    Ed25519PublicKey.from_public_bytes(ident.public_key_bytes).verify(sig, msg)  # raises if bad
    assert verify(ident.public_key_bytes, msg, sig)


@given(names, names, data, data)
def test_signature_fails_for_another_key_or_changed_data(n1, n2, msg, other):
    a, b = Identity.derive(1, n1), Identity.derive(1, n1 + "'" + n2)
    sig = a.sign(msg)
    assert not verify(b.public_key_bytes, msg, sig)
    if other != msg:
        assert not verify(a.public_key_bytes, other, sig)


@given(data, st.sampled_from(SigKind), st.sampled_from(SigKind), names, names)
def test_same_bytes_under_another_domain_fail(msg, k1, k2, c1, c2):
    ident = Identity.derive(3, "vpp-0/vmc")
    keys = KeyRing.of([ident])
    sig = ident.sign_root(k1, c1, msg)
    assert keys.verify("vpp-0/vmc", k1, c1, msg, sig)
    if (k1, c1) != (k2, c2):
        assert signing_root(k1, c1, msg) != signing_root(k2, c2, msg)
        assert not keys.verify("vpp-0/vmc", k2, c2, msg, sig)
    assert not verify(ident.public_key_bytes, msg, sig)  # raw bytes are not the signed root


def test_signing_root_is_unambiguous_between_chain_and_data():
    # Without the length prefix, ("ab", b"c...") and ("a", b"bc...") could collide.
    assert signing_root(SigKind.PREPARE, "ab", b"c") != signing_root(SigKind.PREPARE, "a", b"bc")


@given(st.one_of(st.binary(), st.none(), st.integers(), st.text()),
       st.one_of(st.binary(), st.none(), st.text()),
       st.one_of(st.binary(), st.none(), st.integers()))
def test_verify_never_raises(pk, msg, sig):
    assert verify(pk, msg, sig) in (True, False)


def test_verify_cache_gives_verify_answers_and_counts_hits():
    cache = VerifyCache(max_entries=3)
    ident = Identity.derive(0, "a")
    good = ident.sign(b"m")
    cases = [(ident.public_key_bytes, b"m", good), (ident.public_key_bytes, b"n", good)]
    for _ in range(3):
        for case in cases:
            assert cache.verify(*case) == verify(*case)
    assert (cache.hits, cache.misses) == (4, 2)
    for i in range(5):  # overflow: starts afresh, answers unchanged
        assert cache.verify(ident.public_key_bytes, bytes([i]), good) is False
    assert len(cache) <= 3
    assert cache.verify(*cases[0]) is True


def test_keyring_unknown_name():
    keys = KeyRing.of([Identity.derive(0, "a")])
    assert not keys.verify("ghost", SigKind.ORDER, "vpp-0", b"x", bytes(64))
    with pytest.raises(LedgerError, match="ghost"):
        keys.public_key("ghost")


def test_keyring_uses_the_process_cache_even_when_it_starts_empty():
    # Regression: an empty VerifyCache is falsy (it has __len__); it must still be used.
    cache = VerifyCache()
    ident = Identity.derive(0, "a")
    keys = KeyRing.of([ident])
    sig = ident.sign_root(SigKind.COMMIT, "vpp-0", b"x")
    for _ in range(3):
        assert keys.verify("a", SigKind.COMMIT, "vpp-0", b"x", sig, cache=cache)
    assert (cache.misses, cache.hits) == (1, 2)
