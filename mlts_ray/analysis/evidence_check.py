"""``mlts verify``: every proof on the chain convicts someone, and its offender is banned.

A block carries a record of each earlier round since its chain's last block that failed,
changed view or convicted someone (``consensus.conduct.RoundRecord``); a record holds the
proofs of misbehaviour first seen in its round. Each proof must decode, be about its own
chain, and convict by ``consensus.evidence.offender`` alone -- an invalid
proposal judged against the instance it claims (rebuilt from the block committed at that
height and round, and that round's recomputed committee). Its offender must be banned in the
``credits`` table of the record's round: a ban follows from the proof, and the proof is on the
chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from mlts_ray.analysis.committees import chains
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.config import Config
from mlts_ray.analysis.certificates import records_of
from mlts_ray.consensus.evidence import InvalidProposal, decode_proof, offender
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.mlts.consensus_round import build_instance


def check_evidence(cfg: Config, made: Mapping[tuple[str, int], Block], credits: pd.DataFrame,
                   committees: Mapping[tuple[str, int], tuple], keys: KeyRing) -> int:
    """Check every proof in the blocks' round records; returns how many there were."""
    status = {(c, int(r), n): s for c, r, n, s in zip(
        credits["chain"], credits["round"], credits["node"], credits["status"], strict=True)}
    names = {chain: nodes for chain, nodes, _, _ in chains(cfg)}
    by_height = {(b.header.chain, b.header.height): b for b in made.values()}
    checked = 0
    for (chain, rnd), block in sorted(made.items()):
        for i, record in enumerate(records_of(block)):
            for j, raw in enumerate(record.proofs):
                subject = f"block {block.ref} record {i} proof {j}"
                try:
                    proof = decode_proof(raw)
                except MltsError as err:
                    raise VerifyError(subject, f"does not decode: {err.why}") from None
                inst = None
                if isinstance(proof, InvalidProposal):
                    inst = _instance_of(cfg, proof, by_height, names, committees, keys)
                who = offender(proof, keys, inst)
                if who is None or _chain_of(proof) != chain:
                    raise VerifyError(subject, f"the {proof.kind} proof convicts nobody on {chain}")
                if status.get((chain, record.round, who)) != "banned":
                    raise VerifyError(subject, f"convicts {who}, who is not banned in credits "
                                      f"round {record.round}")
                checked += 1
    return checked


def _chain_of(proof) -> str:
    return (proof.vote if isinstance(proof, InvalidProposal) else proof.a).chain


def _instance_of(cfg, proof: InvalidProposal, by_height, names, committees, keys):
    """The instance the proposal claims: the committed block at its chain and height (the same
    header every valid proposal there must have) and that round's committee."""
    v = proof.vote
    committed = by_height.get((v.chain, v.height))
    if committed is None or committed.header.kind == BlockKind.COLLABORATIVE:
        return None
    h = committed.header
    members = committees.get((v.chain, h.round))
    if not members:
        return None
    inst = build_instance(cfg, v.chain, h.height, h.round, h.kind, h.prev_hash, h.anchor_root,
                          names[v.chain], members, members[0], keys, certify=False,
                          credit_root=h.credit_root, evidence=committed.evidence)
    return dataclasses.replace(inst, last_commit=h.last_commit)
