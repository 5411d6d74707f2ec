"""Byzantine consensus scenarios as data (etcd-raft ``testdata`` style).

Each ``tests/scenarios/*.toml`` file describes one scenario; this runner parametrizes over them.

Instance scenarios (the default ``mode = "instance"``) run one block's consensus through
``build_instance`` / ``run_instance`` with faulty nodes placed exactly:

    description = "..."
    algorithm = "pbft"              # pbft | dce-pbft
    nodes = 4                       # N; names vpp-0/n-000 ... in primary order
    committee = 4                   # dce-pbft only: k, the members are the first k names
    seed = 7                        # keys, network randomness (default 7)
    trades = 4                      # signed trades in the client's request (default 4)
    client = 3                      # node index of the client (default: the last node, like a VMC)
    overrides = ["network.loss=0.1"]  # build_config --set overrides (optional)

    [faults]                        # position -> behaviour; position is "primary" (members[0]),
    primary = "silent"              # "member-<i>" or "<i>" (members[i]), or "node-<i>" (names[i])

    [expect]                        # every key is one check (see CHECKS below)
    committed = true

    [bug]                           # optional: what should hold but does not (a strict xfail)
    reason = "BUG: ..."
    all_honest_committed = true

Simulation scenarios (``mode = "simulation"``) run ``Rounds.local(cfg).rows(r)`` for every
round of ``build_config(config)`` and check the ``consensus`` rows.

Every instance scenario also checks the invariants no fault may break: the safety checker tells
the truth (``safety_violation`` is set exactly when two honest nodes committed different digests --
never a wrong "ok", never a false alarm), no honest node commits twice, the decided block is one an
honest node committed, and a decision happens within ``max_view_changes``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import mlts_ray.mlts.consensus_round as consensus_round
from mlts_ray.config import Config, build_config
from mlts_ray.consensus.instance import Committed, Evidence, fault_bound
from mlts_ray.ledger import BlockKind, Identity, KeyRing, Trade
from mlts_ray.ledger.block import ZERO_HASH
from mlts_ray.mlts.consensus_round import Outcome, build_instance, run_instance
from mlts_ray.population.registry import consensus_faulty, wrappers
from mlts_ray.results.oracle import Judged, judge
from mlts_ray.runtime.rounds import Rounds

CONSENSUS_BEHAVIOURS = consensus_faulty()
SCENARIOS = Path(__file__).parent / "scenarios"
CHAIN = "vpp-0"

# --- running one instance ------------------------------------------------------------------------


def node_names(n: int) -> tuple[str, ...]:
    return tuple(f"{CHAIN}/n-{i:03d}" for i in range(n))


def make_trades(names: tuple[str, ...], ids: Mapping[str, Identity], count: int) -> list[bytes]:
    """``count`` distinct intra-VPP trades (node i buys from node i+1), both signatures valid."""
    out = []
    for i in range(count):
        buyer, seller = names[i % len(names)], names[(i + 1) % len(names)]
        trade = Trade(CHAIN, 0, buyer, seller, CHAIN, CHAIN, 100 + i, 10, f"b{i}", f"s{i}")
        out.append(trade.sign(ids[buyer], ids[seller]).encode())
    return out


class _CapturingSim(consensus_round.ChainSim):
    """The real ChainSim; only remembers itself so a test can read every node's observations."""

    last: list[consensus_round.ChainSim] = []

    def __post_init__(self) -> None:
        super().__post_init__()
        _CapturingSim.last.append(self)


@contextmanager
def capture_sims() -> Iterator[list[consensus_round.ChainSim]]:
    _CapturingSim.last = []
    with mock.patch.object(consensus_round, "ChainSim", _CapturingSim):
        yield _CapturingSim.last


