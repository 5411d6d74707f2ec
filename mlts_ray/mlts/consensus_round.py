"""One consensus round on one chain: build the instance, run it on the simulated network, and
read what happened (the certificate the chain stores, what the network carried, the
view-change statements and proofs of the round's record, and each node's reports as a
``Trace``) from the nodes' observations. Used by every chain; credit is read from the chain's
record of it (``consensus.conduct``), not here; which nodes were honest, and so safety and
latency, is the collector's oracle's to judge (``results.oracle``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlts_ray.config import Config
from mlts_ray.consensus.byzantine import wrap
from mlts_ray.consensus.catchup import CatchUp
from mlts_ray.consensus.checks import check_certificate, know_trades
from mlts_ray.consensus.conduct import SentViewChanges
from mlts_ray.consensus.evidence import DoubleVote, Equivocation, offender
from mlts_ray.consensus.instance import (
    Accepted,
    Answered,
    Committed,
    Evidence,
    GaveUp,
    Instance,
    Proposed,
    TimeoutSeen,
    ViewEntered,
)
from mlts_ray.consensus.messages import Vote, commit_digest
from mlts_ray.consensus.observer import Observer
from mlts_ray.consensus.pbft import Replica, Start
from mlts_ray.consensus.timing import Timing, timed
from mlts_ray.ledger.block import ZERO_HASH, Block, BlockKind
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.mlts.trading import TradingResult, TradingSpec, trade_round
from mlts_ray.net.network import LinkModel, Nics, PartitionWindow, ms_to_us
from mlts_ray.net.node import Node, Ready
from mlts_ray.net.sim import ChainSim, PhaseStats

PHASES = ("request", "pre-prepare", "prepare", "commit", "reply", "certificate",
          "view-change", "new-view", "fetch", "trades", "retransmit")


@dataclass(frozen=True, slots=True)
class Trace:
    """What each node reported of an instance, unjudged: the first proposal any primary made
    (even one a faulty wrapper then withheld), each node's first commit, the highest view it
    entered or gave up in, the misbehaviour it reported, whether the client got its answer.
    Which of these nodes were honest is for the collector's oracle (``results.oracle``), the
    only reader of behaviour labels, to say."""

    proposed_us: int | None = None
    commits: Mapping[int, tuple[int, bytes]] = field(default_factory=dict)  # node -> (time, digest)
    views: Mapping[int, int] = field(default_factory=dict)  # node -> highest view seen
    reports: tuple[tuple[int, Evidence], ...] = ()  # (reporting node, evidence), in order
    answered: frozenset[int] = frozenset()
    gave_up: frozenset[int] = frozenset()


@dataclass(slots=True)
class Outcome:
    """What one instance produced: what the chain knows (the decided block, its certificate,
    who holds it, the proofs and view-change statements for its record), what the network
    carried, and each node's reports (``trace``). Nothing here is filtered by who is honest."""

    inst: Instance
    block: Block | None
    view: int | None  # the deciding view (None: no decision)
    phases: dict[str, PhaseStats]
    signs: int
    verifies: int
    delivered: int
    trace: Trace = field(default_factory=Trace)
    # the client's request (round start) -> the q-th member's commit: the round time members
    # bound their next primary by (Chain.view_timeout_us)
    quorum_commit_us: int | None = None
    proven: set[str] = field(default_factory=set)
    wall_ms: float | None = None  # set by the runtime that ran it (never read in here)
    trading: TradingResult | None = None  # the side chain's trading, when the job had one
    certificate: object = None  # the decided block's commit certificate (messages.Certificate)
    holders: frozenset[str] = frozenset()  # every node that said it holds the decided block
    proofs: tuple[bytes, ...] = ()  # one canonical proof per convicted offender, for the chain
    timeouts: tuple = ()  # every signed view-change statement some member sent (Timeout)

    @property
    def decided(self) -> bool:
        return self.block is not None


