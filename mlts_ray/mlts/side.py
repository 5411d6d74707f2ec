"""A VPP's side chain across rounds: orders -> matching -> signed trades -> consensus on a block
-> settlement -> credit and audits, producing the round's rows of every table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlts_ray.config import Config, side_committee_size
from mlts_ray.consensus.audit import choose_targets, credit_effects, settle_audit
from mlts_ray.consensus.byzantine import forged
from mlts_ray.consensus.committee import SELECTORS
from mlts_ray.consensus.credit import CreditBook, Role, RoundFacts
from mlts_ray.errors import RunError, SettlementError
from mlts_ray.ledger.block import Block, BlockKind, ZERO_HASH
from mlts_ray.ledger.chain import ChainStore
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.ledger.tx import SignedOrder, SignedTrade, Trade
from mlts_ray.mlts.consensus_round import (
    PHASES,
    Outcome,
    build_instance,
    consensus_honest,
    penalised_votes,
    run_instance,
)
from mlts_ray.mlts.topology import HONEST, VppLayout, assign_behaviours, vpp_layout
from mlts_ray.mlts.workload import make_orders, match
from mlts_ray.net.rng import stream

Row = dict[str, Any]
NO_SIG = bytes(SIGNATURE_SIZE)


@dataclass(slots=True)
class RoundRows:
    """One round's rows, table by table (DESIGN section 8), minus ``run_id``/``round``."""

    consensus: list[Row] = field(default_factory=list)
    messages: list[Row] = field(default_factory=list)
    credits: list[Row] = field(default_factory=list)
    blocks: list[Row] = field(default_factory=list)
    trades: list[Row] = field(default_factory=list)
    audits: list[Row] = field(default_factory=list)

    def extend(self, other: RoundRows) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))


def block_row(block: Block) -> Row:
    h = block.header
    return {
        "chain": h.chain, "height": h.height, "kind": h.kind.label, "hash": block.hash.hex(),
        "prev_hash": h.prev_hash.hex(), "merkle_root": h.merkle_root.hex(),
        "anchor_root": h.anchor_root.hex(), "index_field": h.index, "type_field": h.type,
        "n_txs": h.n_txs, "proposer": h.proposer, "payload": block.encode(),
    }


def trade_row(st: SignedTrade, status: str, reason: str, height: int | None) -> Row:
    t = st.trade
    return {
        "tx_id": t.tx_id, "chain": t.chain, "buyer": t.buyer, "seller": t.seller,
        "buyer_vpp": t.buyer_vpp, "seller_vpp": t.seller_vpp, "wh": t.wh, "kwh": t.wh / 1000,
        "price": t.price, "amount_cents": t.amount_cents, "cross": t.cross, "status": status,
        "reason": reason, "height": height, "main_height": None, "payload": st.encode(),
    }


