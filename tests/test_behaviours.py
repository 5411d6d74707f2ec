"""The one behaviour registry (``population.registry``): every behaviour a config may name is
in it and nowhere else, each does something honest nodes do not in at least one role, a new
behaviour is one registered entry, and the population hands out strategies while only the
collector reads the labels."""

from __future__ import annotations

import pytest

from mlts_ray.config import build_config
from mlts_ray.consensus.byzantine import Equivocate
from mlts_ray.errors import ConfigError
from mlts_ray.mlts.strategies import HONEST as HONEST_STRATEGIES
from mlts_ray.mlts.strategies import Strategies
from mlts_ray.mlts.traders import Trader
from mlts_ray.population import Population, no_ops
from mlts_ray.population.registry import (
    HONEST,
    REGISTRY,
    Behaviour,
    consensus_faulty,
    names,
    register,
)


def test_the_config_accepts_exactly_the_registered_names():
    cfg = build_config({"faults": {"behaviours": list(names())}})
    assert tuple(cfg.faults.behaviours) == names() and HONEST not in names()
    with pytest.raises(ConfigError) as err:
        build_config({"faults": {"behaviours": ["honest"]}})
    assert err.value.subject == "faults.behaviours[0]" and "'replay'" in err.value.why


@pytest.mark.parametrize("name", names())
def test_each_behaviour_differs_from_honest_in_some_role(name):
    s = REGISTRY[name].strategies
    assert (s.consensus is not None or s.trader is not HONEST_STRATEGIES.trader
            or s.auditor is not HONEST_STRATEGIES.auditor), f"{name} behaves honestly in every role"


def test_the_campaigns_faulty_mixes_are_the_registered_consensus_wrappers():
    assert consensus_faulty() == ("crash", "silent", "equivocate", "forge", "delay", "withhold",
                                  "withhold-half", "censor", "slow-primary")
    assert Equivocate.colludes and REGISTRY["equivocate"].strategies.consensus is Equivocate


def test_a_new_behaviour_is_one_registered_entry():
    """Registered, a behaviour is accepted by the config and drawn and handed out by the
    population, with no other edit; its label reaches the collector's side only."""

    class Greedy(Trader):
        budget = 2

    greedy = register(Behaviour("greedy", Strategies(trader=Greedy())))
    try:
        cfg = build_config({"topology": {"vpps": 1, "nodes_per_vpp": 10},
                            "faults": {"byzantine_fraction": 0.3, "behaviours": ["greedy"]}})
        population = Population(cfg)
        drawn = [n for n, b in population.labels["vpp-0"].items() if b == "greedy"]
        assert len(drawn) == 3
        assert {n: s.trader for n, s in population.strategies("vpp-0").items()} == \
            dict.fromkeys(drawn, greedy.strategies.trader)
    finally:
        del REGISTRY["greedy"]


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="twice"):
        register(Behaviour("silent", Strategies()))


@pytest.mark.parametrize(("faults", "topology", "key"), [
    ({"behaviours": ["crash"]}, {}, "faults.behaviours"),  # byzantine_fraction 0
    ({"byzantine_fraction": 0.05}, {"nodes_per_vpp": 8}, "faults.byzantine_fraction"),
    ({"byzantine_fraction": 0.1, "where": "main"}, {"vpps": 4}, "faults.byzantine_fraction"),
    ({"byzantine_fraction": 0.3, "delay_ms": 300}, {}, "faults.delay_ms"),
])
def test_fault_settings_that_cannot_act_are_named(faults, topology, key):
    cfg = build_config({"faults": faults, "topology": topology})
    assert [k for k, _ in no_ops(cfg)] == [key]
    # and the population indeed draws no faulty node where the fraction rounds to none
    if key == "faults.byzantine_fraction":
        assert all(b == HONEST for chain in Population(cfg).labels
                   for b in Population(cfg).labels[chain].values())


def test_settings_that_act_are_not_named():
    assert no_ops(build_config({})) == []
    assert no_ops(build_config({"faults": {"byzantine_fraction": 0.3, "delay_ms": 300,
                                           "behaviours": ["delay", "silent"]}})) == []