@dataclass(frozen=True, slots=True)
class Job:
    """One consensus instance to run: everything a runner needs besides the config."""

    inst: Instance
    wrappers: Mapping[str, type]  # node -> its consensus wrapper (``consensus.byzantine``)
    trades: tuple[bytes, ...]
    inter: bool
    trading: TradingSpec | None = None  # a side chain's trading, to run first, where it runs


Runner = Callable[[Sequence[Job]], Iterable[Outcome]]  # outcomes in job order


@dataclass(slots=True)
class Run:
    """One job on its network, ready to run: the one instance runner every runtime uses is
    :func:`prepare`, then the windows (``sim.run_windows`` here, or a runtime's own loop over
    hosts holding the nodes), then :func:`finish`."""

    job: Job  # with the trades its trading produced, and no trading left to do
    sim: ChainSim
    width: int  # the window: ``window_width``
    trading: TradingResult | None


def prepare(
    cfg: Config, job: Job, identity_of: Callable[[str], Identity], keys: KeyRing,
    with_nodes: bool = True,
) -> Run:
    """The job's trading (if any), its network and its start; ``with_nodes=False`` when the
    nodes live in hosts elsewhere (the runtime delivers each window's events to them)."""
    job, result = trade_first(cfg, job, identity_of, keys)
    nodes = None
    if with_nodes:
        n = len(job.inst.names)
        built = build_nodes(job.inst, range(n), identity_of, job.wrappers,
                            ms_to_us(cfg.faults.delay_ms))
        nodes = [built[i] for i in range(n)]
    sim = new_sim(cfg, job.inst, job.inter, nodes)
    start(sim, job.inst, job.trades)
    return Run(job, sim, window_width(sim, job.inst), result)


def trade_first(
    cfg: Config, job: Job, identity_of: Callable[[str], Identity], keys: KeyRing
) -> tuple[Job, TradingResult | None]:
    """The job's trading alone (if any): the job left for the instance, with the trades
    trading produced and no trading to do, and the trading's result. Its forwarded orders
    are known here, before the chain's consensus runs."""
    if job.trading is None:
        return job, None
    result = trade_round(cfg.workload, cfg.experiment.seed, job.trading, job.inst.round,
                         identity_of, keys)
    return with_trades(job, result), result


def with_trades(job: Job, result: TradingResult) -> Job:
    """The job left for the instance once its trading is done: the trades it produced
    (:func:`for_trades`), and no trading to do."""
    inst, trades = for_trades(job.inst, result.trades)
    return Job(inst, job.wrappers, trades, job.inter)


def finish(run: Run) -> Outcome:
    """What the run produced, once its last window is done."""
    out = read_outcome(run.job.inst, run.sim)
    out.trading = run.trading
    return out


def run_job(
    cfg: Config, job: Job, identity_of: Callable[[str], Identity], keys: KeyRing
) -> Outcome:
    """A job's trading (if any), then its instance, in this process."""
    run = prepare(cfg, job, identity_of, keys)
    run.sim.run_windows(run.width)
    return finish(run)


def to_wire(out: Outcome) -> Outcome:
    """The outcome as a host sends it back: without what the caller holds (its own instance)
    or rebuilds (the decided block, whose bytes the certificate carries) -- each would
    otherwise be pickled, shipped and unpickled only to be thrown away."""
    return dataclasses.replace(out, inst=None, block=None)


def from_wire(out: Outcome, inst: Instance) -> Outcome:
    """``to_wire`` undone on the caller's side: the same outcome ``run_job`` gave there."""
    out.inst = inst
    if out.certificate is not None:
        out.block = Block.decode(out.certificate.block)  # as read_outcome decoded it
    return out


def local_runner(cfg: Config, identities: Mapping[str, Identity], keys: KeyRing) -> Runner:
    """Runs jobs one after the other in this process (untimed: timing is the runtime's)."""
    return lambda jobs: [run_job(cfg, job, identities.__getitem__, keys) for job in jobs]


