"""Side chains own their state (mlts.side_service): the round in pieces puts the same tables
together as one ledger and one row list would, and the main chain reaches a side chain's
accounts only through the shard's two-phase step (docs/architecture.md section 7)."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from mlts_ray.config import build_config
from mlts_ray.errors import LedgerError
from mlts_ray.ledger.chain_accounts import one_by_one
from mlts_ray.mlts.side_service import MainNews, SideService, run_consensus
from mlts_ray.population import Population
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.results.schemas import TABLES, assemble, to_batch
from mlts_ray.runtime.rounds import Rounds
from mlts_ray.runtime.tables import bundle

CFG = {
    "experiment": {"name": "pieces", "seed": 6, "rounds": 3, "runtime": "local"},
    "topology": {"vpps": 3, "nodes_per_vpp": 10, "grid_nodes": 2},
    "consensus": {"side_committee_min": 4},
    "workload": {"cross_vpp_share": 1.0},
    "faults": {"byzantine_fraction": 0.3, "where": "both",
               "behaviours": ["forge", "abandon", "silent", "false-audit"]},
}


@pytest.fixture(scope="module")
def rounds():
    """The rounds and each round's pieces as the collector makes their rows."""
    run = Rounds.local(build_config(CFG))
    return run, [[run.collector.rows(r, p) for p in run.sim.run_round(r)] for r in range(3)]


def flatten(pieces: list) -> dict:
    """The pieces' rows as one table each, as ``Collector.tables`` puts a round together."""
    tables = {t: [r for p in pieces for r in p.get(t, [])] for t in TABLES}
    tables["balances"].sort(key=lambda r: r["node"])
    return tables


def test_pieces_assembled_as_batches_equal_the_flat_rows(rounds):
    """What the Ray driver writes (each piece a batch, ``assemble``) is, row for row, what
    the local runtime writes (``to_batch`` of the round's rows)."""
    run, pieces = rounds
    for rnd, round_pieces in enumerate(pieces):
        flat = flatten(round_pieces)
        batched = assemble([{t: to_batch(t, "r", rnd, rows) for t, rows in p.items()}
                            for p in round_pieces])
        for table in TABLES:
            assert batched[table].equals(to_batch(table, "r", rnd, flat[table])), table
    flat = [flatten(p) for p in pieces]
    assert all(f["trades"] and f["energy"] and f["audits"] for f in flat)
    assert any(t["cross"] and t["status"] == "settled" for t in flat[1]["trades"])
    assert flat[2]["anchors"]  # the main block anchors the last one's collaborative blocks


def test_pieces_bundled_per_host_and_sliced_back_equal_the_flat_rows(rounds):
    """As a host answers (one ``Bundle`` for all its chains of a call) and the driver reads
    (each chain's span, in VPP order): the same tables, row for row, as the flat rows --
    with the chains dealt to two hosts crosswise, and the pieces of one call bundled."""
    run, pieces = rounds
    v = run.cfg.topology.vpps
    for rnd, round_pieces in enumerate(pieces):
        rebuilt = list(round_pieces)
        for first in (0, v + 1, 2 * v + 2):  # each side chain's trade, close and end pieces
            for host in (0, 1):
                mine = [first + k for k in range(v) if k % 2 == host]
                rows = bundle("r", rnd, [round_pieces[i] for i in mine])
                for k, i in enumerate(mine):
                    rebuilt[i] = rows.piece(k)
        rebuilt = [p if all(isinstance(b, pa.RecordBatch) for b in p.values()) else
                   {t: to_batch(t, "r", rnd, r) for t, r in p.items()} for p in rebuilt]
        flat = flatten(round_pieces)
        got = assemble(rebuilt)
        for table in TABLES:
            assert got[table].equals(to_batch(table, "r", rnd, flat[table])), (rnd, table)


