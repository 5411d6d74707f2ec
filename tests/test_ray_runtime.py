"""The Ray runtime: the same tables as the local runtime whatever the packing, and a clean
failure when a node host dies (docs/architecture.md section 7). One Ray instance for the whole module."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from mlts_ray.config import build_config  # noqa: E402
from mlts_ray.errors import RunError  # noqa: E402
from mlts_ray.runtime.ray.host import HostService  # noqa: E402
from mlts_ray.runtime.local import run_local  # noqa: E402
from mlts_ray.runtime.ray.run import run_ray  # noqa: E402
from mlts_ray.results.schemas import TABLES  # noqa: E402
from run_checks import assert_dead_host_ended, assert_same_tables  # noqa: E402

BYZANTINE = {
    "experiment": {"name": "det", "seed": 11, "rounds": 3},
    "topology": {"vpps": 2, "nodes_per_vpp": 6, "grid_nodes": 1},
    "consensus": {"algorithm": "dce-pbft", "side_committee_min": 4},
    "workload": {"cross_vpp_share": 0.6},
    "network": {"loss": 0.02},
    "faults": {"byzantine_fraction": 0.4, "where": "both",
               "behaviours": ["equivocate", "forge", "silent", "delay", "abandon"]},
}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def tables(run_dir) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TABLES:
        df = pd.read_parquet(run_dir / name)
        out[name] = df[[c for c in df.columns if not c.startswith("wall_")]].reset_index(drop=True)
    return out


def assert_round_as_local(cfg, rnd: int, got: dict, want: dict) -> None:
    """A round's record batches from Ray (``fetch_round``) equal the local runtime's rows of
    it (``Rounds.rows``), table by table, but for the ``wall_*`` columns."""
    from mlts_ray.mlts.simulation import run_id_of
    from mlts_ray.results.schemas import to_batch

    for table in TABLES:
        mine = to_batch(table, run_id_of(cfg), rnd, want[table])
        walls = [c for c in mine.schema.names if c.startswith("wall_")]
        assert got[table].drop_columns(walls).equals(mine.drop_columns(walls)), (rnd, table)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    cfg = build_config(BYZANTINE, ["experiment.runtime=local"])
    return run_local(cfg, tmp_path_factory.mktemp("local"))


@pytest.mark.parametrize("packing", ["1", "auto", "4"])
def test_ray_tables_equal_local_tables(local_run, tmp_path, packing):
    cfg = build_config(BYZANTINE, [f"experiment.nodes_per_actor={packing}"])
    run = run_ray(cfg, tmp_path)
    assert run.name == local_run.name  # where a run executes is not part of its identity
    assert_same_tables(local_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["runtime"] == "ray" and manifest["status"] == "complete"
    placed = manifest["ray"]["actors_per_node"]
    hosts = {"1": 6 + 6 + 3, "auto": 2, "4": 2 + 2 + 1}[packing]
    # whole chains keep their state on their hosts (runtime.ray.sides), spread ones on chain
    # drivers, one per side chain here (two chains, two CPUs)
    drivers = 0 if packing == "auto" else 2
    assert sum(placed.values()) == hosts + drivers + 1  # + the coordinator
    assert manifest["ray"]["side_state"] == ("hosts" if packing == "auto" else "drivers")
    assert manifest["ray"]["drivers"] == drivers
    # wall_ms has one meaning everywhere, measured where each instance ran (a host running a
    # chain whole, a chain driver for a spread one, the coordinator for the main chain)
    for where in (local_run, run):
        walls = pd.read_parquet(where / "consensus").wall_ms
        assert walls.notna().all() and (walls > 0).all(), (where, walls)
    faulty = tables(run)["credits"].behaviour.unique()
    # the comparison covers rounds with several kinds of Byzantine consensus nodes
    assert len(set(faulty) & {"equivocate", "forge", "silent", "delay"}) >= 2


def test_a_coalition_spread_over_hosts_colludes_as_it_does_locally(tmp_path):
    """Four equivocators of a ten-member PBFT committee (beyond f = 3), each on a host of its
    own: every host must know the whole coalition, as the local runtime does. When each
    host was sent only its own nodes' behaviours, an equivocator knew only itself, split the
    honest members differently and this run's tables differed from the local run's."""
    spec = {"experiment": {"name": "coalition", "seed": 2, "rounds": 3},
            "topology": {"vpps": 1, "nodes_per_vpp": 10, "grid_nodes": 1},
            "consensus": {"algorithm": "pbft"},
            "faults": {"byzantine_fraction": 0.45, "behaviours": ["equivocate"]}}
    local = run_local(build_config(spec, ["experiment.runtime=local"]), tmp_path / "local")
    spread = run_ray(build_config(spec, ["experiment.nodes_per_actor=1"]), tmp_path / "ray")
    side = tables(local)["consensus"].query("chain == 'vpp-0'")
    assert (side.byzantine_in_committee == 4).all() and (side.f == 3).all()
    assert_same_tables(local, spread)


def test_a_dead_node_host_ends_the_run_cleanly(tmp_path):
    cfg = build_config(BYZANTINE, ["experiment.nodes_per_actor=4", "experiment.rounds=4"])

    def kill_after_first_round(rnd, hosts):
        if rnd == 0:
            ray.kill(hosts[0])

    with pytest.raises(RunError) as err:
        run_ray(cfg, tmp_path, on_round=kill_after_first_round)
    assert_dead_host_ended(err.value, "vpp-0", (1, 2), tmp_path)


def test_a_dead_chain_driver_ends_the_run_naming_its_chain(tmp_path):
    """With the side chains spread over hosts their state lives on chain drivers: a driver
    killed mid-run ends the run naming the chain it owns, every finished round readable."""
    cfg = build_config(BYZANTINE, ["experiment.nodes_per_actor=4", "experiment.rounds=4"])

    def kill_vpp1s_driver_after_first_round(rnd, actors):
        if rnd == 0:
            ray.kill(actors[-1])  # hosts first, then the drivers: vpp-1's is the last

    with pytest.raises(RunError) as err:
        run_ray(cfg, tmp_path, on_round=kill_vpp1s_driver_after_first_round)
    assert_dead_host_ended(err.value, "vpp-1", (1, 2), tmp_path)


def test_a_host_dying_in_a_cross_chain_step_is_named_with_its_chain_and_round():
    """The main chain's two-phase step reaches a side chain's accounts on its host; a host
    dead by then ends the run naming the chain and the round, as any other call to it does."""
    from mlts_ray.config import to_toml
    from mlts_ray.ledger.chain_accounts import ShardOp
    from mlts_ray.runtime.ray.host import HostService
    from mlts_ray.runtime.ray.sides import RemoteShard, fan_out

    cfg = build_config(BYZANTINE)
    host = ray.remote(HostService).options(num_cpus=0, max_restarts=0).remote(to_toml(cfg))
    ray.get(host.own.remote([0]))
    shard = RemoteShard("vpp-0", host, ["vpp-0/vmc"])
    shard.round = 3
    assert fan_out([(shard, ShardOp.BALANCE, ("vpp-0/vmc",))]) == [(100_000, 0)]  # answers
    ray.kill(host)
    wait_dead(host)
    for ask in (lambda: shard.prepare(1, ["vpp-0/vmc"], {}),
                lambda: fan_out([(shard, ShardOp.COMMIT, (1, {}, []))])):
        with pytest.raises(RunError) as err:
            ask()
        assert err.value.subject == "vpp-0 round 3" and "an actor running it died" in err.value.why


def wait_dead(host) -> None:
    """Until ``host`` answers no more (``ray.kill`` returns before the actor is gone: a call
    sent at once may still be answered)."""
    from ray.exceptions import RayActorError

    for _ in range(200):
        try:
            ray.get(host.shard_calls.remote([]))
        except RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError("the killed host still answers after 10 s")


class CountingHost(HostService):
    """A real host that also counts the calls it answers, by method."""

    def __init__(self, cfg_toml: str) -> None:
        super().__init__(cfg_toml)
        self.calls: Counter[str] = Counter()
        self.widest = 0  # the most shards one shard_calls call asked

    def sides_open(self, *args):
        self.calls["sides_open"] += 1
        return super().sides_open(*args)

    def sides_record(self, *args):
        self.calls["sides_record"] += 1
        return super().sides_record(*args)

    def sides_close(self, *args):
        self.calls["sides_close"] += 1
        return super().sides_close(*args)

    def sides_end(self, *args):
        self.calls["sides_end"] += 1
        return super().sides_end(*args)

    def shard_calls(self, calls):
        self.calls["shard_calls"] += 1
        self.widest = max(self.widest, len({chain for chain, _, _ in calls}))
        return super().shard_calls(calls)

    def counts(self) -> tuple[dict[str, int], int]:
        return dict(self.calls), self.widest


def test_each_host_gets_one_call_per_phase_whatever_its_number_of_chains():
    """Six side chains on two hosts: a round sends each host one open, one record, one close
    and one end call (not one per chain), and a two-phase step's prepare (or commit) one call
    for all the host's shards it touches; the rows come back to the right chains, in VPP
    order, equal to the local runtime's."""
    from mlts_ray.config import to_toml
    from mlts_ray.mlts.topology import chain_sizes
    from mlts_ray.runtime.placement import place_run
    from mlts_ray.runtime.ray.actors import ray_rounds
    from mlts_ray.runtime.ray.run import fetch_round
    from mlts_ray.runtime.rounds import Rounds

    cfg = build_config({**BYZANTINE, "topology": {"vpps": 6, "nodes_per_vpp": 6,
                                                   "grid_nodes": 1}})
    placement = place_run(chain_sizes(cfg.topology), "auto", 2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    hosts = [ray.remote(CountingHost).options(num_cpus=0).remote(to_toml(cfg))
             for _ in placement.hosts]
    rounds, local = ray_rounds(cfg, hosts, placement), Rounds.local(cfg)
    sim = rounds.sim
    owned = [len(sim.services.chains_of[h]) for h in range(len(hosts))]
    assert owned == [3, 3]  # the main chain runs in the coordinator, on no host
    for rnd in range(2):
        started = time.perf_counter()
        pieces = rounds.pieces(rnd)
        wall, sides = time.perf_counter() - started, sim.services
        # the record call goes out with the open call, but the waits the bench's model is
        # measured from never overlap: they fit in the round, the overlapped work in its call
        assert sum(sides.wait_s.values()) <= wall
        assert 0 < sides.overlap_s <= sides.wait_s["sides_record"]
        # and each chain's work in each call as its host thread's CPU time too, which a
        # thread cannot spend faster than the wall (the clocks differ by their resolution)
        assert sides.cpu_s.keys() == sides.work_s.keys() == {
            "sides_open", "sides_record", "sides_close", "sides_end"}
        for call, cpu in sides.cpu_s.items():
            assert cpu.keys() == sides.work_s[call].keys() == set(sides.shards)
            assert all(0 < s <= sides.work_s[call][c] + 1e-3 for c, s in cpu.items()), call
        assert 0 < sides.overlap_cpu_s <= sides.overlap_s + 1e-3
        got = fetch_round(pieces)
        want = local.rows(rnd)
        assert_round_as_local(cfg, rnd, got, want)
        assert any(t["cross"] for t in want["trades"])  # the main chain's steps reached hosts
    for (counts, widest), chains in zip(ray.get([h.counts.remote() for h in hosts]), owned,
                                        strict=True):
        assert counts == {"sides_open": 2, "sides_record": 2, "sides_close": 2,
                          "sides_end": 2, "shard_calls": counts["shard_calls"]}
        assert 2 <= widest <= chains  # a step over several of the host's shards: one call


def test_a_host_actor_freezes_what_its_setup_built():
    """A host's keys and its side chains' services live as long as the actor: they are frozen
    out of the collector's scans once built (``runtime.frozen``), so a full collection
    walks only what a round made."""
    from mlts_ray.config import to_toml
    from mlts_ray.runtime.ray.actors import RayHost

    class FreezeCountingHost(RayHost):
        def frozen(self) -> int:
            import gc

            return gc.get_freeze_count()

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    host = ray.remote(FreezeCountingHost).options(num_cpus=0).remote(to_toml(build_config(BYZANTINE)))
    started = ray.get(host.frozen.remote())
    ray.get(host.own.remote([0, 1]))
    owning = ray.get(host.frozen.remote())
    assert started > 10_000 and owning > started  # the modules and keys; then the services
    ray.kill(host)


@ray.remote
def _divide(a: int, b: int) -> int:
    return a // b


@ray.remote
def _refuse() -> None:
    from mlts_ray.errors import ConfigError

    raise ConfigError("consensus.view_timeout_ms", "refused in an actor")


def test_an_error_in_an_actor_reaches_the_user_as_one_line_naming_it():
    from mlts_ray.runtime.ray.run import _unwrapped

    with pytest.raises(RunError) as err:
        _unwrapped(lambda: ray.get(_divide.remote(1, 0)), "round 3")
    assert err.value.subject == "round 3"
    assert err.value.why == "internal error in an actor: ZeroDivisionError: integer division " \
        "or modulo by zero"
    with pytest.raises(RunError) as err:
        _unwrapped(lambda: ray.get(_refuse.remote()), "round 0")
    assert str(err.value) == "consensus.view_timeout_ms: refused in an actor"


def test_a_failure_before_the_first_round_leaves_the_run_failed(tmp_path, monkeypatch):
    """Placement groups that cannot be made (here: patched to fail as Ray does when a group
    is infeasible) used to leave the manifest ``running``."""
    from mlts_ray.runtime.ray import actors

    def infeasible(cfg, placement):
        raise RunError("placement", "no Ray node can hold the group vpp-0")

    monkeypatch.setattr(actors, "start_hosts", infeasible)
    cfg = build_config(BYZANTINE, ["experiment.nodes_per_actor=4"])
    with pytest.raises(RunError, match="no Ray node can hold"):
        run_ray(cfg, tmp_path)
    (run,) = tmp_path.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["rounds_done"] == 0
    assert "no Ray node can hold" in manifest["error"]
    monkeypatch.undo()  # the cause fixed, the failed run resumes (its lock was released)
    assert run_ray(cfg, tmp_path, resume=run) == run
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


def test_ray_equals_local_with_datagrams_recovery_and_catch_up(tmp_path):
    """Datagram loss: client resends, observer fetches and next-height catch-up all happen
    (the test checks they do), and one node per actor still gives the local runtime's tables."""
    cfg = build_config(BYZANTINE, ["network.transport=datagram", "network.loss=0.15",
                                   "experiment.rounds=4"])
    local = run_local(build_config(cfg.model_dump(mode="json"), ["experiment.runtime=local"]),
                      tmp_path / "local")
    ray_run = run_ray(build_config(cfg.model_dump(mode="json"), ["experiment.nodes_per_actor=1"]),
                      tmp_path / "ray")
    assert_same_tables(local, ray_run)
    phases = set(tables(local)["messages"].phase)
    assert {"fetch", "certificate"} <= phases and "retransmit" not in phases


def test_the_benchs_scale_out_rounds_run_each_round_three_ways_each_with_its_own_checks():
    """``scale_rounds.measure``: rounds 1-3 locally, over both CPUs and on one host, each
    round in turn; each simulation checks its signatures itself (its own verify cache, the
    process's put back after), so none finds another's checks done: every Ray round's
    coordinator verifies its main block's contracts for real."""
    from mlts_ray.ledger.crypto import COUNTS, VERIFY_CACHE
    from mlts_ray.runtime import scale_rounds

    cfg = build_config({**BYZANTINE, "topology": {"vpps": 4, "nodes_per_vpp": 6,
                                                   "grid_nodes": 1},
                        "faults": {"byzantine_fraction": 0.0}})
    VERIFY_CACHE.clear()
    VERIFY_CACHE.verify(b"k" * 32, b"x", b"s" * 64)  # the process's own memory: one check
    checked: list[int] = []
    real = scale_rounds._on_ray

    def counting(sim):
        run = real(sim)

        def counted(rnd):
            start = COUNTS["verifies"]
            got = run(rnd)
            checked.append(COUNTS["verifies"] - start)
            return got

        return counted

    scale_rounds._on_ray = counting
    try:
        got = scale_rounds.measure(cfg)
    finally:
        scale_rounds._on_ray = real
    assert len(got.local) == len(got.every_cpu) == len(got.one_host) == 3
    assert {h for r in got.every_cpu for h in r.host_of.values()} == {0, 1}
    assert {h for r in got.one_host for h in r.host_of.values()} == {0}
    assert all(wall > parallel > 0 for wall, parallel in got.local)
    # both Ray simulations check the same round's signatures: neither got them for free
    rounds = list(zip(checked[0::2], checked[1::2], strict=True))
    assert len(rounds) == 4 and all(a > 0 and a == b for a, b in rounds), rounds
    hits = VERIFY_CACHE.hits  # the process's memory, as it was: that one check, remembered
    assert len(VERIFY_CACHE) == 1 and not VERIFY_CACHE.verify(b"k" * 32, b"x", b"s" * 64)
    assert VERIFY_CACHE.hits == hits + 1


def test_spread_side_chains_live_on_their_chain_drivers_not_in_the_coordinator():
    """``nodes_per_actor`` below a VPP's size spreads each side chain over several hosts: its
    state lives on a chain driver, the coordinator holds only the main chain's accounts and
    reaches the side chains' through their drivers (two-phase steps included); the rounds
    equal the local runtime's."""
    from mlts_ray.ledger.chain_accounts import ChainAccounts
    from mlts_ray.mlts.topology import chain_sizes
    from mlts_ray.runtime.placement import place_run
    from mlts_ray.runtime.ray.actors import ray_rounds, start_drivers, start_hosts
    from mlts_ray.runtime.ray.run import fetch_round
    from mlts_ray.runtime.ray.sides import RaySides, RemoteShard
    from mlts_ray.runtime.rounds import Rounds

    cfg = build_config(BYZANTINE, ["experiment.nodes_per_actor=4"])
    placement = place_run(chain_sizes(cfg.topology), 4, 2)
    actors = start_hosts(cfg, placement)
    hosts = actors.hosts
    drivers = actors.drivers = start_drivers(cfg, hosts, placement, 2)
    try:
        assert len(drivers) == 2  # one per side chain: two chains, two CPUs
        with pytest.raises(ValueError, match="chain drivers"):
            ray_rounds(cfg, hosts, placement)
        rounds, local = ray_rounds(cfg, hosts, placement, drivers), Rounds.local(cfg)
        sim = rounds.sim
        assert isinstance(sim.services, RaySides)
        owners = {c: s.host._actor_id for c, s in sim.services.shards.items()}
        assert owners == {"vpp-0": drivers[0]._actor_id, "vpp-1": drivers[1]._actor_id}
        here = [name for name, part in sim.ledger.parts.items() if isinstance(part, ChainAccounts)]
        assert here == ["main"]
        assert all(isinstance(sim.ledger.parts[c], RemoteShard) for c in owners)
        crossed = 0
        for rnd in range(3):
            got = fetch_round(rounds.pieces(rnd))
            want = local.rows(rnd)
            crossed += sum(t["cross"] and t["status"] == "settled" for t in want["trades"])
            assert_round_as_local(cfg, rnd, got, want)
        assert crossed  # the main chain's two-phase steps reached the drivers' accounts
    finally:
        actors.kill()
