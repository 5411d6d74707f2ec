"""Property: every config the schema accepts is one the simulation can run (issue 12, item 2).

Hypothesis draws values at and beyond the edges of every numeric field of every section (zero,
tiny, huge, negative, infinite, NaN) on small topologies; each config is either refused by
``build_config`` with a ConfigError, or runs one round to completion on the local runtime --
never another exception, never an internal error.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlts_ray.config import SECTIONS, build_config
from mlts_ray.errors import ConfigError
from mlts_ray.runtime.local import run_local

EDGE_FLOATS = [0.0, 1e-9, 0.001, 0.5, 1.0, 3.0, 60.0, 100.0, 1e6, 1e300, -1.0,
               math.inf, -math.inf, math.nan]
EDGE_INTS = [0, 1, 2, 3, 5, 100, 10**6, 2**31, 2**63, -1]
SMALL = {"topology.vpps": [1, 2, 3], "topology.nodes_per_vpp": [4, 5, 8],
         "topology.grid_nodes": [0, 1, 2], "topology.supervisors_per_vpp": [0, 1, 2, 3],
         "experiment.rounds": [1], "experiment.runtime": ["local"]}
SKIP = {"experiment.name", "experiment.seed", "experiment.nodes_per_actor"}


def _numeric_keys() -> list[tuple[str, type]]:
    out = []
    for section, model in SECTIONS.items():
        for name, field in model.model_fields.items():
            key = f"{section}.{name}"
            if key in SMALL or key in SKIP:
                continue
            if field.annotation in (int, float):
                out.append((key, field.annotation))
    return out


NUMERIC = _numeric_keys()


@st.composite
def raw_configs(draw) -> dict:
    raw: dict = {}

    def put(key: str, value) -> None:
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = value

    for key, choices in SMALL.items():
        put(key, draw(st.sampled_from(choices)))
    for key, kind in draw(st.lists(st.sampled_from(NUMERIC), max_size=6, unique=True)):
        put(key, draw(st.sampled_from(EDGE_FLOATS if kind is float else EDGE_INTS)))
    put("faults.byzantine_fraction", draw(st.sampled_from([0.0, 0.25, 0.34, 1.0])))
    put("faults.behaviours", draw(st.lists(st.sampled_from(
        ["crash", "silent", "equivocate", "forge", "delay", "abandon", "false-audit"]),
        min_size=1, max_size=3)))
    put("faults.where", draw(st.sampled_from(["side", "main", "both"])))
    put("consensus.algorithm", draw(st.sampled_from(["pbft", "dce-pbft", "random-committee"])))
    return raw


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=raw_configs())
def test_an_accepted_config_runs_a_round_and_a_refused_one_names_a_key(raw, tmp_path):
    try:
        cfg = build_config(raw)
    except ConfigError as err:
        assert err.subject and err.why  # refused, by name
        return
    run = run_local(cfg, tmp_path)  # any exception here fails the property
    assert (run / "manifest.json").is_file()


@given(vpps=st.integers(1, 12), nodes=st.integers(4, 120), grid=st.integers(0, 3),
       name=st.one_of(
           st.builds(lambda v, i: f"vpp-{v}/n-{i:03d}", st.integers(0, 13), st.integers(0, 125)),
           st.builds(lambda v, i: f"vpp-{v}/n-{i}", st.integers(0, 13), st.integers(0, 125)),
           st.builds(lambda v: f"vpp-{v}/vmc", st.integers(-1, 13)),
           st.builds(lambda g: f"grid-{g}", st.integers(-1, 4)),
           st.text(max_size=12)))
def test_a_partition_names_exactly_the_nodes_the_topology_has(vpps, nodes, grid, name):
    from mlts_ray.mlts.main_chain import grid_names
    from mlts_ray.mlts.topology import vpp_layout

    base = {"topology": {"vpps": vpps, "nodes_per_vpp": nodes, "grid_nodes": grid}}
    cfg = build_config(base)
    t = cfg.topology
    real = {n for v in range(vpps) for n in vpp_layout(t, v).nodes} | set(grid_names(t))
    partition = {"faults": {"partitions": [{"start_ms": 0.0, "end_ms": 10.0, "groups": [[name]]}]}}
    try:
        build_config({**base, **partition})
        accepted = True
    except ConfigError as err:
        assert err.subject == "faults.partitions[0].groups[0]"
        accepted = False
    assert accepted == (name in real)