def test_a_round_is_each_side_chain_then_the_main_chain_then_each_again(rounds):
    """Each piece holds the kinds of rows of its step, and over the three rounds each kind
    shows up (a piece has no table it has no row of: round 1's main block anchored nothing,
    and the grid's supervisors audit nobody in these rounds)."""
    run, pieces = rounds
    v = run.cfg.topology.vpps
    layout = [{"blocks", "consensus", "messages", "trades"}] * v \
        + [{"anchors", "blocks", "consensus", "messages", "trades"}] \
        + [{"audits", "blocks", "credits", "energy", "market", "messages"}] * v \
        + [{"audits", "credits", "market"}] + [{"balances"}] * (v + 1)
    for round_pieces in pieces:
        assert len(round_pieces) == len(layout)
        assert all(set(p) <= want for p, want in zip(round_pieces, layout, strict=True))
    seen = [set().union(*(set(p[k]) for p in pieces)) for k in range(len(layout))]
    main_tail = 2 * v + 1
    assert seen[main_tail] == {"credits", "market"}
    assert seen[:main_tail] + seen[main_tail + 1:] == layout[:main_tail] + layout[main_tail + 1:]
    # a side chain's pieces carry its own rows only
    for k in range(v):
        chain = f"vpp-{k}"
        for p in (pieces[2][k], pieces[2][v + 1 + k]):
            assert {r["chain"] for rows in p.values() for r in rows} <= {chain}


def test_the_coordinator_holds_only_the_main_shard_when_sides_live_elsewhere():
    """With the services held by another ``Sides`` the coordinator's ledger has the grid
    nodes' accounts alone; the side chains' accounts are the services' shards; and the
    tables are the local runtime's though the side chains' consensus ran in another order,
    before the main chain's instance."""
    cfg = build_config(CFG)
    made = {}

    class Elsewhere:  # the services in this process, but not the Simulation's own
        def __init__(self, identities, keys, runner):
            self.services, self.runner = {}, runner
            for v in range(cfg.topology.vpps):
                chain = vpp_layout(cfg.topology, v).chain
                self.services[chain] = SideService(cfg, v, identities, keys,
                                                   population.strategies(chain))
            self.shards = {c: s.shard for c, s in self.services.items()}
            self.fan_out = one_by_one
            made["services"] = self.services

        def open(self, rnd):
            forwarded = [s.open(rnd) for s in self.services.values()]
            return lambda: forwarded

        def record(self, rnd):
            # the side chains' consensus at once, last VPP first, before the coordinator
            # matches the cross-VPP book and runs the main chain's instance (the local
            # runtime runs it after them): the round does not depend on that order
            backwards = list(reversed(self.services.values()))
            ran = dict(zip(backwards, run_consensus(backwards, self.runner), strict=True))
            return lambda: [s.recorded(rnd, ran[s]) for s in self.services.values()]

        def close(self, rnd, news):
            return [s.close(rnd, news.get(c, MainNews())) for c, s in self.services.items()]

        def end(self, rnd):
            return [s.end(rnd) for s in self.services.values()]

    population = Population(cfg)
    elsewhere, here = Rounds(cfg, sides=Elsewhere), Rounds.local(cfg)
    sim = elsewhere.sim
    for rnd in range(3):
        assert _no_walls(elsewhere.rows(rnd)) == _no_walls(here.rows(rnd))
    assert sim.sides == {}  # no side chain in the coordinator
    # the side chains' accounts are the services' own
    for chain, service in made["services"].items():
        assert sim.ledger.parts[chain] is service.shard


def _no_walls(tables: dict) -> dict:
    """The tables but their ``wall_*`` columns (wall time is no result)."""
    return {t: [{c: v for c, v in r.items() if not c.startswith("wall_")} for r in rows]
            for t, rows in tables.items()}


def test_a_shard_locked_by_a_step_refuses_the_side_chains_own_work():
    """While the main chain holds a step on a VPP's accounts, its service cannot touch them."""
    sim = Rounds.local(build_config(CFG)).sim
    service = sim.services.services["vpp-0"]
    node = service.side.layout.traders[0]
    service.shard.prepare(99, [node], [])
    with pytest.raises(LedgerError, match="step 99") as err:
        service.ledger.mint(node, 1)
    assert err.value.subject == f"account {node}"
    service.shard.abort(99)
    service.ledger.mint(node, 1)
    assert service.shard.balance(node)[1] == 1


def test_balances_sorted_across_pieces_whatever_their_order():
    """``assemble`` sorts balances by node, as one ledger lists them, however the shards'
    pieces come."""
    rows = [{"node": f"vpp-{v}/n-{i:03d}", "money": v * 10 + i, "energy_wh": 0,
             "energy_kwh": 0.0} for v in (0, 1, 10, 2) for i in range(3)]
    pieces = [{"balances": to_batch("balances", "r", 0, rows[k:k + 3])}
              for k in range(0, len(rows), 3)]
    random.Random(1).shuffle(pieces)
    got = assemble(pieces)["balances"].column("node").to_pylist()
    assert got == sorted(r["node"] for r in rows)
    assert isinstance(assemble(pieces)["energy"], pa.RecordBatch)