def build_nodes(
    inst: Instance,
    indices: Iterable[int],
    identity_of: Callable[[str], Identity],
    wrappers: Mapping[str, type],
    delay_us: int,
) -> dict[int, Node]:
    """The state machines of nodes ``indices`` of ``inst``, faulty ones wrapped. The nodes of
    a wrapper that colludes (``colludes = True``) know each other: its coalition."""
    coalitions: dict[type, set[int]] = {}
    for i, n in enumerate(inst.names):
        if getattr(wrappers.get(n), "colludes", False):
            coalitions.setdefault(wrappers[n], set()).add(i)
    member = set(inst.members)
    nodes: dict[int, Node] = {}
    for i in indices:
        name = inst.names[i]
        me = identity_of(name)
        honest = Replica(me, i, inst) if i in member else Observer(me, i, inst)
        if i in inst.lagging:
            honest = CatchUp(honest, me, i, inst)
        wrapper = wrappers.get(name)
        nodes[i] = wrap(wrapper, honest, me=me, inst=inst, delay_us=delay_us,
                        colluders=frozenset(coalitions.get(wrapper, ())))
    return nodes


def partitions(cfg: Config, inst: Instance) -> list[PartitionWindow]:
    """``faults.partitions`` that apply to this round, in this chain's node indices."""
    out = []
    for p in cfg.faults.partitions:
        if p.rounds and inst.round not in p.rounds:
            continue
        group_of = {inst.index_of[n]: g for g, group in enumerate(p.groups)
                    for n in group if n in inst.index_of}
        if group_of:
            out.append(PartitionWindow(ms_to_us(p.start_ms), ms_to_us(p.end_ms), group_of))
    return out


def new_sim(cfg: Config, inst: Instance, inter: bool, nodes: Sequence[Node] | None) -> ChainSim:
    """The instance's network; ``nodes=None`` when the nodes run in hosts elsewhere."""
    net = cfg.network
    return ChainSim(
        inst.chain, nodes, LinkModel.from_config(net, inter, partitions(cfg, inst)),
        cfg.experiment.seed, ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms),
        epoch=inst.round, n_nodes=len(inst.names), nics=Nics.for_names(net, inst.names),
        on_sent=SentViewChanges(inst.members),  # the round's record: what went on the wire
    )


def window_width(sim: ChainSim, inst: Instance) -> int:
    """The lookahead: no message arrives sooner than the link floor, no timer fires sooner
    than the view timeout."""
    return max(1, min(sim.link.min_us, inst.view_timeout_us))


def start(sim: ChainSim, inst: Instance, trades: Sequence[bytes]) -> None:
    """The round starts: the client sends its request, observers arm their fetch timers and
    lagging nodes ask for the block they missed."""
    sim.input(inst.client, Start(tuple(trades)), 0)
    empty = Start(())
    for i in sorted(set(inst.observers) | inst.lagging):
        if i != inst.client:
            sim.input(i, empty, 0)


def run_instance(
    cfg: Config,
    inst: Instance,
    identities: Mapping[str, Identity],
    wrappers: Mapping[str, type],
    trades: Sequence[bytes],
    inter: bool,
) -> Outcome:
    """Run one block's consensus among ``inst.names`` in this process, window by window."""
    return run_job(cfg, Job(inst, wrappers, tuple(trades), inter), identities.__getitem__,
                   inst.keys)


