"""``mlts verify``: what every consensus block commits to -- its own commit certificate (stored
beside it), the previous one (``last_commit``) and the chain's credit table (``credit_root``).

A side or main block is stored with the q signed commits that prove it (the ``certificate``
column); the next consensus block of its chain carries their hash as ``last_commit``. For every
block: the certificate decodes; every commit is a COMMIT for this chain, height and block hash,
all in one view, from distinct signers who sat on that round's committee (the ``credits``
table's ``in_committee``), with a valid signature; there are at least q of them for that
committee; and ``last_commit`` is the hash of the chain's previous certificate (zero for the
first). A collaborative block has neither. The first failure names ``block chain@height``.

``credit_root`` is the Merkle root over the chain's credit table (node, credit, status) as it
stood when the block's round began: the ``credits`` rows of the round before, or the initial
book in round 0. A changed row fails naming ``credits round r chain c``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import pandas as pd

from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.consensus.conduct import RoundRecord
from mlts_ray.consensus.credit import CreditBook, book_root, credit_root
from mlts_ray.consensus.instance import quorum
from mlts_ray.consensus.messages import commit_digest, decode_commits
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import ZERO_HASH, Block, BlockKind
from mlts_ray.ledger.crypto import KeyRing, SigKind

Committees = Mapping[tuple[str, int], frozenset[str]]


def committees_of(credits: pd.DataFrame) -> dict[tuple[str, int], frozenset[str]]:
    """(chain, round) -> the nodes that sat on that round's committee."""
    seated = credits[credits["in_committee"].fillna(False).astype(bool)]
    return {(chain, int(rnd)): frozenset(rows["node"])
            for (chain, rnd), rows in seated.groupby(["chain", "round"], sort=False)}


def check_certificates(blocks: pd.DataFrame, made: Mapping[tuple[str, int], Block],
                       committees: Committees, keys: KeyRing) -> dict[tuple[str, int], tuple]:
    """Check every stored block's certificate; returns the checked commits by (chain, round)."""
    checked: dict[tuple[str, int], tuple] = {}
    rows = blocks.sort_values(["chain", "height"])
    last: dict[str, bytes] = {}  # chain -> hash of its latest consensus certificate
    for chain, height, raw in zip(rows["chain"], rows["height"], rows["certificate"],
                                  strict=True):
        block = made[(chain, int(height))]
        subject = f"block {chain}@{height}"
        raw = b"" if raw is None or (isinstance(raw, float) and pd.isna(raw)) else bytes(raw)
        if block.header.kind == BlockKind.COLLABORATIVE:
            if raw:
                raise VerifyError(subject, "a collaborative block carries a certificate")
            continue
        if block.header.last_commit != last.get(chain, ZERO_HASH):
            raise VerifyError(subject, "last_commit is not the hash of the chain's previous "
                              "certificate")
        committee = committees.get((chain, block.header.round), frozenset())
        commits = _decode(raw, subject)
        _check(block, commits, committee, keys, subject)
        checked[(chain, block.header.round)] = commits
        last[chain] = commit_digest(commits)
    return checked


def _decode(raw: bytes, subject: str):
    if not raw:
        raise VerifyError(subject, "certificate is missing")
    try:
        return decode_commits(raw)
    except MltsError as err:
        raise VerifyError(subject, f"certificate does not decode: {err.why}") from None


def _check(block: Block, commits, committee: frozenset[str], keys: KeyRing, subject: str) -> None:
    h = block.header
    if not committee:
        raise VerifyError(subject, f"no committee is recorded for {h.chain} round {h.round}")
    views = {v.view for v in commits}
    if len(views) > 1:
        raise VerifyError(subject, f"certificate mixes views {sorted(views)}")
    signers: set[str] = set()
    for vote in commits:
        if vote.kind != SigKind.COMMIT:
            raise VerifyError(subject, f"certificate holds a {vote.phase} by {vote.sender}")
        if (vote.chain, vote.height, vote.digest) != (h.chain, h.height, block.hash):
            raise VerifyError(subject, f"{vote.sender}'s commit is for another block")
        if vote.sender in signers:
            raise VerifyError(subject, f"{vote.sender} signs the certificate twice")
        if vote.sender not in committee:
            raise VerifyError(subject, f"signer {vote.sender} was not on round {h.round}'s "
                              "committee")
        if not vote.valid(keys):
            raise VerifyError(subject, f"bad commit signature by {vote.sender}")
        signers.add(vote.sender)
    q = quorum(len(committee))
    if len(signers) < q:
        raise VerifyError(subject, f"certificate has {len(signers)} commits, the committee of "
                          f"{len(committee)} needs {q}")


def check_credit_roots(cfg, made: Mapping[tuple[str, int], Block], credits: pd.DataFrame) -> int:
    """Every consensus block's ``credit_root`` against the ``credits`` table: the rows of its
    chain after the round before its own (the initial book for round 0). A changed credit
    value, status or node of the table fails, naming that table round."""
    tables = {key: rows for key, rows in credits.groupby(["chain", "round"], sort=False)}
    checked = 0
    for (chain, _), block in sorted(made.items()):
        h = block.header
        if h.kind == BlockKind.COLLABORATIVE:
            continue
        if h.round == 0:
            first = tables.get((chain, 0))
            names = [] if first is None else list(first["node"])
            want, where = book_root(CreditBook(cfg.credit, names), 0), f"block {h.ref}"
        else:
            rows = tables.get((chain, h.round - 1))
            if rows is None:
                raise VerifyError(f"credits round {h.round - 1}", f"no rows for {chain}, whose "
                                  f"block {h.ref} commits to them")
            want = credit_root(zip(rows["node"], rows["credit"], rows["trading_credit"],
                                 rows["status"], strict=True))
            where = f"credits round {h.round - 1} chain {chain}"
        if h.credit_root != want:
            raise VerifyError(where, f"the credit table does not hash to block {h.ref}'s "
                              "credit_root")
        checked += 1
    return checked


def records_of(block: Block) -> list[RoundRecord]:
    """The round records a consensus block carries, each about an earlier round of its own
    chain, in round order; VerifyError naming the block and record if one is not."""
    out = []
    for i, raw in enumerate(block.evidence):
        subject = f"block {block.ref} record {i}"
        try:
            record = _decoded(raw)
        except MltsError as err:
            raise VerifyError(subject, f"does not decode: {err.why}") from None
        if record.chain != block.header.chain or record.round >= block.header.round:
            raise VerifyError(subject, f"is about {record.chain} round {record.round}, not an "
                              f"earlier round of {block.header.chain}")
        if out and record.round <= out[-1].round:
            raise VerifyError(subject, "records are not in round order")
        out.append(record)
    return out


@lru_cache(maxsize=8192)
def _decoded(raw: bytes) -> RoundRecord:
    # Three checks read each block's records (proofs, committees, the credit replay): decoding
    # once gives them the same statement objects, whose signature checks are memoised.
    return RoundRecord.decode(raw)