class SideChain:
    """State of one VPP's side chain that lives across rounds."""

    def __init__(self, cfg: Config, v: int, identities: Mapping[str, Identity], keys: KeyRing):
        self.cfg, self.keys, self.identities = cfg, keys, identities
        self.layout: VppLayout = vpp_layout(cfg, v)
        self.chain = self.layout.chain
        self.names = self.layout.nodes
        self.behaviour = assign_behaviours(cfg, self.layout)
        self.store = ChainStore(self.chain, keys)
        self.book = CreditBook(cfg.credit, self.names)
        algo = cfg.consensus.algorithm
        self.k = len(self.names) if algo == "pbft" else side_committee_size(cfg)

    # --- the round ------------------------------------------------------------------------------

    def run_round(self, rnd: int, ledger: Settlement) -> RoundRows:
        cfg, seed = self.cfg, self.cfg.experiment.seed
        committee = SELECTORS[cfg.consensus.algorithm](
            nodes=self.names, candidates=self.layout.candidates, k=self.k,
            credit=self.book.credits(), eligible=lambda n: self.book.eligible(n, rnd),
            usable=lambda n: self.book.usable(n, rnd), seed=seed, round_=rnd, chain=self.chain,
        )
        facts = RoundFacts(roles=self._roles(committee.members))
        signed_trades = self._trade(rnd, ledger, facts)
        inst = build_instance(
            cfg, self.chain, self.store.next_height, rnd, BlockKind.SIDE, self.store.tip_hash,
            ZERO_HASH, self.names, committee.members, self.layout.vmc, self.keys,
            certify=cfg.consensus.algorithm != "pbft",
        )
        outcome = run_instance(
            cfg, inst, self.identities, self.behaviour, [t.encode() for t in signed_trades], False
        )
        rows = RoundRows()
        self._commit(outcome, signed_trades, ledger, facts, rows)
        self._credit(rnd, outcome, facts, ledger, rows)
        rows.consensus.append(self._consensus_row(outcome, committee.degraded))
        rows.messages.extend(
            {"chain": self.chain, "phase": p, "count": s.count, "bytes": s.bytes, "dropped": s.dropped}
            for p in PHASES if (s := outcome.phases.get(p)) is not None
        )
        return rows

    def _roles(self, members: tuple[str, ...]) -> dict[str, Role]:
        roles = {}
        for n in self.names:
            if n in members:
                roles[n] = Role.CONSENSUS
            elif n in self.layout.supervisors:
                roles[n] = Role.SUPERVISORY
            else:
                roles[n] = Role.ORDINARY
        return roles

    def _trade(self, rnd: int, ledger: Settlement, facts: RoundFacts) -> list[SignedTrade]:
        """Signed orders from every trader allowed to trade, matched; contracts signed."""
        cfg, seed = self.cfg, self.cfg.experiment.seed
        orders: list[SignedOrder] = []
        for node in self.layout.traders:
            # A crashed or silent node sends nothing, orders included.
            if not self.book.usable(node, rnd) or self.behaviour[node] in ("crash", "silent"):
                continue
            money, energy = ledger.balance(node)
            for o in make_orders(seed, cfg.workload, node, self.chain, rnd, money, energy):
                signed = o.sign(self.identities[node])
                orders.append(forged(signed) if self.behaviour[node] == "forge" else signed)
        good = []
        for so in orders:  # the VMC checks every order before matching
            if so.verify(self.keys):
                good.append(so)
            else:
                facts.trade_offences[so.order.node] = facts.trade_offences.get(so.order.node, 0) + 1
        fills, _open = match(good)
        out = []
        for f in fills:
            trade = Trade(self.chain, rnd, f.buy.node, f.sell.node, self.chain, self.chain,
                          f.wh, f.price, f.buy.order_id, f.sell.order_id)
            quitter = next((p for p in (trade.buyer, trade.seller)
                            if self.behaviour[p] == "abandon"), None)
            if quitter is not None:
                facts.abandoned[quitter] = facts.abandoned.get(quitter, 0) + 1
                continue
            out.append(self._sign(trade))
        return out

    def _sign(self, trade: Trade) -> SignedTrade:
        st = trade.sign(self.identities[trade.buyer], self.identities[trade.seller])
        if self.behaviour[trade.buyer] == "forge":
            st = SignedTrade(trade, NO_SIG, st.seller_sig)
        if self.behaviour[trade.seller] == "forge":
            st = SignedTrade(trade, st.buyer_sig, NO_SIG)
        return st

    # --- after consensus ------------------------------------------------------------------------

    def _commit(
        self, out: Outcome, trades: list[SignedTrade], ledger: Settlement, facts: RoundFacts,
        rows: RoundRows,
    ) -> None:
        if out.block is None:
            rows.trades.extend(trade_row(t, "not-committed", "no block this round", None) for t in trades)
            return
        try:
            self.store.append(out.block)
        except Exception as err:  # an honest majority committed it: it must extend the chain
            raise RunError(f"{self.chain}@{out.block.header.height}", f"committed block rejected: {err}") from err
        rows.blocks.append(block_row(out.block))
        height = out.block.header.height
        included = out.block.signed_trades()
        in_block = {t.tx_id for t in included}
        for t in trades:
            if t.tx_id not in in_block:
                bad = t.bad_signer(self.keys)
                reason = "bad-signature" if bad else "excluded by primary"
                if bad:
                    facts.trade_offences[bad] = facts.trade_offences.get(bad, 0) + 1
                rows.trades.append(trade_row(t, "rejected", reason, None))
        for t, err in zip(included, ledger.settle_each(included), strict=True):
            if err is None:
                for p in (t.trade.buyer, t.trade.seller):
                    facts.settled[p] = facts.settled.get(p, 0) + 1
                rows.trades.append(trade_row(t, "settled", "", height))
            else:
                self._settlement_offence(t, err, facts)
                rows.trades.append(trade_row(t, "rejected", err.reason, height))

    @staticmethod
    def _settlement_offence(t: SignedTrade, err: SettlementError, facts: RoundFacts) -> None:
        party = t.trade.seller if err.reason == "overdraft-energy" else t.trade.buyer
        facts.trade_offences[party] = facts.trade_offences.get(party, 0) + 1

    def _credit(
        self, rnd: int, out: Outcome, facts: RoundFacts, ledger: Settlement, rows: RoundRows
    ) -> None:
        facts.decided = out.decided
        facts.primary = out.primary
        if out.decided:
            facts.roles[out.primary] = Role.PRIMARY
        inst = out.inst
        failed_views = out.view if out.decided else out.views
        facts.timed_out_primaries = [inst.names[inst.primary(v)] for v in range(failed_views)]
        for n in inst.member_names:
            facts.voted_in_time[n] = out.voted_in_time(n)
        facts.bad_votes = dict(Counter(offender for offender, _, _ in penalised_votes(out)))
        facts.banned = out.proven
        facts.online = {s for s in self.layout.supervisors
                        if self.behaviour[s] not in ("crash", "silent")}
        deltas = self.book.deltas(facts)
        misbehaved = set(facts.bad_votes) | facts.banned | set(facts.abandoned) | set(facts.trade_offences)
        for audit in self._audits(rnd, misbehaved, ledger):
            for node, d in credit_effects(audit).items():
                deltas[node] += d
            rows.audits.append({
                "chain": self.chain, "auditor": audit.auditor, "target": audit.target,
                "stake": audit.stake, "outcome": audit.outcome,
                "credit_moved": audit.credit_moved, "money_moved": audit.money_moved,
            })
        moved = self.book.apply(deltas, facts.banned, rnd)
        members = inst.member_names
        for n in self.names:
            rows.credits.append({
                "chain": self.chain, "node": n, "role": facts.roles[n].value,
                "behaviour": self.behaviour[n], "credit": self.book.credit(n), "delta": moved[n],
                "in_committee": n in members, "status": self.book.status(n, rnd + 1).value,
            })

    def _audits(self, rnd: int, misbehaved: set[str], ledger: Settlement):
        cfg = self.cfg.credit
        pool = [n for n in self.names if n not in self.layout.supervisors]
        honest = {n for n in pool if self.behaviour[n] == HONEST}
        for sup in self.layout.supervisors:
            if not self.book.usable(sup, rnd) or not consensus_honest(self.behaviour[sup]):
                continue
            rng = stream(self.cfg.experiment.seed, "audit", self.chain, rnd, sup)
            for target in choose_targets(sup, self.behaviour[sup], pool, honest, misbehaved,
                                         cfg.audits_per_supervisor, rng):
                money = {n: ledger.balance(n)[0] for n in (sup, target)}
                audit = settle_audit(cfg, sup, target, target in misbehaved,
                                     self.book.credits(), money)
                if audit.money_moved > 0:
                    ledger.transfer_money(target, sup, audit.money_moved)
                elif audit.money_moved < 0:
                    ledger.transfer_money(sup, target, -audit.money_moved)
                yield audit

    def _consensus_row(self, out: Outcome, degraded: bool) -> Row:
        inst = out.inst
        byz = sum(1 for m in inst.member_names if self.behaviour[m] != HONEST)
        return {
            "chain": self.chain, "algorithm": self.cfg.consensus.algorithm,
            "height": inst.height, "n_nodes": len(inst.names), "committee_size": inst.k,
            "f": inst.f, "primary": out.primary, "views": out.views, "committed": out.decided,
            "latency_ms": None if out.latency_us is None else out.latency_us / 1000,
            "finality_ms": None if out.finality_us is None else out.finality_us / 1000,
            "messages": sum(s.count for s in out.phases.values()),
            "bytes": sum(s.bytes for s in out.phases.values()),
            "txs": out.block.header.n_txs if out.block else 0,
            "byzantine_in_committee": byz, "committee_degraded": degraded,
            "safety_violation": out.safety_violation,
            "signatures_made": out.signs, "signatures_checked": out.verifies,
            "deliveries": out.delivered,
        }
