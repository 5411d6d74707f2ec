"""A VPP's side chain: its traders' signed orders, price-time matching inside the VPP, the
intra-VPP trades' block through consensus, collaborative blocks for the VPP's cross trades."""

from __future__ import annotations

from collections.abc import Mapping

from mlts_ray.config import Config, side_committee_size
from mlts_ray.consensus.byzantine import forged
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.ledger.tx import Order, SignedOrder, SignedTrade, Trade
from mlts_ray.mlts.anchoring import collaborative_block
from mlts_ray.mlts.chain import Chain, RoundRows, block_row, bump
from mlts_ray.mlts.topology import VppLayout, assign_behaviours, vpp_layout
from mlts_ray.mlts.workload import make_orders, match
from mlts_ray.net.rng import stream

NO_SIG = bytes(SIGNATURE_SIZE)


def sign_contract(
    trade: Trade, identities: Mapping[str, Identity], sides: Mapping[str, SideChain]
) -> SignedTrade | None:
    """The contract as its parties sign it, each per its behaviour in its own VPP: an
    ``abandon`` party walks away (None, charged in its VPP's facts), a ``forge`` party signs
    with a bad signature."""
    side_of = {trade.buyer: sides[trade.buyer_vpp], trade.seller: sides[trade.seller_vpp]}
    for party, side in side_of.items():
        if side.behaviour[party] == "abandon":
            bump(side.facts.abandoned, party)
            return None
    st = trade.sign(identities[trade.buyer], identities[trade.seller])
    forges = {p for p, side in side_of.items() if side.behaviour[p] == "forge"}
    return SignedTrade(
        trade,
        NO_SIG if trade.buyer in forges else st.buyer_sig,
        NO_SIG if trade.seller in forges else st.seller_sig,
    )


class SideChain(Chain):
    kind = BlockKind.SIDE
    inter = False

    def __init__(self, cfg: Config, v: int, identities: Mapping[str, Identity], keys: KeyRing):
        self.layout: VppLayout = vpp_layout(cfg, v)
        self.chain = self.layout.chain
        self.names = self.layout.nodes
        self.candidates = self.layout.candidates
        self.supervisors = self.layout.supervisors
        self.client = self.layout.vmc
        self.k = len(self.names) if cfg.consensus.algorithm == "pbft" else side_committee_size(cfg)
        super().__init__(cfg, identities, keys, assign_behaviours(cfg, self.layout))

    # --- trading --------------------------------------------------------------------------------

    def trade(self, rnd: int, ledger: Settlement) -> tuple[list[SignedTrade], list[Order]]:
        """This period's intra-VPP trades (signed by both parties) and the open orders the
        VMC forwards to the cross-VPP book (each with probability ``cross_vpp_share``)."""
        fills, still_open = match(self._orders(rnd, ledger))
        trades = [
            Trade(self.chain, rnd, f.buy.node, f.sell.node, self.chain, self.chain,
                  f.wh, f.price, f.buy.order_id, f.sell.order_id)
            for f in fills
        ]
        share = self.cfg.workload.cross_vpp_share
        rng = stream(self.cfg.experiment.seed, "forward", self.chain, rnd)
        forwarded = [o for o in still_open if rng.random() < share]
        signed = [s for t in trades if (s := sign_contract(t, self.identities, {self.chain: self}))]
        return signed, forwarded

    def _orders(self, rnd: int, ledger: Settlement) -> list[SignedOrder]:
        """Signed orders of every trader allowed to trade; the VMC drops badly signed ones."""
        seed, good = self.cfg.experiment.seed, []
        for node in self.layout.traders:
            # A crashed or silent node sends nothing, orders included.
            if not self.book.usable(node, rnd) or self.behaviour[node] in ("crash", "silent"):
                continue
            money, energy = ledger.balance(node)
            for o in make_orders(seed, self.cfg.workload, node, self.chain, rnd, money, energy):
                signed = o.sign(self.identities[node])
                if self.behaviour[node] == "forge":
                    signed = forged(signed)
                if signed.verify(self.keys):
                    good.append(signed)
                else:
                    bump(self.facts.trade_offences, node)
        return good

    # --- collaborative blocks -------------------------------------------------------------------

    def collaborative(
        self, rnd: int, main_height: int, trades: list[SignedTrade], rows: RoundRows
    ) -> Block:
        """The VMC records main block ``main_height``'s trades of this VPP and broadcasts the
        block to the VPP's other nodes (counted as ``collaborative`` messages)."""
        block = collaborative_block(
            self.identities[self.layout.vmc], self.store, rnd, main_height, trades
        )
        rows.blocks.append(block_row(block))
        peers = len(self.names) - 1
        rows.messages.append({
            "chain": self.chain, "phase": "collaborative", "count": peers,
            "bytes": peers * len(block.encode()), "dropped": 0,
        })
        return block
