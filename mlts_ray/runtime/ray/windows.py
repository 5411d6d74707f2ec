"""The window driver on Ray (docs/architecture.md sections 6 and 7): a round's consensus jobs
run together on the node-host actors. A chain whose every node lives on one host runs whole
there in one call; a chain spread over several hosts is driven here window by window, one
call per host with events in the window (never one call per protocol message), the windows of
all its chains in flight together. Every outcome is the local runtime's: each node sees the
same events in the same order (``net.sim``), whatever the placement."""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from mlts_ray.config import Config
from mlts_ray.ledger.crypto import DerivedKeyRing, KeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, finish, from_wire, prepare
from mlts_ray.net.sim import DST
from mlts_ray.runtime.placement import Placement
from mlts_ray.runtime.ray.sides import get_named


class RayRunner:
    """Runs a round's consensus jobs together on the host actors, window by window."""

    def __init__(self, cfg: Config, hosts: Sequence[Any], placement: Placement) -> None:
        self.cfg, self.hosts, self.placement = cfg, list(hosts), placement
        self.keys = DerivedKeyRing(cfg.experiment.seed)
        self.indices = {
            (chain, h): [i for (c, i) in self.placement.hosts[h].nodes if c == chain]
            for h in range(len(self.hosts)) for chain in {c for c, _ in self.placement.hosts[h].nodes}
        }

    def __call__(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Chains that live on one host run whole there, in parallel; chains spread over
        several hosts are driven here window by window. Outcomes come out in job order as each
        is ready, so the caller records the first chains while hosts still run the last. A
        whole chain's ``wall_ms`` is its host's (``runtime.rounds.timed_runner``)."""
        whole = {k: self.placement.hosts_of(j.inst.chain) for k, j in enumerate(jobs)}
        whole = {k: hs[0] for k, hs in whole.items() if len(hs) == 1}
        refs = {k: self.hosts[h].run_whole.remote(dataclasses.replace(
                    jobs[k], inst=dataclasses.replace(jobs[k].inst, keys=KeyRing())))
                for k, h in whole.items()}
        spread = [k for k in range(len(jobs)) if k not in whole]
        outs = dict(zip(spread, self._windows([jobs[k] for k in spread]), strict=True))
        for k, job in enumerate(jobs):
            if k in refs:
                (out,) = get_named([refs[k]], [(job.inst.chain, job.inst.round)])
                yield from_wire(out, job.inst)
            else:
                yield outs[k]

    def _windows(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Chains spread over several hosts: trading here, then window by window; each one's
        ``wall_ms`` from the instances' start (their nodes built on the hosts) to its last
        window, as a host times a whole chain's."""
        runs = [prepare(self.cfg, job, self.keys.identity, self.keys, with_nodes=False)
                for job in jobs]
        walls: list[float | None] = [None] * len(runs)
        begins = []
        for run in runs:
            inst = run.job.inst
            spec = dataclasses.replace(inst, keys=KeyRing())  # hosts derive keys themselves
            # every host gets every faulty node's wrapper: a coalition spans hosts
            wrappers = dict(run.job.wrappers)
            for h in self.placement.hosts_of(inst.chain):
                indices = self.indices[(inst.chain, h)]
                begins.append(self.hosts[h].begin.remote(spec, indices, wrappers))
        get_named(begins, [(j.inst.chain, j.inst.round) for j in jobs])
        started = time.perf_counter()
        active = set(range(len(runs)))
        while active:
            refs, owners = [], []
            for k in sorted(active):
                sim, chain = runs[k].sim, runs[k].job.inst.chain
                batch = sim.window(runs[k].width)
                if not batch:
                    active.discard(k)
                    walls[k] = (time.perf_counter() - started) * 1000
                    continue
                by_host: dict[int, list] = defaultdict(list)
                for event in batch:
                    by_host[self.placement.host_of[(chain, event[DST])]].append(event)
                for h, events in by_host.items():
                    refs.append(self.hosts[h].process.remote(chain, events, sim.window_end))
                    owners.append(k)
            results = get_named(refs, [(jobs[k].inst.chain, jobs[k].inst.round) for k in owners])
            merged: dict[int, list] = defaultdict(list)
            for k, done in zip(owners, results, strict=True):
                merged[k].append(done)
            for k, batches in merged.items():
                runs[k].sim.apply(batches)
        outs = []
        for run, wall in zip(runs, walls, strict=True):
            out = finish(run)
            out.wall_ms = wall
            outs.append(out)
        return outs