@dataclass(repr=False)
class Run:
    cfg: Config
    outcome: Outcome
    names: tuple[str, ...]
    members: tuple[str, ...]
    behaviours: dict[str, str]
    commits: dict[str, list[bytes]]  # honest node -> digests it reported committed (in order)
    evidence: list[tuple[int, Evidence]]  # (reporting node, evidence), every node
    observations: list[Any]  # the ChainSim's stamped observations, every node

    @property
    def honest(self) -> list[str]:
        return [n for n in self.names if self.behaviours.get(n, "honest") not in CONSENSUS_BEHAVIOURS]

    @property
    def faulty(self) -> set[str]:
        return {n for n, b in self.behaviours.items() if b in CONSENSUS_BEHAVIOURS}

    @property
    def judged(self) -> Judged:
        """The outcome as the collector's oracle judges it with the true behaviours."""
        return judge(self.outcome, self.behaviours)

    @property
    def reports(self) -> list[Evidence]:
        """The evidence honest nodes reported (the run's pooled evidence)."""
        honest = {self.names.index(n) for n in self.honest}
        return [e for node, e in self.evidence if node in honest]

    @property
    def honest_digests(self) -> set[bytes]:
        return {d for ds in self.commits.values() for d in ds}

    def __repr__(self) -> str:
        return f"Run({self.describe()})"

    def describe(self) -> str:
        o, j = self.outcome, self.judged
        per_node = {n.rsplit("/", 1)[1]: [d.hex()[:8] for d in self.commits.get(n, [])]
                    for n in self.honest}
        return (f"decided={o.decided} view={j.view} views={j.views} "
                f"safety_violation={j.safety_violation} finality_us={j.finality_us} "
                f"gave_up={j.gave_up} proven={sorted(o.proven)} honest commits={per_node}")


def run_one(
    cfg: Config, algorithm: str, n: int, k: int | None, behaviours: Mapping[str, str],
    trades: int = 4, client: int | None = None,
) -> Run:
    """One instance among ``n`` nodes (the first ``k`` are the committee under DCE-PBFT)."""
    seed = cfg.experiment.seed
    names = node_names(n)
    ids = {name: Identity.derive(seed, name) for name in names}
    members = names if algorithm == "pbft" else names[:k]
    client_name = names[-1 if client is None else client]
    inst = build_instance(
        cfg, CHAIN, 0, 0, BlockKind.SIDE, ZERO_HASH, ZERO_HASH, names, members, client_name,
        KeyRing.of(ids.values()), certify=algorithm != "pbft",
    )
    assert tuple(inst.names[m] for m in inst.members) == tuple(members)
    with capture_sims() as sims:
        outcome = run_instance(cfg, inst, ids, wrappers(dict(behaviours)),
                               make_trades(names, ids, trades), inter=False)
    (sim,) = sims
    commits: dict[str, list[bytes]] = {}
    evidence = []
    for ob in sim.observations:
        name = names[ob.node]
        if isinstance(ob.value, Committed) and behaviours.get(name, "honest") not in CONSENSUS_BEHAVIOURS:
            commits.setdefault(name, []).append(ob.value.digest)
        elif isinstance(ob.value, Evidence):
            evidence.append((ob.node, ob.value))
    return Run(cfg, outcome, names, tuple(members), dict(behaviours), commits, evidence,
               sim.observations)


def check_invariants(run: Run) -> None:
    """What must hold whatever the faults (within f or beyond): the checker never lies."""
    o, j = run.outcome, run.judged
    for name, ds in run.commits.items():
        assert len(ds) == 1, f"honest {name} committed {len(ds)} times: {run.describe()}"
    disagree = len(run.honest_digests) > 1
    assert j.safety_violation == disagree, f"safety checker is wrong: {run.describe()}"
    assert not (o.decided and not j.safety_violation and disagree)  # never a wrong "ok"
    if o.decided:
        assert o.block.hash in run.honest_digests, run.describe()
        assert j.view <= run.cfg.consensus.max_view_changes, run.describe()
    else:
        assert not run.honest_digests and j.finality_us is None and j.latency_us is None


# --- scenario files ------------------------------------------------------------------------------


