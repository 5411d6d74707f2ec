"""Everything one side chain owns and does in a round, wherever it lives (docs/architecture.md
section 7): its chain (store, credit book, meters, committee), its VPP's accounts (a
``ChainAccounts`` shard), its trading, consensus, record, intra-VPP settlement, collaborative
block, the period's close, its credit and audits -- each call reporting what happened as
facts (``mlts.report``), which the runtime's collector turns into rows.

A round is four calls, so a runtime can keep the service on the host that runs the chain
and send it only what the main chain decided:

1. :meth:`SideService.open` -- the period opens, the traders post their orders and the VPP's
   book matches them; returns the orders the VPP forwards to the cross-VPP book, which needs
   nothing else of the side chain's round (so the book and the main chain's instance may run
   while the side chains' contracts and consensus do).
2. :meth:`SideService.recorded` -- the intra-VPP block's consensus job
   (:meth:`SideService.consensus_job`: the fills signed as contracts first; run by the caller,
   wherever it runs the chain's nodes) committed, settled and recorded; returns the facts
   written before the main block (``Traded``).
3. :meth:`SideService.close` -- given what the main chain's round meant for this VPP
   (``MainNews``: its collaborative block's trades, the complaints and the settled, active
   and offending parties the main chain proved, the Wh its nodes traded across VPPs): the
   collaborative block, the grid's close, the physical-balance check, the VPP's market close,
   its credit and audits (``Closed``).
4. :meth:`SideService.end` -- after the main chain's audits (whose fines reach a VMC's account
   here through the shard's two-phase step): the period's balances and the shard's totals
   (``Ended``).

Between 2 and 3 the shard answers the main chain's two-phase steps (``ChainAccounts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlts_ray.config import Config
from mlts_ray.consensus.credit import RoundFacts
from mlts_ray.errors import RunError
from mlts_ray.ledger.chain_accounts import ChainAccounts, FanOut, Ledgers, Shard, one_by_one
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.settlement import GRID, Balance, Settlement
from mlts_ray.ledger.tx import Order, Trade
from mlts_ray.mlts.anchoring import Anchor, anchor_of
from mlts_ray.mlts.chain import bump
from mlts_ray.mlts.consensus_round import Job, Outcome, Runner, with_trades
from mlts_ray.mlts.metering import tally
from mlts_ray.mlts.report import MarketClose, MeterClose, Report, balances_of
from mlts_ray.mlts.side import SideChain
from mlts_ray.mlts.strategies import Cast, Strategies
from mlts_ray.names import side_chain
from mlts_ray.mlts.trading import Booked, TradingResult, book, sign_fills


@dataclass(frozen=True, slots=True)
class Opened:
    """A side chain's answer to the period's opening, where the service is remote."""

    chain: str
    forwarded: tuple[Order, ...]
    report: Report = field(default_factory=Report)  # nothing yet


@dataclass(frozen=True, slots=True)
class Traded:
    chain: str
    report: Report  # consensus, messages, blocks, trades


@dataclass(frozen=True, slots=True)
class MainNews:
    """What the main chain's round meant for one VPP."""

    main_height: int | None = None  # the committed main block, if it has this VPP's trades
    # that block's trades with a party here, by id, in order: all the collaborative block
    # lists (the trades themselves stay on the main chain)
    trade_ids: tuple[bytes, ...] = ()
    complaints: tuple = ()  # filed against this VPP's nodes off its chain, in filing order
    active: frozenset[str] = frozenset()
    settled: Mapping[str, int] = field(default_factory=dict)  # in first-settled order
    trade_offences: Mapping[str, int] = field(default_factory=dict)
    traded: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # Wh sold, bought
    cross_wh: int = 0  # settled cross-VPP Wh with a party here (each trade once)


@dataclass(frozen=True, slots=True)
class Closed:
    chain: str
    anchor: Anchor | None  # the collaborative block the next main block anchors
    report: Report  # blocks, messages (collaborative), energy, market, credits, audits


@dataclass(frozen=True, slots=True)
class Ended:
    chain: str
    report: Report  # balances: this VPP's accounts
    grid_share: Balance  # this shard's share of the grid's account
    totals: Balance  # the shard's money and energy, the grid's share included


