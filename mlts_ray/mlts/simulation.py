"""The whole MLTS simulation round by round, independent of any runtime (docs/architecture.md section 4).

One round is one trading period: every VPP's meters are read and each surplus enters its
node's account; the traders post signed orders for their positions, matched inside the VPP
first; the VMCs forward open orders to the cross-VPP book; side chains run consensus on their
intra-VPP trades (independent of each other: a runtime may run them in parallel); the main
chain runs consensus on the cross-VPP trades with the anchor root of the previous round's
collaborative blocks; each VPP party to a committed main block gets a collaborative block;
cross trades settle; the grid closes every node's period at its tariffs; every chain updates
its credit. Every round the physical balance (each node's metered position is what it sold
less what it bought plus its grid export less its import) and money (the grid's account
included) are checked, and every energy account is empty again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tomli_w

from mlts_ray.config import PLACEMENT_KEYS, Config, Topology
from mlts_ray.errors import RunError
from mlts_ray.ledger.chain_accounts import Ledgers
from mlts_ray.names import MAIN, home_of
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.merkle import verify_proof
from mlts_ray.ledger.settlement import GRID, Settlement, sum_balances
from mlts_ray.ledger.tx import Order, SignedTrade, Trade
from mlts_ray.mlts.anchoring import Anchor, anchor_proofs, anchor_root
from mlts_ray.mlts.chain import Chain
from mlts_ray.mlts.consensus_round import Outcome, Runner, local_runner
from mlts_ray.mlts.main_chain import MainChain, grid_names
from mlts_ray.mlts.metering import cross_wh_by_vpp, tally
from mlts_ray.mlts.report import AccountBalance, AnchorCheck, MarketClose, Report, balances_of
from mlts_ray.mlts.side_service import (
    Ended,
    FactsInbox,
    LocalSides,
    MainNews,
    Sides,
)
from mlts_ray.mlts.traders import contract
from mlts_ray.mlts.strategies import HONEST, Cast
from mlts_ray.mlts.traders import Trader
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.mlts.workload import MARKETS

RunnerOf = Callable[[Mapping[str, Identity], KeyRing], Runner]
SidesOf = Callable[[Mapping[str, Identity], KeyRing, Runner], Sides]


def run_id_of(cfg: Config) -> str:
    """Deterministic: the same config (seed included) has the same run id on every runtime."""
    data = cfg.model_dump(mode="json")
    for key in PLACEMENT_KEYS:
        data["experiment"].pop(key)
    digest = hashlib.sha256(tomli_w.dumps(data).encode()).hexdigest()[:10]
    return f"{cfg.experiment.name}-{digest}"


class Simulation:
    """``cast``: how each chain's faulty nodes act (the population's strategies). A runtime
    says where the work runs, each given the run's identities and keys: ``runner`` makes what
    runs consensus instances (default: in this process, one after the other), ``sides`` what
    holds the side chains' services (default: ``LocalSides``, in this process, their jobs run
    by the runner) -- a runtime may keep them on its hosts instead."""

    def __init__(self, cfg: Config, cast: Cast, runner: RunnerOf | None = None,
                 sides: SidesOf | None = None) -> None:
        self.cfg, self.cast = cfg, cast
        seed = cfg.experiment.seed
        self.identities = {n: Identity.derive(seed, n) for n in node_names(cfg.topology)}
        self.keys = KeyRing.of(self.identities.values())
        self.runner = (runner(self.identities, self.keys) if runner else
                       local_runner(cfg, self.identities, self.keys))
        sides = sides or (lambda ids, keys, run: LocalSides(cfg, ids, keys, run, cast))
        self.services: Sides = sides(self.identities, self.keys, self.runner)
        self.sides = getattr(self.services, "chains", {})  # the side chains, when here
        # split by chain: what crosses chains settles by two-phase steps (ledger.chain_accounts)
        opening = opening_balances(cfg)
        self.ledger = Ledgers(self.keys, {n: b for n, b in opening.items() if home_of(n) == MAIN},
                              self.services.shards, self.services.fan_out)
        self.main_shard = self.ledger.parts[MAIN].ledger  # the grid nodes' accounts, here
        self.totals = sum_balances(opening.values())
        layouts = [vpp_layout(cfg.topology, v) for v in range(cfg.topology.vpps)]
        # what the main chain proves of each VPP's nodes, sent to its side chain each round
        self.inboxes = {layout.chain: FactsInbox(layout.chain, layout.vmc, self.identities)
                        for layout in layouts}
        self.main = MainChain(cfg, self.identities, self.keys, cast.strategies(MAIN),
                              self.inboxes)
        self.pending: list[Anchor] = []  # collaborative blocks the next main block anchors

    @property
    def chains(self) -> list[Chain]:
        """Every chain held here: the side chains in VPP order (when here), then the main."""
        return [*self.sides.values(), self.main]

    def run_round(self, rnd: int) -> list[Any]:
        """Every chain's round, then the checks every round must pass: the round's facts in
        pieces, in the order they are written (``results.Collector.tables``): each side
        chain's before the main block, the main chain's, each side chain's after it, the main
        chain's credit, then the balances. A piece is a ``Report``, or whatever stands for one
        in the runtime's ``Sides`` (the rows made and held elsewhere)."""
        self.main_shard.forget_before(rnd)  # each side chain forgets in its own shard
        self.main.begin(rnd)
        for inbox in self.inboxes.values():
            inbox.begin()
        # Each side chain's trading and consensus depend on its own VPP only: the services
        # may run them in parallel, wherever they run the chain. The cross-VPP book and the
        # main chain's instance need only the forwarded orders: they run while the side
        # chains' consensus does; the main block's record waits for the side chains' (its
        # settlement reaches their accounts). The consensus starts before the forwarded
        # orders are read: a remote service goes from its book into its contracts and
        # consensus without a round trip.
        opened = self.services.open(rnd)
        recorded = self.services.record(rnd)
        head = Report()
        cross = self._cross_trades(rnd, [o for orders in opened() for o in orders])
        (out,) = self.runner([self.main.job(rnd, cross, anchor_root(self.pending))])
        traded = recorded()
        self.main.record(out, cross, self.ledger, head)
        if out.block is not None:
            self._anchor(out, head)
        settled = tuple(head.settled())
        closed = self.services.close(rnd, self._news(out, settled))
        if out.block is not None:  # each VPP party to its trades made a collaborative block
            self.pending = [c.anchor for c in closed if c.anchor is not None]
        tail = Report(market=[MarketClose(MAIN, settled)])
        self.main.credit(rnd, self.ledger, tail)
        ended = self.services.end(rnd)
        self._check_conservation(rnd, ended)
        return [*(t.report for t in traded), head, *(c.report for c in closed), tail,
                *(e.report for e in ended), Report(balances=self._main_balances(ended))]

    def _cross_trades(self, rnd: int, forwarded: list[Order]) -> list[SignedTrade]:
        """Match the forwarded orders across VPPs; each party's VPP has its say on signing."""
        out = []
        for f in MARKETS[self.cfg.workload.market](forwarded, left_open=False)[0]:
            if f.buy.vpp == f.sell.vpp:  # cannot happen: a VPP's open orders never cross
                continue
            trade = Trade(MAIN, rnd, f.buy.node, f.sell.node, f.buy.vpp, f.sell.vpp,
                          f.wh, f.price, f.buy.order_id, f.sell.order_id)
            # each party signs by its own strategy (a VPP's trader: its side chain's)
            parties = [(self.identities[n], self._trader(n)) for n in (trade.buyer, trade.seller)]
            signed, walked = contract(trade, *parties)
            if signed is None:
                # filed on the walker's side chain (MainChain.chain_for: its inbox)
                self.main.complain(walked, "abandoned", trade.encode(), rnd)
            else:
                out.append(signed)
        return out

    def _trader(self, node: str) -> Trader:
        return self.cast.strategies(home_of(node)).get(node, HONEST).trader

    def _anchor(self, out: Outcome, report: Report) -> None:
        """The committed main block anchors the pending collaborative blocks."""
        header = out.block.header
        # pending is in VPP order, one block per VPP: the root's order (anchoring.ordered)
        report.anchors.extend(
            AnchorCheck(header.height, a.chain, a.height, a.block_hash, a.main_type,
                        verify_proof(a.leaf, proof, header.anchor_root))
            for a, proof in anchor_proofs(self.pending))
        self.pending = []

    def _news(self, out: Outcome, settled: Sequence[Trade]) -> dict[str, MainNews]:
        """What the main chain's round meant for each VPP: the ids of the committed block's
        trades with a party there (its collaborative block), the facts the main chain proved
        of its nodes, and the Wh they sold and bought across VPPs."""
        by_vpp: dict[str, list[bytes]] = {}
        if out.block is not None:  # its trades, as the main chain's record decoded them
            for t in self.main.recent_trades:
                for vpp in dict.fromkeys((t.trade.buyer_vpp, t.trade.seller_vpp)):
                    by_vpp.setdefault(vpp, []).append(t.trade.id_bytes)
        traded: dict[str, dict[str, tuple[int, int]]] = {}
        for node, moved in tally((t.seller, t.buyer, t.wh) for t in settled).items():
            traded.setdefault(home_of(node), {})[node] = moved
        across = cross_wh_by_vpp((t.buyer_vpp, t.seller_vpp, t.wh) for t in settled)
        height = out.block.header.height if out.block is not None else None
        return {chain: inbox.news(main_height=height, trade_ids=tuple(by_vpp.get(chain, ())),
                                  traded=traded.get(chain, {}), cross_wh=across.get(chain, 0))
                for chain, inbox in self.inboxes.items()}

    def _main_balances(self, ended: list[Ended]) -> list[AccountBalance]:
        """The main shard's accounts, and the grid's: the sum of every shard's share."""
        here = self.main_shard.balances()
        grid = sum_balances([here.pop(GRID), *(e.grid_share for e in ended)])
        return balances_of({**here, GRID: grid})

    def _check_conservation(self, rnd: int, ended: list[Ended]) -> None:
        # Money moves between accounts only (the grid's included); energy lives one period:
        # every account is empty when the period closes. From the shards' own totals.
        now = sum_balances([self.main_shard.totals(), *(e.totals for e in ended)])
        if now != self.totals:
            raise RunError(
                f"round {rnd}", f"money/energy not conserved: totals {now} != {self.totals}")


def node_names(topology: Topology) -> list[str]:
    """Every node with an account: the VPPs' nodes in VPP order, then the grid nodes."""
    return [*(n for v in range(topology.vpps) for n in vpp_layout(topology, v).nodes),
            *grid_names(topology)]


def opening_balances(cfg: Config) -> dict[str, tuple[int, int]]:
    """Before round 0: every node's starting money, no energy, and the grid's account at zero."""
    money = cfg.workload.initial_money_cents
    return {**{n: (money, 0) for n in node_names(cfg.topology)}, GRID: (0, 0)}


def opening_ledger(cfg: Config, keys: KeyRing) -> Settlement:
    """The opening balances as one undivided ledger: what ``mlts verify`` replays the run's
    settlement on, independently of the run's shards."""
    return Settlement(keys, opening_balances(cfg))
