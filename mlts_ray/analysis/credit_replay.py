"""``mlts verify``: every chain's credit trajectory, replayed from what the chain proves.

Credit is chain state: for each round, with the same code the simulation runs
(``consensus.conduct.conduct``, ``consensus.credit.judge_complaints`` and ``close_round``):

- the committee's conduct from the round's commit certificate (stored beside its block) and the
  round's record (carried by the chain's next block: signed view-change statements, proofs,
  complaints);
- bans from the record's proofs (``consensus.evidence.offender``), trade offences and abandoned
  orders from its upheld complaints, settled trades and overdrafts from the blocks (their
  settlement is recomputed by ``derived``), and who had a signature on the chain that round;
- the record's audits (signed claims by the chain's supervisors, staking ``audit_stake``), each
  judged: upheld exactly when the chain holds something against its target that round, moving
  exactly the credit ``consensus.audit`` says; the ``audits`` table must restate them.

The replayed table must equal the ``credits`` table -- consensus and trading score, change,
status and role of every node -- or verify fails naming ``credits round r chain c`` and the
node. A round whose record could still be pending (the chain's last block and after: the next
block would carry it) is not on the chain yet; the replay stops there and says how many rounds
it left unchecked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from mlts_ray.analysis.committees import chains
from mlts_ray.analysis.certificates import records_of
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.mlts.metering import MeterReport
from mlts_ray.config import Config
from mlts_ray.consensus.audit import AuditClaim, settle_audit
from mlts_ray.consensus.complaints import Complaint
from mlts_ray.consensus.conduct import RoundRecord, conduct
from mlts_ray.consensus.credit import (
    CreditBook,
    Role,
    RoundFacts,
    close_round,
    judge_complaints,
    misbehaved,
)
from mlts_ray.consensus.evidence import decode_proof, offender
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.ledger.settlement import overdrawn_by
from mlts_ray.names import MAIN
from mlts_ray.mlts.main_chain import grid_names, vmc_names
from mlts_ray.mlts.topology import credit_chain, vpp_layout

PLENTY = 2**61  # audits' money is checked by ``derived``; their credit does not depend on it


@dataclass(slots=True)
class CreditReplay:
    rows: int = 0  # credits rows re-derived
    unchecked_rounds: int = 0  # rounds at the end whose record is not on the chain yet


def check_credit_replay(cfg: Config, blocks: Mapping[tuple[str, int], Block],
                        certificates: Mapping[tuple[str, int], tuple],
                        committees: Mapping[tuple[str, int], tuple],
                        tables: Mapping[str, pd.DataFrame], keys: KeyRing) -> CreditReplay:
    """``blocks``: every block by (chain, height); ``certificates``/``committees``: the
    checked commits and recomputed committees by (chain, round)."""
    out = CreditReplay()
    trading = _trading_facts(cfg, tables["trades"])
    audits = {key: rows for key, rows in tables["audits"].groupby(["chain", "round"], sort=False)}
    credits = {key: rows for key, rows in tables["credits"].groupby(["chain", "round"], sort=False)}
    for chain, names, _, _ in chains(cfg):
        own = sorted((b for (c, _), b in blocks.items() if c == chain),
                     key=lambda b: b.header.height)
        made = {b.header.round: b for b in own if b.header.kind != BlockKind.COLLABORATIVE}
        records = {r.round: r for b in made.values() for r in records_of(b)}
        last = max(made, default=-1)  # rounds from here on may have records still pending
        book = CreditBook(cfg.credit, names)
        supervisors = _supervisors(cfg, chain)
        traders = frozenset() if chain == MAIN else frozenset(
            vpp_layout(cfg.topology, int(chain.partition("-")[2])).traders)
        rnd = 0
        while (chain, rnd) in credits:
            if rnd >= last:
                out.unchecked_rounds += 1
                rnd += 1
                continue
            members = committees[(chain, rnd)]
            record = records.get(rnd)
            if record is None and rnd not in made:
                raise VerifyError(f"block {chain} round {rnd}", "no block and no record of the "
                                  "round on the chain: its credit change has no source")
            facts = _facts(cfg, chain, names, supervisors, traders, members,
                           certificates.get((chain, rnd), ()), record, trading, rnd, keys)
            stakes = judge_complaints(facts, keys, cfg.credit.complaint_stake)
            held = _audits(cfg, chain, rnd, record, audits.get((chain, rnd)), book,
                           misbehaved(facts), supervisors, keys)
            moved = close_round(book, facts, stakes, held, rnd)
            _compare(chain, rnd, credits[(chain, rnd)], book, facts, moved)
            out.rows += len(names)
            rnd += 1
    return out


def _supervisors(cfg: Config, chain: str) -> frozenset[str]:
    if chain == MAIN:
        return frozenset(grid_names(cfg.topology))
    return frozenset(vpp_layout(cfg.topology, int(chain.partition("-")[2])).supervisors)


def _facts(cfg, chain, names, supervisors, traders, members, commits, record: RoundRecord | None,
           trading, rnd, keys) -> RoundFacts:
    roles = {n: Role.CONSENSUS if n in members else
             Role.SUPERVISORY if n in supervisors else Role.ORDINARY for n in names}
    # an offline trader was not due (its VMC's signed meter report says who was offline)
    away = (MeterReport.decode(record.metering).offline()
            if record is not None and record.metering else frozenset())
    facts = RoundFacts(roles=roles, conduct=conduct(members, commits, record, keys),
                       due=frozenset(members) | (traders - away))
    if facts.conduct.primary is not None:
        roles[facts.conduct.primary] = Role.PRIMARY
    if record is not None:
        facts.banned = {who for raw in record.proofs
                        if (who := offender(decode_proof(raw), keys)) is not None}
        facts.complaints = [Complaint.decode(raw) for raw in record.complaints]
    settled, active, offences = trading.get((chain, rnd), ({}, set(), {}))
    facts.settled, facts.active, facts.trade_offences = dict(settled), set(active), dict(offences)
    return facts


def _trading_facts(cfg: Config, trades: pd.DataFrame) -> dict:
    """(chain, round) -> (settled per party, parties in a block, overdrafts per party), each
    counted on the party's own chain, as settlement counts them."""
    main_names = {*vmc_names(cfg.topology), *grid_names(cfg.topology)}
    out: dict = defaultdict(lambda: (defaultdict(int), set(), defaultdict(int)))
    placed = trades[trades["height"].notna()]
    for rnd, status, reason, buyer, seller in zip(
            placed["round"], placed["status"], placed["reason"], placed["buyer"],
            placed["seller"], strict=True):
        for party in (buyer, seller):
            settled, active, offences = out[(credit_chain(party, main_names), int(rnd))]
            active.add(party)
            if status == "settled":
                settled[party] += 1
            elif party == overdrawn_by(reason, buyer, seller):
                offences[party] += 1
    return out


