"""A VPP's side chain: what its trading needs each round (the trading itself is
``trading.trade_round``, run wherever the runtime runs the chain), the intra-VPP trades' block
through consensus, and collaborative blocks for the VPP's cross trades."""

from __future__ import annotations

from collections.abc import Mapping

from mlts_ray.config import Config, side_committee_size
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.mlts.anchoring import collaborative_block
from mlts_ray.mlts.chain import Chain, RoundRows, block_row
from mlts_ray.mlts.relay import broadcast
from mlts_ray.mlts.topology import VppLayout, assign_behaviours, vpp_layout
from mlts_ray.mlts.trading import TradingResult, TradingSpec


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
        self.traders = frozenset(self.layout.traders)
        self.k = len(self.names) if cfg.consensus.algorithm == "pbft" else side_committee_size(cfg)
        super().__init__(cfg, identities, keys, assign_behaviours(cfg, self.layout))

    # --- trading --------------------------------------------------------------------------------

    def trading_spec(self, rnd: int, ledger: Settlement) -> TradingSpec:
        """What this VPP's trading needs this round (see ``trading.trade_round``)."""
        traders = tuple(n for n in self.layout.traders if self.book.usable(n, rnd))
        # each node's own strategy goes with it (a crashed node's sends nothing); the VMC's
        # part of trade_round never reads it
        return TradingSpec(self.chain, traders, {n: ledger.balance(n) for n in traders},
                           {n: self.behaviour[n] for n in traders}, self.recent_trades,
                           self.layout.vmc)

    def apply_trading(self, result: TradingResult) -> None:
        self.facts.complaints.extend(result.complaints)  # judged in credit()

    # --- collaborative blocks -------------------------------------------------------------------

    def collaborative(
        self, rnd: int, main_height: int, trades: list[SignedTrade], rows: RoundRows
    ) -> Block:
        """The VMC records main block ``main_height``'s trades of this VPP and broadcasts the
        block to the VPP's other nodes through the simulated network (``relay``)."""
        block = collaborative_block(
            self.identities[self.layout.vmc], self.store, rnd, main_height, trades
        )
        rows.blocks.append(block_row(block))
        carried = broadcast(self.cfg, self.chain, self.names, self.layout.vmc, block, rnd)
        rows.messages.append({
            "chain": self.chain, "phase": "collaborative", "count": carried.count,
            "bytes": carried.bytes, "dropped": carried.dropped,
        })
        return block