def _position(spec: Mapping[str, Any], members: tuple[str, ...], names: tuple[str, ...], key: str) -> str:
    if key == "primary":
        return members[0]
    if key.startswith("member-"):
        return members[int(key.removeprefix("member-"))]
    if key.startswith("node-"):
        return names[int(key.removeprefix("node-"))]
    if key.isdigit():
        return members[int(key)]
    raise ValueError(f"{spec['_file']}: unknown fault position {key!r}")


def _names_of(positions: list[str], run: Run, spec: Mapping[str, Any]) -> set[str]:
    return {_position(spec, run.members, run.names, p) for p in positions}


def _all_honest_committed(run: Run) -> bool:
    o, j = run.outcome, run.judged
    return (o.decided and j.finality_us is not None
            and all(run.commits.get(n) == [o.block.hash] for n in run.honest))


Check = Callable[[Run, Any, Mapping[str, Any]], None]


def _eq(attr: Callable[[Run], Any]) -> Check:
    def check(run: Run, want: Any, _spec: Mapping[str, Any]) -> None:
        got = attr(run)
        assert got == want, f"got {got!r}, want {want!r}: {run.describe()}"
    return check


def _at_least(attr: Callable[[Run], int]) -> Check:
    def check(run: Run, want: int, _spec: Mapping[str, Any]) -> None:
        assert attr(run) >= want, f"got {attr(run)}, want >= {want}: {run.describe()}"
    return check


def _at_most(attr: Callable[[Run], int]) -> Check:
    def check(run: Run, want: int, _spec: Mapping[str, Any]) -> None:
        assert attr(run) <= want, f"got {attr(run)}, want <= {want}: {run.describe()}"
    return check


def _proven_contains(run: Run, positions: list[str], spec: Mapping[str, Any]) -> None:
    want = _names_of(positions, run, spec)
    assert want <= run.outcome.proven, f"want {sorted(want)} proven: {run.describe()}"


def _evidence(run: Run, items: list[Mapping[str, str]], spec: Mapping[str, Any]) -> None:
    """Each ``{kind, against}`` was reported by some honest node."""
    honest = {run.names.index(n) for n in run.honest}
    seen = {(e.kind, e.offender) for node, e in run.evidence if node in honest}
    for item in items:
        offender = _position(spec, run.members, run.names, item["against"])
        assert (item["kind"], offender) in seen, f"no {item} evidence; saw {sorted(seen)}"
    # and the outcome handed to the credit model carries it too
    pooled = {(e.kind, e.offender) for e in run.reports}
    for item in items:
        assert (item["kind"], _position(spec, run.members, run.names, item["against"])) in pooled


def _flag(pred: Callable[[Run], bool]) -> Check:
    def check(run: Run, want: bool, _spec: Mapping[str, Any]) -> None:
        assert pred(run) == want, f"want {want}: {run.describe()}"
    return check


CHECKS: dict[str, Check] = {
    "committed": _eq(lambda r: r.outcome.decided),
    "views": _eq(lambda r: r.judged.views),
    "views_at_least": _at_least(lambda r: r.judged.views),
    "views_at_most": _at_most(lambda r: r.judged.views),
    "decided_view": _eq(lambda r: r.judged.view),
    "decided_view_at_least": _at_least(lambda r: r.judged.view),
    "safety_violation": _eq(lambda r: r.judged.safety_violation),
    "gave_up": _eq(lambda r: r.judged.gave_up),
    "answered": _eq(lambda r: r.judged.answered),
    "finality": _flag(lambda r: r.judged.finality_us is not None),
    "block_txs": _eq(lambda r: r.outcome.block.header.n_txs if r.outcome.block else None),
    # every pair of honest nodes that committed committed the same digest
    "all_honest_agree": _flag(lambda r: len(r.honest_digests) <= 1),
    # every honest node (members and observers) holds the decided block: finality
    "all_honest_committed": _flag(_all_honest_committed),
    "all_members_committed": _flag(
        lambda r: r.outcome.decided and all(
            r.commits.get(n) == [r.outcome.block.hash] for n in r.members if n in r.honest)),
    "proven_contains": _proven_contains,
    "proven_empty": _flag(lambda r: not r.outcome.proven),
    # nobody honest is ever "proven" guilty (a ban for an honest node would be a false proof)
    "proven_only_faulty": _flag(lambda r: r.outcome.proven <= r.faulty),
    "bad_signature_only_faulty": _flag(
        lambda r: {e.offender for e in r.reports if e.kind == "bad-signature"} <= r.faulty),
    "evidence": _evidence,
    "evidence_empty": _flag(lambda r: not r.reports),
    "stall_or_violation": _flag(lambda r: not r.outcome.decided or r.judged.safety_violation),
    "no_wrong_ok": _flag(lambda r: not (r.outcome.decided and not r.judged.safety_violation
                                        and len(r.honest_digests) > 1)),
}


