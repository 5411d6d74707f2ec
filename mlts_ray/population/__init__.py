"""The population (docs/architecture.md section 5): who each node is -- honest or which
registered behaviour (``population.registry``) -- drawn once per run from seeded streams.

It hands the model each node's strategies per role (``Population.strategies``, the model's
``Cast``) and the collector (``mlts_ray.results``) the labels (``Population.labels``): the
only two readers of who is faulty. A node has a label per chain: a VMC may be faulty on the
main chain and honest on its own side chain.

Side chain ``vpp-v``: the VMC is never drawn (it is the client that submits the VPP's
trades; a faulty operator is outside this model); a behaviour drawn from the supervisors
(``false-audit``) takes a supervisor when there is one, every other a trader. Main chain
(``faults.where`` = ``main`` or ``both``): faulty VMCs, and a supervisors' behaviour takes a
grid node other than the client ``grid-0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mlts_ray.config import Config
from mlts_ray.names import MAIN
from mlts_ray.mlts.main_chain import grid_names, vmc_names
from mlts_ray.mlts.strategies import Strategies
from mlts_ray.mlts.topology import VppLayout, byzantine_count, chain_sizes, vpp_layout
from mlts_ray.net.rng import stream
from mlts_ray.population.registry import HONEST, REGISTRY


class Population:
    """Every chain's labels and strategies, each chain's drawn when first asked (a host asks
    for its own chains only)."""

    def __init__(self, cfg: Config) -> None:
        self.labels = Labels(cfg)
        self._strategies: dict[str, dict[str, Strategies]] = {}

    def strategies(self, chain: str) -> Mapping[str, Strategies]:
        """Node -> strategies of the chain's faulty nodes (absent: honest)."""
        if chain not in self._strategies:
            self._strategies[chain] = {n: REGISTRY[b].strategies
                                       for n, b in self.labels[chain].items() if b != HONEST}
        return self._strategies[chain]


class Labels(Mapping[str, Mapping[str, str]]):
    """Chain -> node -> behaviour: what the collector reads."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.chains = [chain for chain, _ in chain_sizes(cfg.topology)]
        self._drawn: dict[str, dict[str, str]] = {}

    def __getitem__(self, chain: str) -> Mapping[str, str]:
        if chain not in self._drawn:
            if chain not in self.chains:
                raise KeyError(chain)
            cfg = self.cfg
            self._drawn[chain] = (
                main_behaviours(cfg) if chain == MAIN else
                side_behaviours(cfg, vpp_layout(cfg.topology, self.chains.index(chain))))
        return self._drawn[chain]

    def __iter__(self) -> Iterator[str]:
        return iter(self.chains)

    def __len__(self) -> int:
        return len(self.chains)


def side_behaviours(cfg: Config, layout: VppLayout) -> dict[str, str]:
    """Behaviour of every node of a side chain: ``honest`` or a name from ``faults.behaviours``."""
    out = dict.fromkeys(layout.nodes, HONEST)
    faults = cfg.faults
    if faults.where not in ("side", "both") or faults.byzantine_fraction == 0:
        return out
    rng = stream(cfg.experiment.seed, "faults", layout.chain)
    pools = {"supervisors": list(layout.supervisors), "traders": list(layout.traders)}
    rng.shuffle(pools["supervisors"])
    rng.shuffle(pools["traders"])
    # Start the behaviour list at a seeded place per chain, so with fewer faulty nodes than
    # behaviours every behaviour still shows up across the VPPs.
    offset = rng.randrange(len(faults.behaviours))
    for i in range(byzantine_count(faults.byzantine_fraction, len(layout.resources))):
        behaviour = faults.behaviours[(offset + i) % len(faults.behaviours)]
        pool = pools[REGISTRY[behaviour].drawn_from]
        if not pool:
            pool = pools["traders"] or pools["supervisors"]
        if not pool:
            break
        out[pool.pop()] = behaviour
    return out


def main_behaviours(cfg: Config) -> dict[str, str]:
    """Faulty VMCs on the main chain when ``faults.where`` is ``main`` or ``both``; the grid
    nodes are the trading centre's own and stay honest but for a supervisors' behaviour."""
    vmcs, grid = vmc_names(cfg.topology), grid_names(cfg.topology)
    out = dict.fromkeys((*vmcs, *grid), HONEST)
    f = cfg.faults
    if f.where not in ("main", "both") or f.byzantine_fraction == 0:
        return out
    rng = stream(cfg.experiment.seed, "faults", MAIN)
    pools = {"traders": list(vmcs), "supervisors": list(grid[1:])}  # grid-0 is the client
    rng.shuffle(pools["traders"])
    rng.shuffle(pools["supervisors"])
    for i in range(byzantine_count(f.byzantine_fraction, len(vmcs))):
        behaviour = f.behaviours[i % len(f.behaviours)]
        source = pools[REGISTRY[behaviour].drawn_from]
        if source:
            out[source.pop()] = behaviour
    return out


def no_ops(cfg: Config) -> list[tuple[str, str]]:
    """Fault settings that cannot act in this config, as (key, why): the run would go ahead
    without them, and nothing else would say so."""
    f, t = cfg.faults, cfg.topology
    out = []
    drawn = [byzantine_count(f.byzantine_fraction, n) for where, n in
             (("side", t.nodes_per_vpp - 1), ("main", t.vpps)) if f.where in (where, "both")]
    if "behaviours" in f.model_fields_set and f.byzantine_fraction == 0:
        out.append(("faults.behaviours", "has no effect: faults.byzantine_fraction is 0, so "
                    "every node is honest"))
    elif f.byzantine_fraction > 0 and not any(drawn):
        out.append(("faults.byzantine_fraction", f"{f.byzantine_fraction} of a chain's "
                    f"{'resources' if f.where != 'main' else 'VMCs'} rounds to no faulty "
                    "node: every node is honest"))
    if "delay_ms" in f.model_fields_set and "delay" not in f.behaviours:
        out.append(("faults.delay_ms", "has no effect: no node has the 'delay' behaviour"))
    return out