def _audits(cfg, chain, rnd, record: RoundRecord | None, rows, book: CreditBook,
            guilty: set[str], supervisors: frozenset[str], keys: KeyRing) -> list:
    """The round's audits as the chain records them (signed claims), each judged from the
    chain's facts; the ``audits`` table must restate them row for row."""
    claims = [AuditClaim.decode(raw) for raw in (record.audits if record else ())]
    stored = [] if rows is None else list(zip(rows["auditor"], rows["target"], rows["outcome"],
                                              rows["credit_moved"], strict=True))
    if len(stored) != len(claims):
        raise VerifyError(f"audits round {rnd} chain {chain}", (
            f"{len(stored)} rows, but the chain records {len(claims)} audits for the round"))
    out, credit = [], book.credits()
    for i, (claim, row) in enumerate(zip(claims, stored, strict=True)):
        where = f"record of {chain} round {rnd} audit {i}"
        if (claim.chain, claim.round) != (chain, rnd) or claim.auditor not in supervisors:
            raise VerifyError(where, f"is not an audit by a supervisor of {chain} in round {rnd}")
        if not claim.valid(keys):
            raise VerifyError(where, f"bad signature by {claim.auditor}")
        if claim.stake != cfg.credit.audit_stake or not book.usable(claim.auditor, rnd):
            raise VerifyError(where, f"{claim.auditor} may not stake {claim.stake} this round")
        audit = settle_audit(cfg.credit, claim.auditor, claim.target, claim.target in guilty,
                             credit, {claim.auditor: PLENTY, claim.target: PLENTY})
        want = (audit.auditor, audit.target, audit.outcome, audit.credit_moved)
        if tuple(row) != want:
            raise VerifyError(f"audits round {rnd} chain {chain} row {i}", (
                f"stored {row[0]} auditing {row[1]}: {row[2]} moving {row[3]} credit, but the "
                f"chain records {want[0]} auditing {want[1]}, which its facts make {want[2]} "
                f"moving {want[3]}"))
        out.append(audit)
    return out


def _compare(chain, rnd, rows: pd.DataFrame, book: CreditBook, facts: RoundFacts,
             moved: Mapping[str, float]) -> None:
    for node, credit, trading, delta, status, role in zip(
            rows["node"], rows["credit"], rows["trading_credit"], rows["delta"], rows["status"],
            rows["role"], strict=True):
        a = book.accounts.get(node)
        if a is None:
            raise VerifyError(f"credits round {rnd} chain {chain}", f"{node} is no node of it")
        want = {"credit": a.credit, "trading_credit": a.trading, "delta": moved[node],
                "status": str(book.status(node, rnd + 1)), "role": str(facts.roles[node])}
        got = {"credit": credit, "trading_credit": trading, "delta": delta, "status": status,
               "role": role}
        for column, value in want.items():
            if got[column] != value:
                raise VerifyError(f"credits round {rnd} chain {chain}", (
                    f"{node}'s {column} is {got[column]!r}, but the chain's blocks give "
                    f"{value!r}"))
