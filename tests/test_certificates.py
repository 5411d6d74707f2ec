"""Crafted certificates are refused without an exception (issue 14): the wrong kind of bytes
(a trade where the block belongs, after the same bytes were decoded as that trade), too few
signers, a non-member signer, a signer of another view, a duplicated signer, a vote of the
wrong kind, a bad signature -- and the real one is accepted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus_harness import make_instance, run_instance, trades_for
from mlts_ray.consensus.messages import Certificate, Vote
from mlts_ray.consensus.checks import _decoded_trade, check_certificate
from mlts_ray.ledger.crypto import SigKind
from mlts_ray.net.node import Ready


@pytest.fixture(scope="module")
def proven():
    inst = make_instance(10, members=range(4))
    run = run_instance(inst, trades_for(10), start_all=True)
    committed = next(iter(run.committed.values()))
    return inst, committed.proof


def _fresh(inst):
    return replace(inst)  # empty per-process caches, like another host


def _outsider_commit(inst, cert):
    from consensus_harness import identities

    outsider = identities(10)[7]  # an observer: not a member
    vote = cert.commits[0]
    return Vote(vote.kind, vote.chain, vote.height, vote.view, vote.digest,
                outsider.name).signed(outsider)


CASES = {
    "too few signers": lambda inst, c: Certificate(c.block, c.commits[:-1]),
    "no signers": lambda inst, c: Certificate(c.block, ()),
    "a duplicated signer": lambda inst, c: Certificate(c.block, (*c.commits[:-1], c.commits[0])),
    "another view": lambda inst, c: Certificate(
        c.block, (*c.commits[:-1], replace(c.commits[-1], view=c.commits[-1].view + 1))),
    "a prepare, not a commit": lambda inst, c: Certificate(
        c.block, (*c.commits[:-1], replace(c.commits[-1], kind=SigKind.PREPARE))),
    "a broken signature": lambda inst, c: Certificate(
        c.block, (*c.commits[:-1], replace(c.commits[-1], sig=bytes(64)))),
    "a non-member signer": lambda inst, c: Certificate(
        c.block, (*c.commits[:-1], _outsider_commit(inst, c))),
    "not a block at all": lambda inst, c: Certificate(b"\x00garbage", c.commits),
}


def test_the_real_certificate_proves_its_block(proven):
    inst, cert = proven
    done = check_certificate(_fresh(inst), cert, Ready())
    assert done is not None and done.block == cert.block and done.proof is cert


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crafted_certificate_is_refused(proven, case):
    inst, cert = proven
    assert check_certificate(_fresh(inst), CASES[case](inst, cert), Ready()) is None


def test_trade_bytes_in_the_block_field_are_refused_even_after_being_decoded_as_a_trade(proven):
    """This crashed an honest observer with AttributeError: the decode cache handed back the
    trade those bytes had been decoded as."""
    inst, cert = proven
    inst = _fresh(inst)
    raw = trades_for(10)[0]
    _decoded_trade(inst, raw)  # the observer checked this trade earlier
    assert check_certificate(inst, Certificate(raw, cert.commits), Ready()) is None
