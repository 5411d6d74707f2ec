"""Safety over seeded random schedules, and determinism of a whole run.

docs/architecture.md section 9: with at most f Byzantine committee members of any behaviour, no two honest
nodes commit different blocks at one height, whatever the network does (loss, jitter, timeouts).
And the same config and seed give the same tables, Byzantine nodes included.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlts_ray.config import build_config
from mlts_ray.population.registry import consensus_faulty
from mlts_ray.consensus.instance import fault_bound
from mlts_ray.runtime.local import run_local
from mlts_ray.results.schemas import TABLES
from test_scenarios import check_invariants, node_names, run_one


@st.composite
def schedules(draw: st.DrawFn) -> dict:
    """One instance: sizes, algorithm, where the client sits, at most f faulty committee members
    (never the client, which submits the request) with random behaviours, and the network."""
    n = draw(st.sampled_from([4, 5, 7, 10]))
    algorithm = draw(st.sampled_from(["pbft", "dce-pbft"]))
    k = n if algorithm == "pbft" else draw(st.integers(min(4, n), n))
    client = draw(st.integers(0, n - 1))
    candidates = [i for i in range(k) if i != client]
    faulty = draw(st.lists(st.sampled_from(candidates), unique=True,
                           max_size=min(fault_bound(k), len(candidates))))
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "n": n, "algorithm": algorithm, "k": k, "client": client,
        "faulty": {i: draw(st.sampled_from(consensus_faulty())) for i in faulty},
        "loss": draw(st.integers(0, 200)) / 1000,  # network.loss in [0, 0.2]
        "jitter_ms": draw(st.integers(0, 30)),  # intra-VPP jitter (default 3 ms)
        "timeout_ms": draw(st.sampled_from([100, 250, 500])),
        "trades": draw(st.integers(0, 5)),
    }


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_at_most_f_faulty_members_never_break_safety(s: dict) -> None:
    cfg = build_config(
        {"experiment": {"seed": s["seed"]},
         "consensus": {"algorithm": s["algorithm"], "view_timeout_ms": s["timeout_ms"]}},
        [f"network.loss={s['loss']}", f"network.intra_jitter_ms={s['jitter_ms']}"],
    )
    names = node_names(s["n"])
    behaviours = {names[i]: b for i, b in s["faulty"].items()}
    run = run_one(cfg, s["algorithm"], s["n"], s["k"], behaviours, s["trades"], s["client"])
    assert not run.judged.safety_violation, run.describe()
    committed = {name: ds[0] for name, ds in run.commits.items()}
    for (a, da), (b, db) in combinations(sorted(committed.items()), 2):
        assert da == db, f"honest {a} and {b} committed different blocks: {run.describe()}"
    check_invariants(run)  # the checker agrees, one commit per node, decided block is honest's


# --- determinism of a whole run --------------------------------------------------------------------

MIX = {
    "experiment": {"rounds": 4, "runtime": "local", "seed": 2024},
    "topology": {"vpps": 2, "nodes_per_vpp": 10},
    "consensus": {"algorithm": "dce-pbft", "side_committee_fraction": 0.4},
    "network": {"loss": 0.05},
    "faults": {"byzantine_fraction": 0.3,
               "behaviours": ["silent", "forge", "equivocate", "delay", "abandon", "false-audit"]},
}


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for table in TABLES:
        df = pd.read_parquet(root / table)
        df = df.drop(columns=[c for c in df.columns if c.startswith("wall_")])
        out[table] = df.sort_values(list(df.columns), kind="mergesort").reset_index(drop=True)
    return out


def test_same_config_and_seed_give_identical_tables(tmp_path: Path) -> None:
    cfg = build_config(MIX)
    first = run_local(cfg, tmp_path / "a")
    second = run_local(cfg, tmp_path / "b")
    assert first.name == second.name  # the run id depends on the config only
    a, b = _tables(first), _tables(second)
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], check_exact=True, obj=table)
    # the comparison is not vacuous: Byzantine nodes of every behaviour were in play
    # (3 faulty nodes per VPP of 10 take the first three listed behaviours in each VPP)
    assert set(a["credits"]["behaviour"]) >= {"honest", "silent", "forge", "equivocate"}
    assert (a["consensus"]["byzantine_in_committee"] > 0).any()
    assert len(a["consensus"]) == 4 * (2 + 1)  # 4 rounds x (2 side chains + the main chain)
    assert a["messages"]["dropped"].sum() > 0  # the lossy network dropped messages, identically


def test_another_seed_gives_other_tables(tmp_path: Path) -> None:
    """Guards the test above: the tables do depend on the seed."""
    cfg = build_config(MIX)
    other = build_config(MIX, ["experiment.seed=2025"])
    a = _tables(run_local(cfg, tmp_path / "a"))
    b = _tables(run_local(other, tmp_path / "b"))
    assert not a["consensus"].drop(columns=["run_id"]).equals(b["consensus"].drop(columns=["run_id"]))