def read_outcome(inst: Instance, sim: ChainSim) -> Outcome:
    """What the instance produced, read from the nodes' observations."""
    observations = sim.sorted_observations()
    trace = _trace(observations)
    # every view change any member put on the wire (consensus.conduct.SentViewChanges): what
    # the round's record holds (each statement is signed and checked again where it is used)
    statements = [ob.value.statement for ob in observations if isinstance(ob.value, TimeoutSeen)]
    block = view = certificate = quorum = None
    holders: frozenset[str] = frozenset()
    proven = _first_proven(inst, observations)
    if proven is not None:
        # The chain appends the block the first valid commit certificate proves, as any node
        # holding that certificate would: no tally over nodes known to be honest.
        certificate, view = proven.proof, proven.view
        block = Block.decode(proven.block)
        quorum = quorum_commit(inst, trace.commits)
        holders = frozenset(inst.names[ob.node] for ob in observations
                            if isinstance(ob.value, Committed) and ob.value.digest == proven.digest)
    convicted = _proven(inst, observations, certificate)
    return Outcome(
        inst, block, view, sim.phases, sim.signs, sim.verifies, sim.delivered, trace, quorum,
        set(convicted), certificate=certificate, holders=holders,
        proofs=tuple(convicted[n] for n in sorted(convicted)), timeouts=tuple(statements),
    )


def quorum_commit(inst: Instance, commits: Mapping[int, tuple[int, bytes]]) -> int | None:
    """When the q-th committee member of ``commits`` (node -> first commit's time, digest)
    committed; None with fewer than q."""
    members = set(inst.members)
    times = sorted(t for i, (t, _) in commits.items() if i in members)
    return times[inst.q - 1] if len(times) >= inst.q else None


def _trace(observations: Sequence) -> Trace:
    """Each node's reports, in observation order (the first commit of each node)."""
    commits: dict[int, tuple[int, bytes]] = {}
    views: dict[int, int] = {}
    reports, answered, gave_up = [], set(), set()
    for ob in observations:
        v = ob.value
        if isinstance(v, Committed):
            commits.setdefault(ob.node, (ob.time_us, v.digest))
        elif isinstance(v, (ViewEntered, GaveUp)):
            views[ob.node] = max(views.get(ob.node, 0), v.view)
            if isinstance(v, GaveUp):
                gave_up.add(ob.node)
        elif isinstance(v, Evidence):
            reports.append((ob.node, v))
        elif isinstance(v, Answered):
            answered.add(ob.node)
    proposed = min((ob.time_us for ob in observations if isinstance(ob.value, Proposed)),
                   default=None)
    return Trace(proposed, commits, views, tuple(reports), frozenset(answered),
                 frozenset(gave_up))


def _first_proven(inst: Instance, observations: Sequence) -> Committed | None:
    """The commit certificate the chain stores: the deciding view's primary's, which it sends
    to the nodes outside the committee (so, as Tendermint's LastCommit, its commits are the
    votes that reached the proposer in time); if that primary holds none, the first valid one
    any node holds (in time, then node)."""
    first = None
    for ob in observations:
        v = ob.value
        if isinstance(v, Committed) and v.proof is not None:
            done = check_certificate(inst, v.proof, Ready())
            if done is None:
                continue
            if ob.node == inst.primary(done.view):
                return done
            first = first or done
    return first


def _proven(inst: Instance, observations: Sequence, certificate: object) -> dict[str, bytes]:
    """Offenders convicted by a proof (``consensus.evidence.offender``), whoever reported it,
    each with the canonical proof that convicts it. The proofs: those nodes made, two signed
    pre-prepares for one view that different nodes accepted, and a node's conflicting vote
    beside the same signer's vote for the decision in the decision's own certificate or
    prepared proofs. Nothing here trusts a report."""
    keys, proofs = inst.keys, []
    decided = certificate.commits[0].digest if certificate is not None else None
    first_proposal: dict[tuple[str, int], Vote] = {}
    halves: list[Vote] = []
    decision: dict[tuple[str, int, int], Vote] = {}  # (signer, kind, view) -> its vote
    for vote in getattr(certificate, "commits", ()):
        decision[(vote.sender, vote.kind, vote.view)] = vote
    for ob in observations:
        v = ob.value
        if isinstance(v, Evidence) and v.proof is not None:
            (halves if isinstance(v.proof, Vote) else proofs).append(v.proof)
        elif isinstance(v, Accepted):
            held = first_proposal.setdefault((v.vote.sender, v.vote.view), v.vote)
            if held.digest != v.vote.digest:
                proofs.append(Equivocation(held, v.vote))
        elif isinstance(v, Committed) and v.digest == decided:
            for vote in v.prepares:
                decision.setdefault((vote.sender, vote.kind, vote.view), vote)
    for half in halves:
        other = decision.get((half.sender, half.kind, half.view))
        if other is not None:
            proofs.append(DoubleVote(half, other))
    convicted: dict[str, bytes] = {}
    for proof in proofs:  # the first proof against each offender goes on the chain
        who = offender(proof, keys, inst)
        if who is not None and who not in convicted:
            convicted[who] = proof.encode()
    return convicted