class FactsInbox:
    """What the main chain proves of one VPP's nodes in a round (settled, active, offending,
    complained of), collected where the main chain runs and sent to the side chain in its
    ``MainNews``: it stands in for the side chain as ``MainChain.chain_for`` a party, so
    ``Chain.complain`` files a complaint here with the VPP's VMC (``client``) signing."""

    def __init__(self, chain: str, client: str, identities: Mapping[str, Identity]) -> None:
        self.chain, self.client, self.identities = chain, client, identities
        self.facts = RoundFacts(roles={})

    def begin(self) -> None:
        self.facts = RoundFacts(roles={})

    def news(self, **rest: Any) -> MainNews:
        f = self.facts
        return MainNews(complaints=tuple(f.complaints), active=frozenset(f.active),
                        settled=dict(f.settled), trade_offences=dict(f.trade_offences), **rest)


class SideService:
    def __init__(self, cfg: Config, v: int, identities: Mapping[str, Identity],
                 keys: KeyRing, strategies: Mapping[str, Strategies]) -> None:
        self.cfg = cfg
        self.side = SideChain(cfg, v, identities, keys, strategies)
        self.chain = self.side.chain
        # the VPP's accounts at the start: its nodes' opening money, no share of the grid's
        money = cfg.workload.initial_money_cents
        self.shard = ChainAccounts(self.chain, Settlement(
            keys, {**dict.fromkeys(self.side.names, (money, 0)), GRID: (0, 0)}))
        # the chain's own work goes through the shard's locks: an account a main-chain step
        # holds refuses it (steps and these calls never overlap; the check says so)
        self.ledger = Ledgers(keys, {}, {self.chain: self.shard})
        self.intra: tuple[Trade, ...] = ()  # this round's settled intra-VPP trades
        self.job: Job | None = None  # this round's consensus job, its trading still to finish
        self.booked: Booked | None = None  # this round's book, its fills not yet contracts
        self.trading: TradingResult | None = None

    def open(self, rnd: int) -> tuple[Order, ...]:
        """The period opens, the traders post their orders and the book matches them: the
        orders this VPP forwards to the cross-VPP book. The fills become contracts in
        :meth:`consensus_job`, which the cross-VPP book does not wait for (a fourth of a
        host's trading at 100 VPPs: the book starts that much sooner)."""
        self.ledger.forget_before(rnd)  # no trade of an earlier round can settle from now on
        self.side.begin(rnd)
        self.side.open_period(self.ledger)
        spec = self.side.trading_spec(rnd, self.ledger)
        self.job = self.side.job(rnd, [], trading=spec)
        self.booked = book(self.cfg.workload, self.cfg.experiment.seed, spec, rnd,
                           self.side.identities.__getitem__, self.side.keys)
        return tuple(self.booked.forwarded)

    def consensus_job(self) -> Job:
        """The chain's consensus job for the caller to run: the book's fills signed as
        contracts by their parties, then resubmissions, as ``trading.trade_round`` would."""
        self.trading = sign_fills(self.booked, self.side.identities.__getitem__)
        return with_trades(self.job, self.trading)

    def recorded(self, rnd: int, out: Outcome) -> Traded:
        """The job's outcome committed, settled and recorded."""
        report = Report()
        out.trading = self.trading
        self.side.apply_trading(out.trading)
        self.side.record(out, out.trading.trades, self.ledger, report)
        self.intra = tuple(report.settled())
        return Traded(self.chain, report)

    def close(self, rnd: int, news: MainNews) -> Closed:
        side, report = self.side, Report()
        self._take(news)
        anchor = None
        if news.main_height is not None and news.trade_ids:
            anchor = anchor_of(side.collaborative(rnd, news.main_height, news.trade_ids,
                                                  report))
        traded = tally((t.seller, t.buyer, t.wh) for t in self.intra)
        for node, (sold, bought) in news.traded.items():
            mine = traded.get(node, (0, 0))
            traded[node] = (mine[0] + sold, mine[1] + bought)
        side.close_period(rnd, self.ledger, traded, report)
        check_balance(rnd, report.energy)
        if report.energy:  # a VPP without traders has no market
            report.market.append(MarketClose(self.chain, self.intra, news.cross_wh,
                                             tuple(report.energy)))
        side.credit(rnd, self.ledger, report)
        return Closed(self.chain, anchor, report)

    def end(self, rnd: int) -> Ended:
        accounts = self.shard.ledger
        balances = accounts.balances()
        grid = balances.pop(GRID)
        return Ended(self.chain, Report(balances=balances_of(balances)), grid,
                     accounts.totals())

    def _take(self, news: MainNews) -> None:
        """The main chain's facts about this VPP's nodes join the chain's own, after them."""
        facts = self.side.facts
        facts.complaints.extend(news.complaints)
        facts.active |= news.active
        for node, n in news.settled.items():
            bump(facts.settled, node, n)
        for node, n in news.trade_offences.items():
            bump(facts.trade_offences, node, n)


