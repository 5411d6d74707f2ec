"""What side chains and the main chain share: per-round committee selection, one consensus
instance, committing the block, settling its trades, the round's record for the next block
(view changes, proofs, complaints, audits) and the credit update from what the chain proves,
each reported as facts (``mlts.report``).

A subclass says who the chain's nodes are (``names``), who may sit on its committee
(``candidates``), who supervises (``supervisors``), who is the client, what kind of block it
makes and whether its links are inter-VPP.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator, Mapping

from mlts_ray.config import Config
from mlts_ray.consensus.audit import Audit, AuditClaim, settle_audit
from mlts_ray.consensus.byzantine import Crash
from mlts_ray.consensus.committee import SELECTORS, Committee
from mlts_ray.consensus.complaints import file
from mlts_ray.consensus.conduct import RoundRecord, minimal, round_record
from mlts_ray.consensus.credit import (
    CreditBook,
    Role,
    RoundFacts,
    book_root,
    close_round,
    judge_complaints,
    misbehaved,
)
from mlts_ray.consensus.messages import commit_digest, encode_commits
from mlts_ray.errors import ChainError, RunError
from mlts_ray.ledger.block import ZERO_HASH, BlockKind
from mlts_ray.ledger.chain import ChainStore
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement, overdrawn_by
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.mlts.consensus_round import PHASES, Job, Outcome, build_instance, for_trades
from mlts_ray.mlts.report import (
    SETTLED,
    AuditResult,
    Carried,
    CommittedBlock,
    ConsensusRun,
    CreditChange,
    Report,
    TradeOutcome,
)
from mlts_ray.mlts.strategies import HONEST, Strategies
from mlts_ray.mlts.trading import TradingSpec
from mlts_ray.net.network import best_connected
from mlts_ray.net.rng import stream

def bump(counts: dict[str, int], node: str, by: int = 1) -> None:
    counts[node] = counts.get(node, 0) + by


class Chain:
    """State of one chain that lives across rounds; subclasses fill in the topology."""

    chain: str
    names: tuple[str, ...]
    candidates: tuple[str, ...]
    supervisors: tuple[str, ...]
    client: str
    kind: BlockKind
    inter: bool
    k: int
    traders: frozenset[str] = frozenset()  # who trades on this chain (due every round)

    def __init__(
        self, cfg: Config, identities: Mapping[str, Identity], keys: KeyRing,
        strategies: Mapping[str, Strategies],
    ) -> None:
        """``strategies``: how its faulty nodes act, as the population handed them out (the
        rest are honest); the chain acts *for* a node with them and never judges by them."""
        self.cfg, self.identities, self.keys = cfg, identities, keys
        self.strategies = dict(strategies)
        # Every block is streamed to the run directory; memory holds the newest few.
        self.store = ChainStore(self.chain, keys, keep=8)
        self.book = CreditBook(cfg.credit, self.names)
        # This round's committee and facts, set by begin().
        self.committee = Committee(())
        self.facts = RoundFacts(roles={})
        # The chain's PBFT view: every view change so far moved the (stable) primary on.
        self.view = 0
        # The last block's certificate and the nodes that hold that block: the others catch
        # up on it before they take part in the next height.
        self.last_certificate: object = None
        self.holders: frozenset[str] = frozenset()
        self.recent_trades: tuple[SignedTrade, ...] = ()  # the latest block's, which all hold
        self.credit_root = book_root(self.book, 0)  # the credit table the next block commits to
        # records of the rounds since the chain's last block (consensus.conduct.RoundRecord:
        # view changes, proofs, complaints, audits), which the next block carries
        self.pending_records: list[bytes] = []
        self.convicted: set[str] = set()  # offenders whose proof is on (or bound for) the chain
        self.record_due = RoundRecord(self.chain, -1)  # this round's, set by record()
        # round times of recent blocks, which members bound their primary's time by
        self.recent_us: deque[int] = deque(maxlen=8)
        self.period_report = b""  # the period's signed metering, for the round's record

    def begin(self, rnd: int) -> None:
        """Choose the round's committee and open its facts."""
        self.committee = SELECTORS[self.cfg.consensus.algorithm](
            nodes=self.names, candidates=self.candidates, k=self.k,
            credit=self.book.credits(), eligible=lambda n: self.book.eligible(n, rnd),
            usable=lambda n: self.book.usable(n, rnd) and self.present(n),
            seed=self.cfg.experiment.seed,
            round_=rnd, chain=self.chain, view=self.view,
            pbft_primary=self.cfg.consensus.pbft_primary,
            dce_primary=self.cfg.consensus.dce_primary,
            lead=best_connected(self.cfg.network, self.names),
        )
        roles = {}
        for n in self.names:
            if n in self.committee.members:
                roles[n] = Role.CONSENSUS
            elif n in self.supervisors:
                roles[n] = Role.SUPERVISORY
            else:
                roles[n] = Role.ORDINARY
        due = frozenset(self.committee.members) | {n for n in self.traders if self.present(n)}
        self.facts = RoundFacts(roles=roles, due=due)
        self.period_report = b""

    def strategy(self, node: str) -> Strategies:
        return self.strategies.get(node, HONEST)

    def present(self, node: str) -> bool:
        """Whether the node is online this round (only ordinary traders come and go)."""
        return True

    def chain_for(self, node: str) -> Chain:
        """The chain whose credit a trader's settled trades and offences count in (its own)."""
        return self

    def facts_for(self, node: str) -> RoundFacts:
        return self.chain_for(node).facts

    def complain(self, accused: str, reason: str, exhibit: bytes, rnd: int) -> None:
        """The accused's VMC files a signed complaint (``consensus.complaints``) on the chain
        whose credit it is about."""
        owner = self.chain_for(accused)
        owner.facts.complaints.append(
            file(owner.identities[owner.client], owner.chain, rnd, accused, reason, exhibit))

    # --- consensus and commit -------------------------------------------------------------------

    def job(
        self, rnd: int, trades: list[SignedTrade], anchor_root: bytes = ZERO_HASH,
        trading: TradingSpec | None = None,
    ) -> Job:
        """This round's consensus instance on ``trades`` (or on what ``trading`` yields), for a
        runner to run."""
        cfg = self.cfg
        inst = build_instance(
            cfg, self.chain, self.store.next_height, rnd, self.kind, self.store.tip_hash,
            anchor_root, self.names, self.committee.members, self.client, self.keys,
            certify=cfg.consensus.algorithm != "pbft", inter=self.inter,
            lagging=[n for n in self.names if n not in self.holders],
            prev_certificate=self.last_certificate, credit_root=self.credit_root,
            evidence=self.pending_records, bound_us=self.accountability_bound_us(),
        )
        inst, raws = for_trades(inst, trades)
        # an offline node sends nothing this round, as a crashed one (PBFT seats every node)
        acting = {n: self.strategy(n).consensus if self.present(n) else Crash
                  for n in self.names}
        wrappers = {n: w for n, w in acting.items() if w is not None}
        return Job(inst, wrappers, raws, self.inter, trading)

    def record(
        self, out: Outcome, trades: list[SignedTrade], ledger: Settlement, report: Report
    ) -> None:
        """Commit, settle and record what the instance produced."""
        self._commit(out, trades, ledger, report)
        self._consensus_facts(out)
        # the views this round changed through, as the chain shows them (so ``mlts verify``
        # follows PBFT's stable primary): a decided round stays in the deciding view
        views = self.facts.conduct.views
        self.view += views - 1 if out.decided else views
        if out.decided:
            self.last_certificate, self.holders = out.certificate, out.holders
            self.pending_records = []  # this round's block carried them
            if out.quorum_commit_us is not None:
                self.recent_us.append(out.quorum_commit_us)
        absent = frozenset(n for n in out.inst.names if not self.present(n))
        report.consensus.append(ConsensusRun(self.chain, out, self.committee.degraded, absent))
        report.messages.extend(
            Carried(self.chain, p, s.count, s.bytes, s.dropped)
            for p in PHASES if (s := out.phases.get(p)) is not None
        )

    def _commit(
        self, out: Outcome, trades: list[SignedTrade], ledger: Settlement, report: Report
    ) -> None:
        if out.block is None:
            report.trades.extend(TradeOutcome(t, "not-committed", "no block this round")
                                 for t in trades)
            return
        prev = self.last_certificate
        want = commit_digest(prev.commits) if prev is not None else ZERO_HASH
        try:
            if out.block.header.last_commit != want:
                raise ChainError(out.block.ref, "last_commit is not the previous certificate's")
            self.store.append(out.block)
        except Exception as err:  # a valid certificate proves it: it must extend the chain
            raise RunError(out.block.ref, f"committed block rejected: {err}") from err
        report.blocks.append(CommittedBlock(out.block, encode_commits(out.certificate.commits)))
        height = out.block.header.height
        included = out.block.signed_trades(known=trades)
        self.recent_trades = tuple(included)
        in_block = {t.tx_id for t in included}
        for t in trades:
            if t.tx_id not in in_block:
                bad = t.bad_signer(self.keys)
                if bad:
                    self.complain(bad, "bad-signature", t.encode(), out.inst.round)
                report.trades.append(TradeOutcome(
                    t, "rejected", "bad-signature" if bad else "excluded by primary"))
        self.settle(included, height, ledger, report)

    def settle(
        self, included: list[SignedTrade], height: int, ledger: Settlement, report: Report
    ) -> None:
        """Settle a committed block's trades one by one."""
        for t, err in zip(included, ledger.settle_each(included, committed=True), strict=True):
            for party in (t.trade.buyer, t.trade.seller):  # each signed it: it was there
                self.facts_for(party).active.add(party)
            if err is None:
                for party in (t.trade.buyer, t.trade.seller):
                    bump(self.facts_for(party).settled, party)
                report.trades.append(TradeOutcome(t, SETTLED, "", height))
            else:
                party = overdrawn_by(err.reason, t.trade.buyer, t.trade.seller)
                if party is not None:
                    bump(self.facts_for(party).trade_offences, party)
                report.trades.append(TradeOutcome(t, "rejected", err.reason, height))

    def _consensus_facts(self, out: Outcome) -> None:
        """The committee's conduct, read from what the chain records of the round -- the
        block's certificate and the round's record -- exactly as ``mlts verify`` reads it
        back. The record itself is completed, with the round's complaints, in :meth:`credit`."""
        inst, facts = out.inst, self.facts
        members = [inst.names[m] for m in inst.members]
        commits = out.certificate.commits if out.decided else ()
        fresh = {n: p for n, p in zip(sorted(out.proven), out.proofs, strict=True)
                 if n not in self.convicted}
        self.convicted |= set(fresh)
        record, facts.conduct = minimal(
            round_record(self.chain, inst.round, out.timeouts, fresh.values()), members, commits,
            self.keys)
        if out.decided:
            facts.roles[facts.conduct.primary] = Role.PRIMARY
        facts.banned = set(fresh)  # a ban needs its proof in the round's record
        # a round that failed or changed view, or convicted someone, is on the chain's record;
        # a round decided in its first view keeps no statements (a late timer's are moot)
        due = not out.decided or out.view > 0 or bool(fresh)
        self.record_due = record if due else RoundRecord(self.chain, inst.round)

    def accountability_bound_us(self) -> int | None:
        """Performance accountability (Aardvark): members expect the round within
        ``accountability_factor`` times the median of the chain's recent round times, so a
        primary slower than that is replaced by a view change before the timeout would
        otherwise fire; None without history or with the factor 0. How far it may shorten the
        first view timeout is ``consensus.timing.Timing.first_timeout_us``'s."""
        factor = self.cfg.consensus.accountability_factor
        if factor == 0 or not self.recent_us:
            return None
        recent = sorted(self.recent_us)
        return round(factor * recent[len(recent) // 2])

    # --- credit ---------------------------------------------------------------------------------

    def credit(self, rnd: int, ledger: Settlement, report: Report) -> None:
        """Judge the round's complaints, apply its credit (conduct, evidence, trading) and
        audits to the book, and put the round's record up for the next block."""
        facts = self.facts
        stakes = judge_complaints(facts, self.keys, self.cfg.credit.complaint_stake)
        audits = list(self._audits(rnd, misbehaved(facts), ledger))
        record = dataclasses.replace(
            self.record_due, complaints=tuple(c.encode() for c in facts.complaints),
            audits=tuple(AuditClaim(self.chain, rnd, a.auditor, a.target, a.stake)
                         .signed(self.identities[a.auditor]).encode() for a in audits),
            metering=self.period_report)
        if record != RoundRecord(self.chain, rnd) or not facts.conduct.decided:
            self.pending_records.append(record.encode())
        report.audits.extend(AuditResult(self.chain, a) for a in audits)
        moved = close_round(self.book, facts, stakes, audits, rnd)
        self.credit_root = book_root(self.book, rnd + 1)
        members = set(self.committee.members)
        report.credits.extend(  # str() of a StrEnum is its value, without Enum.value's descriptor
            CreditChange(self.chain, n, str(facts.roles[n]), self.book.credit(n), moved[n],
                         self.book.accounts[n].trading, n in members,
                         str(self.book.status(n, rnd + 1)))
            for n in self.names)

    def _audits(self, rnd: int, misbehaved: set[str], ledger: Settlement) -> Iterator[Audit]:
        cfg = self.cfg.credit
        pool = [n for n in self.names if n not in self.supervisors]
        for sup in self.supervisors:
            if not self.book.usable(sup, rnd):
                continue
            rng = stream(self.cfg.experiment.seed, "audit", self.chain, rnd, sup)
            strategy = self.strategy(sup).auditor  # its own, acted out for it
            for target in strategy.targets(sup, pool, misbehaved, cfg.audits_per_supervisor,
                                           rng):
                money = {n: ledger.balance(n)[0] for n in (sup, target)}
                audit = settle_audit(cfg, sup, target, target in misbehaved,
                                     self.book.credits(), money)
                if audit.money_moved > 0:
                    ledger.transfer_money(target, sup, audit.money_moved)
                elif audit.money_moved < 0:
                    ledger.transfer_money(sup, target, -audit.money_moved)
                yield audit