def load_scenarios() -> list[dict[str, Any]]:
    out = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        spec["_file"] = path.name
        out.append(spec)
    return out


def _params() -> list[Any]:
    params = []
    for spec in load_scenarios():
        name = spec["_file"].removesuffix(".toml")
        params.append(pytest.param(spec, "expect", id=name))
        if "bug" in spec:
            params.append(pytest.param(spec, "bug", id=f"{name}[bug]", marks=pytest.mark.xfail(
                strict=True, reason=spec["bug"]["reason"])))
    return params


def run_instance_scenario(spec: Mapping[str, Any]) -> Run:
    algorithm, n = spec["algorithm"], spec["nodes"]
    k = spec.get("committee") if algorithm != "pbft" else None
    cfg = build_config(
        {"experiment": {"seed": spec.get("seed", 7)}, "consensus": {"algorithm": algorithm}},
        spec.get("overrides", []),
    )
    names = node_names(n)
    members = names if k is None else names[:k]
    behaviours = {_position(spec, members, names, pos): b for pos, b in spec.get("faults", {}).items()}
    return run_one(cfg, algorithm, n, k, behaviours, spec.get("trades", 4), spec.get("client"))


def check_instance(spec: Mapping[str, Any], run: Run, table: Mapping[str, Any]) -> None:
    for key, want in table.items():
        if key == "reason":
            continue
        if key not in CHECKS:
            raise KeyError(f"{spec['_file']}: unknown expectation {key!r}")
        CHECKS[key](run, want, spec)


# --- whole-simulation scenarios -------------------------------------------------------------------


@dataclass
class SimRun:
    rows: list[dict[str, Any]]  # the consensus table, every chain and round
    credits: list[dict[str, Any]]  # the credits table, every chain and round
    behaviour: dict[str, str]  # node -> behaviour, as the topology assigned it

    def summary(self) -> list[tuple]:
        return [(r["round"], r["chain"], r["primary"], r["views"], r["committed"],
                 r["safety_violation"], r["latency_ms"], r["finality_ms"]) for r in self.rows]


def run_simulation_scenario(spec: Mapping[str, Any]) -> SimRun:
    cfg = build_config(spec["config"])
    rounds = Rounds.local(cfg)
    labels = rounds.collector.labels
    behaviour = {n: b for chain in labels for n, b in labels[chain].items()}
    out = SimRun([], [], behaviour)
    for r in range(cfg.experiment.rounds):
        tables = rounds.rows(r)
        assert {row["chain"] for row in tables["consensus"]} == {c.chain for c in rounds.sim.chains}
        # These scenarios are about the side chain (faults.where = "side"); the main chain's
        # rows are checked by the multi-chain tests.
        out.rows.extend({**row, "round": r} for row in tables["consensus"] if row["chain"] != "main")
        out.credits.extend({**row, "round": r} for row in tables["credits"] if row["chain"] != "main")
    return out


def _committed(s: SimRun) -> list[dict[str, Any]]:
    return [r for r in s.rows if r["committed"]]