def build_instance(
    cfg: Config, chain: str, height: int, round_: int, kind: BlockKind, prev_hash: bytes,
    anchor_root: bytes, names: Sequence[str], members: Sequence[str], client: str,
    keys: KeyRing, certify: bool, inter: bool = False, lagging: Iterable[str] = (),
    prev_certificate: object = None, credit_root: bytes = ZERO_HASH,
    evidence: Sequence[bytes] = (), bound_us: int | None = None,
) -> Instance:
    """``lagging``: nodes without the chain's last block, which ``prev_certificate`` proves;
    ``credit_root``: the chain's credit table now, and ``evidence``: the proofs of misbehaviour
    not yet on the chain -- both of which the block must carry; ``bound_us``: performance
    accountability's bound on the first view timeout from the chain's recent rounds (None:
    none yet). With ``view_timeout_ms = "auto"`` the timeout follows the request
    (:func:`for_trades`)."""
    index = {n: i for i, n in enumerate(names)}
    member_idx = tuple(index[m] for m in members)
    observers = tuple(i for i in range(len(names)) if i not in set(member_idx)) if certify else ()
    behind = frozenset(index[n] for n in lagging) if prev_certificate is not None else frozenset()
    last_commit = commit_digest(prev_certificate.commits) if prev_certificate else ZERO_HASH
    inst = Instance(
        chain, height, round_, kind, prev_hash, anchor_root, tuple(names), member_idx, observers,
        index[client], 0, cfg.consensus.max_view_changes,
        keys, behind, prev_certificate, last_commit, credit_root, tuple(evidence),
        chain_timing(cfg, names, inter, bound_us), cfg.consensus.proposal,
        cfg.consensus.dissemination, cfg.consensus.gossip_fanout, cfg.experiment.seed,
    )
    return timed(inst, ())  # an empty request's timeout, until for_trades sets the real one


def chain_timing(cfg: Config, names: Sequence[str], inter: bool, bound_us: int | None) -> Timing:
    """What members know to set the round's first view timeout (``consensus.timing``): the
    chain's link classes and CPU costs for ``"auto"``, or the configured number (``bound_us``
    clipped to [min_view_timeout_ms, view_timeout_ms])."""
    c, net = cfg.consensus, cfg.network
    link = LinkModel.from_config(net, inter)
    hop = max(link.min_us, round(link.base_us + 3 * link.jitter_us))  # the slow end of a hop
    nics = Nics.for_names(net, names)
    fixed = None if c.view_timeout_ms == "auto" else ms_to_us(c.view_timeout_ms)
    timing = Timing(hop, nics.up_bps, nics.down_bps, ms_to_us(net.sign_cost_ms),
                    ms_to_us(net.verify_cost_ms), c.timeout_margin, bound_us, fixed,
                    ms_to_us(c.min_view_timeout_ms),
                    ms_to_us(net.rto_ms) if net.loss and net.transport == "reliable" else 0)
    return timing


def for_trades(inst: Instance, trades: Sequence[SignedTrade]) -> tuple[Instance, tuple[bytes, ...]]:
    """The instance for a request of ``trades`` (its first view timeout follows the request
    under ``"auto"``), and the trades' bytes, known to it (``checks.know_trades``)."""
    inst = timed(inst, [t.encode() for t in trades])
    return inst, know_trades(inst, trades)