def check_balance(rnd: int, closes: Sequence[MeterClose]) -> None:
    """Each node's metered position went somewhere: to buyers, or to the grid."""
    for m in closes:
        r = m.reading
        net = r.generation_wh - r.consumption_wh - r.charge_wh + r.discharge_wh
        moved = m.sold_wh - m.bought_wh + m.export_wh - m.import_wh
        if net != r.net_wh or net != moved:
            raise RunError(f"round {rnd} node {m.node}",
                           f"physical balance broken: metered {net} Wh, but it sold, bought "
                           f"and exchanged with the grid {moved} Wh net")


class Sides(Protocol):
    """Every side chain's service, wherever the runtime keeps them; each call covers every
    side chain and answers in VPP order. ``open`` and ``record`` start their work and return
    what waits for it: the caller starts the side chains' consensus before it waits for the
    forwarded orders (a remote service runs the two in order, with no round trip between),
    and works while the consensus runs."""

    shards: Mapping[str, Shard]  # each VPP's accounts, for the main chain's two-phase steps
    fan_out: FanOut  # how those shards are asked together

    def open(self, rnd: int) -> Callable[[], list[tuple[Order, ...]]]: ...
    def record(self, rnd: int) -> Callable[[], list[Traded]]: ...
    def close(self, rnd: int, news: Mapping[str, MainNews]) -> list[Closed]: ...
    def end(self, rnd: int) -> list[Ended]: ...


def run_consensus(services: Sequence[SideService], runner: Runner) -> list[Outcome]:
    """The services' consensus jobs (each its fills signed as contracts first) run together by
    ``runner``, which may run them in parallel: the one way a side chain's consensus runs,
    wherever its service lives."""
    return list(runner([s.consensus_job() for s in services]))


class LocalSides:
    """The services in this process; ``runner`` runs their consensus jobs (together, so a
    runtime may run them in parallel). Each call's work on a service goes through ``_timed``,
    which a runtime that measures the services' part of a round overrides (``runtime.rounds``):
    the part a runtime that keeps them on hosts runs in parallel."""

    def __init__(self, cfg: Config, identities: Mapping[str, Identity], keys: KeyRing,
                 runner: Runner, cast: Cast) -> None:
        self.services = {}
        for v in range(cfg.topology.vpps):
            chain = side_chain(v)
            self.services[chain] = SideService(cfg, v, identities, keys, cast.strategies(chain))
        self.shards = {chain: s.shard for chain, s in self.services.items()}
        self.fan_out = one_by_one
        self.runner = runner

    @property
    def chains(self) -> dict[str, SideChain]:
        return {chain: s.side for chain, s in self.services.items()}

    def open(self, rnd: int) -> Callable[[], list[tuple[Order, ...]]]:
        forwarded = [self._timed(s.open, rnd) for s in self.services.values()]
        return lambda: forwarded

    def record(self, rnd: int) -> Callable[[], list[Traded]]:
        """The consensus jobs, run together by the runner when the caller asks for them (after
        the main chain's instance, here: in one process there is nothing to overlap)."""
        return lambda: self._timed(self._record, rnd)

    def close(self, rnd: int, news: Mapping[str, MainNews]) -> list[Closed]:
        return [self._timed(s.close, rnd, news.get(chain, MainNews()))
                for chain, s in self.services.items()]

    def end(self, rnd: int) -> list[Ended]:
        return [self._timed(s.end, rnd) for s in self.services.values()]

    def _record(self, rnd: int) -> list[Traded]:
        services = list(self.services.values())
        outs = run_consensus(services, self.runner)
        return [s.recorded(rnd, out) for s, out in zip(services, outs, strict=True)]

    def _timed(self, call: Callable[..., Any], *args: Any) -> Any:
        return call(*args)