SIM_CHECKS: dict[str, Callable[[SimRun], Any]] = {
    "rows": lambda s: len(s.rows),
    "committed_all": lambda s: all(r["committed"] for r in s.rows),
    "committed_any": lambda s: any(r["committed"] for r in s.rows),
    "safety_violation_any": lambda s: any(r["safety_violation"] for r in s.rows),
    "views_max": lambda s: max(r["views"] for r in s.rows),
    # a committed round's recorded primary (of the deciding view) is consensus-honest
    "deciding_primary_honest": lambda s: all(
        s.behaviour[r["primary"]] not in CONSENSUS_BEHAVIOURS for r in _committed(s)),
    "byzantine_in_committee_any": lambda s: any(r["byzantine_in_committee"] for r in s.rows),
    # finality_ms is reported for every committed round (every honest node got the block)
    "finality_all": lambda s: all(r["finality_ms"] is not None for r in _committed(s)),
    # latency_ms (q-th honest member's commit) is reported for every committed round
    "latency_all": lambda s: all(r["latency_ms"] is not None for r in _committed(s)),
    "view_changed_rounds": lambda s: sum(r["views"] > 1 for r in s.rows),
    # credit moves the faulty out: the first round that commits, and every round after it
    "first_commit_round": lambda s: next(
        (r["round"] for r in s.rows if r["committed"]), len(s.rows)),
    "committed_from_first": lambda s: all(
        r["committed"] for r in s.rows[next(
            (i for i, r in enumerate(s.rows) if r["committed"]), len(s.rows)):]),
    # nobody consensus-faulty sits on the committee of the last round
    "byzantine_in_last_committee": lambda s: s.rows[-1]["byzantine_in_committee"],
    # no honest node is ever banned (a ban needs a cryptographic proof of misbehaviour)
    "honest_never_banned": lambda s: not [
        (c["round"], c["node"]) for c in s.credits
        if c["behaviour"] == "honest" and c["status"] == "banned"],
}


def check_simulation(spec: Mapping[str, Any], s: SimRun, table: Mapping[str, Any]) -> None:
    """``<check> = value`` compares equal; ``<check>_at_least`` / ``_at_most`` bound it."""
    # every row is self-consistent: views within what the round may try; an undecided round has
    # no block, no latency and no finality
    max_views = spec["config"].get("consensus", {}).get("max_view_changes", 6) + 1
    for row in s.rows:
        assert 1 <= row["views"] <= max_views, row
        if not row["committed"]:
            assert row["txs"] == 0 and row["latency_ms"] is None and row["finality_ms"] is None, row
    for key, want in table.items():
        if key == "reason":
            continue
        name, op = _sim_key(spec, key)
        got = SIM_CHECKS[name](s)
        ok = {"eq": got == want, "at_least": got >= want, "at_most": got <= want}[op]
        banned = [(c["round"], c["node"], c["behaviour"]) for c in s.credits if c["status"] == "banned"]
        assert ok, f"{key} = {want!r} fails (got {got!r}): {s.summary()}; banned {banned}"


def _sim_key(spec: Mapping[str, Any], key: str) -> tuple[str, str]:
    for op in ("at_least", "at_most"):
        if key.endswith("_" + op) and key.removesuffix("_" + op) in SIM_CHECKS:
            return key.removesuffix("_" + op), op
    if key in SIM_CHECKS:
        return key, "eq"
    raise KeyError(f"{spec['_file']}: unknown expectation {key!r}")


# --- the parametrized runner ----------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "part"), _params())
def test_scenario(spec: dict[str, Any], part: str) -> None:
    assert spec.get("description"), f"{spec['_file']}: a scenario says what it is about"
    if spec.get("mode", "instance") == "simulation":
        check_simulation(spec, run_simulation_scenario(spec), spec[part])
        return
    run = run_instance_scenario(spec)
    check_invariants(run)
    check_instance(spec, run, spec[part])


