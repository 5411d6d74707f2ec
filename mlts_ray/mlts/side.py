"""A VPP's side chain: its meters and its traders' comings and goings, what its trading needs
each round (the trading itself is ``trading.trade_round``, run wherever the runtime runs the
chain), the intra-VPP trades' block through consensus, collaborative blocks for the VPP's cross
trades, and the period's close with the grid (docs/architecture.md section 4).

Churn: each ordinary trader is online or not by a seeded two-state process per node --
stationary share ``workload.online_share`` online, mean session ``workload.session_periods``
periods. States change only at period boundaries, and every order lives within its period, so
no node leaves holding an open order; the one that does is the ``abandon`` trader, which walks
away from the contracts its orders filled (``mlts.traders``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlts_ray.config import Config, side_committee_size
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.mlts.anchoring import collaborative_block
from mlts_ray.mlts.chain import Chain
from mlts_ray.mlts.energy import Meter, Reading
from mlts_ray.mlts.metering import Metered, signed_report
from mlts_ray.mlts.relay import broadcast
from mlts_ray.mlts.report import Carried, CommittedBlock, MeterClose, Report
from mlts_ray.mlts.strategies import Strategies
from mlts_ray.mlts.topology import VppLayout, vpp_layout
from mlts_ray.mlts.trading import TradingResult, TradingSpec
from mlts_ray.net.rng import stream


class SideChain(Chain):
    kind = BlockKind.SIDE
    inter = False

    def __init__(self, cfg: Config, v: int, identities: Mapping[str, Identity], keys: KeyRing,
                 strategies: Mapping[str, Strategies]):
        self.layout: VppLayout = vpp_layout(cfg.topology, v)
        self.chain = self.layout.chain
        self.names = self.layout.nodes
        self.candidates = self.layout.candidates
        self.supervisors = self.layout.supervisors
        self.client = self.layout.vmc
        self.traders = frozenset(self.layout.traders)
        self.k = len(self.names) if cfg.consensus.algorithm == "pbft" else side_committee_size(cfg)
        super().__init__(cfg, identities, keys, strategies)
        self.meter = Meter(cfg, self.chain, self.layout.traders)
        self.readings: dict[str, Reading] = {}
        self.online = dict.fromkeys(self.layout.traders, True)

    def begin(self, rnd: int) -> None:
        """Who is online, and what the meters read, this period; then the committee."""
        self._churn(rnd)
        self.readings = self.meter.read(rnd)
        super().begin(rnd)

    def present(self, node: str) -> bool:
        return self.online.get(node, True)

    def _churn(self, rnd: int) -> None:
        w = self.cfg.workload
        if w.online_share == 1:
            return
        leave = 1 / w.session_periods
        join = min(1.0, leave * w.online_share / (1 - w.online_share))
        for node in self.layout.traders:
            draw = stream(self.cfg.experiment.seed, "churn", node, rnd).random()
            if rnd == 0:
                self.online[node] = draw < w.online_share
            else:
                self.online[node] = draw >= leave if self.online[node] else draw < join

    # --- trading --------------------------------------------------------------------------------

    def open_period(self, ledger: Settlement) -> None:
        """Each metered surplus enters its node's account for the period."""
        for node, reading in self.readings.items():
            if reading.net_wh > 0:
                ledger.mint(node, reading.net_wh)

    def trading_spec(self, rnd: int, ledger: Settlement) -> TradingSpec:
        """What this VPP's trading needs this round (see ``trading.trade_round``)."""
        traders = tuple(n for n in self.layout.traders
                        if self.book.usable(n, rnd) and self.online[n])
        # each node's own strategy goes with it (a crashed node's sends nothing); the VMC's
        # part of trade_round never reads it
        return TradingSpec(self.chain, traders, {n: ledger.balance(n) for n in traders},
                           {n: max(0, -self.readings[n].net_wh) for n in traders},
                           {n: self.strategy(n).trader for n in traders}, self.recent_trades,
                           self.layout.vmc)

    def close_period(self, rnd: int, ledger: Settlement, traded: dict[str, tuple[int, int]],
                     report: Report) -> None:
        """The grid takes every node's unsold surplus at the feed-in tariff and supplies its
        unbought deficit at the retail price; the VMC signs the period's meter report, which
        the round's record carries. ``traded``: Wh each node sold and bought in settled trades."""
        w, entries = self.cfg.workload, []
        for node, r in self.readings.items():
            imported, exported = ledger.close(node, max(0, -r.net_wh), w.feed_in_cents,
                                              w.retail_cents)
            sold, bought = traded.get(node, (0, 0))
            entries.append(Metered(node, r.net_wh, imported, exported, self.online[node]))
            report.energy.append(MeterClose(self.chain, node, self.online[node], r, sold, bought,
                                            imported, exported))
        self.period_report = signed_report(self.identities[self.layout.vmc], self.chain, rnd,
                                    entries).encode()

    def apply_trading(self, result: TradingResult) -> None:
        self.facts.complaints.extend(result.complaints)  # judged in credit()

    # --- collaborative blocks -------------------------------------------------------------------

    def collaborative(
        self, rnd: int, main_height: int, trade_ids: Sequence[bytes], report: Report
    ) -> Block:
        """The VMC records main block ``main_height``'s trades of this VPP (their ids) and
        broadcasts the block to the VPP's other nodes through the simulated network
        (``relay``)."""
        block = collaborative_block(
            self.identities[self.layout.vmc], self.store, rnd, main_height, trade_ids
        )
        report.blocks.append(CommittedBlock(block))
        carried = broadcast(self.cfg.network, self.cfg.experiment.seed, self.chain, self.names,
                            self.layout.vmc, block, rnd)
        report.messages.append(Carried(self.chain, "collaborative", carried.count,
                                       carried.bytes, carried.dropped))
        return block
