"""The resource estimate made before a run starts (issue 12, item 6): its closed forms against
placement and the PBFT message counts, the refusals by key, ``--force``, and every shipped
experiment fitting the 2-core, 24 GiB machine CI runs on."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus_harness import expected_dce
from mlts_ray.cli import main
from mlts_ray.config import build_config, load_config
from mlts_ray.errors import ConfigError
from mlts_ray.runtime import budget
from mlts_ray.runtime.placement import place_run
from mlts_ray.runtime.sweep import sweep_configs

EXPERIMENTS = sorted((Path(__file__).parent.parent / "experiments").glob("*.toml"))
QUICKSTART = Path(__file__).parent.parent / "experiments" / "quickstart.toml"
CI = budget.Machine(cpus=2, memory=20 * budget.GIB, where="a CI machine")


def _chains(cfg):
    t = cfg.topology
    return [*((f"vpp-{v}", t.nodes_per_vpp) for v in range(t.vpps)),
            ("main", t.vpps + t.grid_nodes)]


@settings(max_examples=60, deadline=None)
@given(vpps=st.integers(1, 12), n=st.integers(4, 40), grid=st.integers(0, 3),
       pack=st.one_of(st.just("auto"), st.integers(1, 50)), cpus=st.integers(1, 64))
def test_host_count_is_the_number_of_hosts_placement_makes(vpps, n, grid, pack, cpus):
    cfg = build_config({"topology": {"vpps": vpps, "nodes_per_vpp": n, "grid_nodes": grid},
                        "experiment": {"nodes_per_actor": pack}})
    assert budget.host_count(cfg, cpus) == len(place_run(_chains(cfg), pack, cpus).hosts)


@pytest.mark.parametrize(("n", "k"), [(4, 4), (10, 4), (100, 10), (100, 100), (500, 50)])
def test_chain_messages_are_the_fault_free_pbft_closed_form(n, k):
    assert budget._chain_messages(n, k) == sum(expected_dce(n, k, client_is_member=True).values())


def test_pbft_counts_every_node_of_a_chain_and_dce_only_its_committee():
    over = ["topology.vpps=4", "topology.nodes_per_vpp=40"]
    pbft = budget.messages_per_round(build_config({}, [*over, "consensus.algorithm=pbft"]))
    dce = budget.messages_per_round(build_config({}, [*over, "consensus.algorithm=dce-pbft"]))
    assert pbft > 4 * 2 * 39 ** 2 > dce


def test_ten_million_nodes_are_refused_by_key_with_the_estimate():
    cfg = build_config({}, ["topology.vpps=10000", "topology.nodes_per_vpp=1000"])
    with pytest.raises(ConfigError) as err:
        budget.check(cfg, "local", CI)
    assert err.value.subject == "topology.vpps"
    assert "10,010,002 nodes" in err.value.why and "GiB" in err.value.why
    assert "--force" in err.value.why
    assert budget.check(cfg, "local", CI, force=True).memory > 100 * budget.GIB


def test_one_actor_per_node_beyond_sixteen_per_cpu_is_refused_on_ray_only():
    cfg = build_config({}, ["topology.vpps=2", "topology.nodes_per_vpp=100",
                            "experiment.nodes_per_actor=1"])
    with pytest.raises(ConfigError) as err:
        budget.check(cfg, "ray", CI)
    assert err.value.subject == "experiment.nodes_per_actor"
    assert "204 host actors for 2 CPUs" in err.value.why
    budget.check(cfg, "local", CI)  # the local runtime starts no actor
    # 204 hosts, a chain driver for each of the two spread side chains, the coordinator
    assert budget.check(cfg, "ray", budget.Machine(16, 64 * budget.GIB)).actors == 207


def test_memory_of_many_small_actors_names_the_packing():
    cfg = build_config({}, ["topology.vpps=4", "topology.nodes_per_vpp=30",
                            "experiment.nodes_per_actor=1"])
    small = budget.Machine(cpus=64, memory=6 * budget.GIB)
    with pytest.raises(ConfigError) as err:
        budget.check(cfg, "ray", small)
    assert err.value.subject == "experiment.nodes_per_actor"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
@pytest.mark.parametrize("runtime", ["local", "ray"])
def test_every_shipped_experiment_fits_the_ci_machine(path, runtime):
    cfg = load_config(path, [])
    for point in sweep_configs(cfg) if cfg.sweep else [cfg]:
        budget.check(point, runtime, CI)


def test_the_cli_refuses_before_writing_and_force_runs_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(budget, "this_machine",
                        lambda: budget.Machine(cpus=1, memory=64 * 1 << 20, where="a tiny box"))
    out = tmp_path / "out"
    args = ["run", str(QUICKSTART), "--runtime", "local", "--out", str(out),
            "--set", "experiment.rounds=1"]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: topology.nodes_per_vpp: the run needs ") or \
        err.startswith("error: topology.vpps: the run needs "), err
    assert "a tiny box" in err and not out.exists()
    assert main([*args, "--force"]) == 0
    captured = capsys.readouterr()
    assert "estimate: 29 nodes" in captured.err
    assert captured.out.splitlines()[-1].startswith(str(out))


def test_a_sweep_is_checked_at_every_point_before_the_first_runs(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["sweep", str(QUICKSTART), "--runtime", "local", "--out", str(out),
                 "--set", "sweep.topology.vpps=[2, 10000]",
                 "--set", "topology.nodes_per_vpp=1000"])
    err = capsys.readouterr().err
    assert code == 2 and "error: topology.vpps: the run needs 10,010,002 nodes" in err, err
    assert not out.exists()