def test_scenario_files_are_well_formed() -> None:
    specs = load_scenarios()
    assert len(specs) >= 30
    for spec in specs:
        if spec.get("mode", "instance") == "simulation":
            build_config(spec["config"])
            for key in (*spec["expect"], *spec.get("bug", {})):
                if key != "reason":
                    _sim_key(spec, key)
            unknown = set()
        else:
            assert spec["algorithm"] in ("pbft", "dce-pbft"), spec["_file"]
            names = node_names(spec["nodes"])
            members = names if spec["algorithm"] == "pbft" else names[: spec["committee"]]
            faulty = [_position(spec, members, names, p) for p in spec.get("faults", {})]
            assert len(set(faulty)) == len(faulty), f"{spec['_file']}: a node is listed twice"
            assert set(spec.get("faults", {}).values()) <= set(CONSENSUS_BEHAVIOURS), spec["_file"]
            client = names[spec.get("client", -1)]
            assert client not in faulty, f"{spec['_file']}: the client (VMC) is never faulty"
            unknown = (set(spec["expect"]) | set(spec.get("bug", {}))) - set(CHECKS) - {"reason"}
        assert not unknown, f"{spec['_file']}: unknown expectations {unknown}"
        if "bug" in spec:
            assert spec["bug"]["reason"].startswith("BUG: "), spec["_file"]


def test_fault_counts_in_scenarios_match_their_titles() -> None:
    """Scenarios named ``f-...`` place exactly f faulty members; ``f1-...`` exactly f+1."""
    for spec in load_scenarios():
        name = spec["_file"]
        if spec.get("mode") == "simulation" or name.split("-", 1)[0] not in ("f", "f1"):
            continue
        k = spec["nodes"] if spec["algorithm"] == "pbft" else spec["committee"]
        want = fault_bound(k) + (name.startswith("f1-"))
        assert len(spec["faults"]) == want, f"{name}: {len(spec['faults'])} faults, f = {fault_bound(k)}"


# --- the safety checker itself, with a coalition that does split the honest nodes ----------------


@pytest.mark.parametrize("second", [1, 2])
def test_safety_checker_reports_a_split_by_f_plus_1_colluders(second):
    """N=4, f=1: an equivocating primary plus one equivocating member (the coalition) show and
    tell A to one honest member and B to the other, who commit two blocks at one height; the
    outcome must say so."""
    cfg = build_config({"experiment": {"seed": 7}, "consensus": {"algorithm": "pbft"}})
    names = node_names(4)
    run = run_one(cfg, "pbft", 4, None, {names[0]: "equivocate", names[second]: "equivocate"})
    check_invariants(run)
    assert len(run.honest_digests) == 2, run.describe()
    assert run.judged.safety_violation, run.describe()
    assert run.judged.finality_us is None


# --- what latency_ms measures --------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "n", "k"), [("pbft", 4, None), ("dce-pbft", 10, 4)])
def test_latency_runs_from_the_instances_start_not_the_proposal(algorithm, n, k):
    """The client's request leaves at t = 0: latency is the q-th member's commit from there,
    the request's trip to the primary and the primary's own time included; the first proposal
    is reported apart (``proposed_ms``)."""
    from mlts_ray.consensus.instance import Proposed

    cfg = build_config({"experiment": {"seed": 7}, "consensus": {"algorithm": algorithm}})
    run = run_one(cfg, algorithm, n, k, {})
    obs = run.observations
    inst = run.outcome.inst
    assert run.judged.view == 0
    proposed = min(ob.time_us for ob in obs if isinstance(ob.value, Proposed))
    member_commits = sorted(ob.time_us for ob in obs
                            if isinstance(ob.value, Committed) and ob.node in inst.members)
    assert proposed > 0 and run.judged.proposed_us == proposed
    assert run.judged.latency_us == member_commits[inst.q - 1]
    assert run.judged.finality_us == max(ob.time_us for ob in obs
                                         if isinstance(ob.value, Committed))
