"""Safety campaign: many seeded random schedules of one consensus instance, with Byzantine mixes
at f and at f+1 faulty members (half of each beyond-f coalition equivocates), message loss,
partitions, delays, fixed and calibrated view timeouts and every DCE-PBFT dissemination mode
(docs/architecture.md section 9).

Each schedule is checked independently of the simulator's own safety checker: the honest nodes'
committed digests are read straight from their observations. Reported: schedules run, safety
violations (must be 0 with at most f faulty), whether the checker told the truth, liveness
failures (no decision) and finality gaps (a decision some honest node never learned).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from mlts_ray.config import Partition, build_config
from mlts_ray.consensus.dissemination import MODES
from mlts_ray.consensus.instance import Committed, fault_bound
from mlts_ray.consensus.timing import timed
from mlts_ray.ledger import Identity, KeyRing, Trade
from mlts_ray.ledger.block import ZERO_HASH, BlockKind
from mlts_ray.mlts.consensus_round import Job, build_instance, finish, prepare
from mlts_ray.population.registry import consensus_faulty, wrappers
from mlts_ray.results.oracle import consensus_honest, judge

CHAIN = "vpp-0"


@dataclass(slots=True)
class Tally:
    schedules: int = 0
    violations: int = 0
    checker_wrong: int = 0
    no_decision: int = 0
    finality_gaps: int = 0
    by_behaviour: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "schedules": self.schedules, "safety_violations": self.violations,
            "checker_wrong": self.checker_wrong, "liveness_failures": self.no_decision,
            "finality_gaps": self.finality_gaps,
            "violations_by_behaviour_mix": dict(self.by_behaviour),
        }


def schedule(seed: int, index: int, beyond_f: bool) -> dict:
    """The ``index``-th random schedule: topology, faults, network."""
    rng = random.Random(f"{seed}/{index}/{beyond_f}")
    n = rng.choice([4, 5, 7, 10, 13])
    algorithm = rng.choice(["pbft", "dce-pbft"])
    k = n if algorithm == "pbft" else rng.randint(4, n)
    faulty = fault_bound(k) + (1 if beyond_f else 0)
    # the client (the last node, like a VPP's VMC) submits the request: it stays honest
    positions = rng.sample([p for p in range(k) if p != n - 1], faulty)
    if rng.random() < 0.5 and 0 not in positions and positions:  # the primary, often
        positions[0] = 0
    # beyond f only a coalition of equivocators can split honest nodes: half its members are
    # one (else, with nine wrappers drawn alike, a split-capable mix is rarer than 1 in 80)
    behaviours = {p: "equivocate" if beyond_f and rng.random() < 0.5
                  else rng.choice(consensus_faulty()) for p in positions}
    partition = None
    if rng.random() < 0.3:
        cut = rng.sample(range(n), rng.randint(1, max(1, fault_bound(k))))
        t0 = rng.randint(0, 300)
        partition = {"start_ms": t0, "end_ms": t0 + rng.randint(50, 900), "cut": cut}
    return {
        "seed": rng.randrange(2**31), "n": n, "k": k, "algorithm": algorithm,
        "behaviours": behaviours, "loss": rng.choice([0.0, 0.0, 0.02, 0.1]),
        "jitter_ms": rng.choice([1, 3, 10, 25]), "delay_ms": rng.choice([50, 200, 700]),
        "view_timeout_ms": rng.choice([100, 300, 500, "auto"]), "partition": partition,
        "dissemination": rng.choice(MODES),
    }


def run_schedule(s: dict) -> tuple[bool, bool, bool, bool]:
    """(violation, checker told the truth, decided, every honest node holds the block)."""
    names = tuple(f"{CHAIN}/n-{i:03d}" for i in range(s["n"]))
    cfg = build_config({
        "experiment": {"seed": s["seed"]},
        "consensus": {"algorithm": s["algorithm"], "view_timeout_ms": s["view_timeout_ms"],
                      "dissemination": s.get("dissemination", "committee")},
        "network": {"loss": s["loss"], "intra_jitter_ms": s["jitter_ms"]},
        "faults": {"delay_ms": s["delay_ms"]},
    })
    if s["partition"]:
        # The campaign's chain is a bare instance with names of its own, outside any topology,
        # so its partition is added after validation (which checks names against a topology).
        p = s["partition"]
        cut = Partition(start_ms=float(p["start_ms"]), end_ms=float(p["end_ms"]),
                        groups=[[names[i] for i in p["cut"]]])
        cfg = cfg.model_copy(update={"faults": cfg.faults.model_copy(update={"partitions": [cut]})})
    ids = {name: Identity.derive(s["seed"], name) for name in names}
    members = names[: s["k"]]
    inst = build_instance(cfg, CHAIN, 0, 0, BlockKind.SIDE, ZERO_HASH, ZERO_HASH, names, members,
                          names[-1], KeyRing.of(ids.values()), certify=s["algorithm"] != "pbft")
    behaviours = {members[p]: b for p, b in s["behaviours"].items()}
    trades = [Trade(CHAIN, 0, names[1], names[2], CHAIN, CHAIN, 100 + i, 10, f"b{i}", f"s{i}")
              .sign(ids[names[1]], ids[names[2]]).encode() for i in range(3)]
    inst = timed(inst, trades)  # "auto": the timeout for this request
    run = prepare(cfg, Job(inst, wrappers(behaviours), tuple(trades), False), ids.__getitem__,
                  inst.keys)
    run.sim.run_windows(run.width)
    out, sim = finish(run), run.sim
    honest = {i for i, n in enumerate(names) if consensus_honest(behaviours.get(n, "honest"))}
    digests = {ob.value.digest for ob in sim.observations
               if isinstance(ob.value, Committed) and ob.node in honest}
    holders = {ob.node for ob in sim.observations
               if isinstance(ob.value, Committed) and ob.node in honest}
    violation = len(digests) > 1
    return (violation, judge(out, behaviours).safety_violation == violation, out.decided,
            honest <= holders)


def campaign(schedules: int, seed: int = 0) -> dict:
    """``schedules`` random schedules at f and as many at f+1; the tallies."""
    result = {}
    for beyond_f in (False, True):
        tally = Tally()
        for i in range(schedules):
            s = schedule(seed, i, beyond_f)
            violation, truthful, decided, complete = run_schedule(s)
            tally.schedules += 1
            tally.violations += violation
            tally.checker_wrong += not truthful
            tally.no_decision += not decided
            tally.finality_gaps += decided and not complete
            if violation:
                tally.by_behaviour["+".join(sorted(s["behaviours"].values()))] += 1
        result["f+1" if beyond_f else "f"] = tally.as_dict()
    return result
