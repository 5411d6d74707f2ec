"""One row builder per table (docs/architecture.md section 8): a fact of the model's report
(``mlts.report``) in, a row (a dict without ``run_id``/``round``) out. The columns a chain
determines are listed once, here: ``block_columns`` and ``trade_columns`` are what ``mlts
verify`` checks the stored rows against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlts_ray.ledger.block import Block
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.mlts.report import (
    AccountBalance,
    AnchorCheck,
    AuditResult,
    Carried,
    CommittedBlock,
    ConsensusRun,
    CreditChange,
    MarketClose,
    MeterClose,
    TradeOutcome,
)
from mlts_ray.results.oracle import judge

Row = dict[str, Any]


def block_columns(block: Block) -> Row:
    """What a block's payload determines of its row (``hash`` aside)."""
    h = block.header
    return {
        "chain": h.chain, "height": h.height, "kind": h.kind.label,
        "prev_hash": h.prev_hash.hex(), "merkle_root": h.merkle_root.hex(),
        "anchor_root": h.anchor_root.hex(), "index_field": h.index, "type_field": h.type,
        "n_txs": h.n_txs, "proposer": h.proposer, "last_commit": h.last_commit.hex(),
        "credit_root": h.credit_root.hex(),
    }


def block_row(fact: CommittedBlock) -> Row:
    block = fact.block
    return {**block_columns(block), "hash": block.hash.hex(), "payload": block.encode(),
            "certificate": fact.certificate}


def trade_columns(st: SignedTrade) -> Row:
    """What a signed trade's payload determines of its row (``tx_id`` aside)."""
    t = st.trade
    return {
        "chain": t.chain, "buyer": t.buyer, "seller": t.seller, "buyer_vpp": t.buyer_vpp,
        "seller_vpp": t.seller_vpp, "wh": t.wh, "kwh": t.wh / 1000, "price": t.price,
        "amount_cents": t.amount_cents, "cross": t.cross,
    }


def trade_row(fact: TradeOutcome) -> Row:
    st, height = fact.trade, fact.height
    return {**trade_columns(st), "tx_id": st.tx_id, "status": fact.status,
            "reason": fact.reason, "height": height,
            "main_height": height if st.trade.cross else None, "payload": st.encode()}


def consensus_row(run: ConsensusRun, algorithm: str, labels: Mapping[str, str]) -> Row:
    """``labels``: the chain's nodes' true behaviours."""
    out, inst = run.outcome, run.outcome.inst
    judged = judge(out, labels, run.absent)
    return {
        "chain": run.chain, "algorithm": algorithm,
        "height": inst.height, "n_nodes": len(inst.names), "committee_size": inst.k,
        "f": inst.f, "primary": inst.names[inst.primary(judged.view)], "views": judged.views,
        "committed": out.decided, "committed_beyond_f": judged.beyond_f,
        "latency_ms": _ms(judged.latency_us), "finality_ms": _ms(judged.finality_us),
        "proposed_ms": _ms(judged.proposed_us),
        "messages": sum(s.count for s in out.phases.values()),
        "bytes": sum(s.bytes for s in out.phases.values()),
        "txs": out.block.header.n_txs if out.block else 0,
        "byzantine_in_committee": judged.faulty_members, "committee_degraded": run.degraded,
        "safety_violation": judged.safety_violation, "evidence": judged.evidence,
        "signatures_made": out.signs, "signatures_checked": out.verifies,
        "deliveries": out.delivered, "wall_ms": out.wall_ms,
    }


def _ms(us: int | None) -> float | None:
    return None if us is None else us / 1000


def message_row(fact: Carried) -> Row:
    return {"chain": fact.chain, "phase": fact.phase, "count": fact.count,
            "bytes": fact.bytes, "dropped": fact.dropped}


def credit_row(fact: CreditChange, behaviour: str) -> Row:
    """``behaviour``: the node's true behaviour, the table's ground-truth column."""
    return {"chain": fact.chain, "node": fact.node, "role": fact.role, "behaviour": behaviour,
            "credit": fact.credit, "delta": fact.delta, "trading_credit": fact.trading_credit,
            "in_committee": fact.in_committee, "status": fact.status}


def audit_row(fact: AuditResult) -> Row:
    a = fact.audit
    return {"chain": fact.chain, "auditor": a.auditor, "target": a.target, "stake": a.stake,
            "outcome": a.outcome, "credit_moved": a.credit_moved,
            "money_moved": a.money_moved}


def anchor_row(fact: AnchorCheck) -> Row:
    return {"main_height": fact.main_height, "chain": fact.chain,
            "collab_height": fact.collab_height, "collab_hash": fact.collab_hash.hex(),
            "collab_type": fact.collab_type, "ok": fact.ok}


def energy_row(fact: MeterClose) -> Row:
    r = fact.reading
    return {
        "chain": fact.chain, "node": fact.node, "online": fact.online,
        "generation_wh": r.generation_wh, "consumption_wh": r.consumption_wh,
        "charge_wh": r.charge_wh, "discharge_wh": r.discharge_wh, "soc_wh": r.soc_wh,
        "loss_wh": r.loss_wh, "net_wh": r.net_wh, "sold_wh": fact.sold_wh,
        "bought_wh": fact.bought_wh, "import_wh": fact.import_wh, "export_wh": fact.export_wh,
    }


def market_row(market: str, fact: MarketClose) -> Row:
    """A VPP's market (its settled intra-VPP trades, the Wh its nodes traded across VPPs and
    its exchange with the grid) or, with no ``cross_wh``, the cross-VPP book's."""
    trades = [(t.wh, t.price) for t in fact.settled]
    volume = sum(wh for wh, _ in trades)
    if fact.cross_wh is None:
        return market_figures(market, fact.chain, trades, 0, volume, 0, 0)
    return market_figures(market, fact.chain, trades, volume, fact.cross_wh,
                          sum(m.import_wh for m in fact.meters),
                          sum(m.export_wh for m in fact.meters))


def market_figures(market: str, chain: str, trades: Sequence[tuple[int, int]], intra_wh: int,
                   cross_wh: int, import_wh: int, export_wh: int) -> Row:
    """A market row from its settled trades' ``(wh, price)``: a call auction's single clearing
    price, or the continuous auction's volume-weighted mean and range. ``mlts verify`` rebuilds
    the table with it from the stored trades and energy rows."""
    volume = sum(wh for wh, _ in trades)
    prices = [price for _, price in trades]
    return {
        "chain": chain, "market": market, "trades": len(trades), "volume_wh": volume,
        "price_mean": sum(wh * p for wh, p in trades) / volume if volume else None,
        "price_min": min(prices, default=None), "price_max": max(prices, default=None),
        "intra_wh": intra_wh, "cross_wh": cross_wh, "grid_import_wh": import_wh,
        "grid_export_wh": export_wh,
    }


def balance_row(fact: AccountBalance) -> Row:
    return {"node": fact.node, "money": fact.money, "energy_wh": fact.energy_wh,
            "energy_kwh": fact.energy_wh / 1000}
