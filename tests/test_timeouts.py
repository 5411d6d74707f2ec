"""Timeouts that fit the network (issue 34, item 1): the first view timeout follows the chain's
fault-free normal case (``consensus.timing``), so calibrated PBFT and DCE-PBFT decide every
fault-free round of the shipped N and bandwidth sweeps in view 0; a configured number keeps
the old fixed cap (and with it the old view changes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlts_ray.config import build_config, load_config, with_values
from mlts_ray.consensus.timing import VOTE_BYTES, Timing
from mlts_ray.net.network import tx_us
from mlts_ray.runtime.rounds import Rounds
from mlts_ray.runtime.sweep import sweep_configs

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_normal_case_is_the_closed_form_of_its_phases():
    """Four members on 8 Mbit/s (1 byte/us), the client a fifth node on 80 Mbit/s, 10 us hops,
    1 us a signature, 2 us a check, 3 trades: each phase worked out by hand."""
    timing = Timing(hop_us=10, up_bps=(8_000_000,) * 4 + (80_000_000,),
                    down_bps=(8_000_000,) * 5, sign_us=1, verify_us=2, margin=2.0)
    request, proposal, trades = 800, 1600, 3
    got = timing.normal_case_us(members=(0, 1, 2, 3), client=4, request_bytes=request,
                                proposal_bytes=proposal, trades=trades)
    request_us = 4 * 80 + 10 + 800 + 2  # four copies at 10 B/us, a hop, the downlink, a check
    propose_us = 2 * 3 * 2 + 1  # the primary checks six contract signatures, signs
    pre_prepare_us = 3 * 1600 + 10 + 1600 + (1 + 6) * 2 + 1
    vote_us = 3 * (VOTE_BYTES + VOTE_BYTES + 2) + 10 + 1  # three copies up, three down, checks
    assert got == request_us + propose_us + pre_prepare_us + 2 * vote_us
    assert tx_us(request, 80_000_000) == 80  # the unit the hand computation assumed


@given(normal=st.integers(1, 10**8), margin=st.floats(1, 100),
       bound=st.none() | st.integers(0, 10**9))
def test_the_first_timeout_is_never_below_the_normal_case(normal, margin, bound):
    timing = Timing(1, (1,), (1,), 0, 0, margin, bound)
    got = timing.first_timeout_us(normal)
    assert normal <= got <= max(normal, round(margin * normal))
    if bound is not None and normal <= bound <= margin * normal:
        assert got == bound  # accountability shortens it down to the recent rounds' bound
    if bound is None:
        assert got == round(margin * normal)


def _views(cfg, rounds=2) -> list[tuple[str, int, int]]:
    run = Rounds.local(cfg)
    return [(r["chain"], rnd, r["views"]) for rnd in range(rounds)
            for r in run.rows(rnd)["consensus"]]


def _points(name: str) -> list:
    """Every point of a shipped sweep, its seed fixed (the seeds repeat the same shape)."""
    cfg = load_config(EXPERIMENTS / name)
    return [with_values(c, {"experiment.rounds": 2, "experiment.runtime": "local"})
            for c in sweep_configs(cfg) if c.experiment.seed == 1]


@pytest.mark.parametrize("name", ["latency_vs_nodes.toml", "latency_vs_nodes_large.toml",
                                  "bandwidth.toml"])
def test_calibrated_protocols_decide_every_fault_free_round_in_view_0(name):
    points = _points(name)
    assert len(points) >= 4
    for cfg in points:
        views = _views(cfg)
        label = (cfg.consensus.algorithm, cfg.topology.nodes_per_vpp, cfg.network.uplink_mbps)
        assert views and all(v == 1 for _, _, v in views), (label, views)


def test_the_main_chain_at_100_vpps_decides_in_view_0():
    cfg = build_config({
        "experiment": {"seed": 1, "rounds": 2, "runtime": "local"},
        "topology": {"vpps": 100, "nodes_per_vpp": 4},
        "consensus": {"algorithm": "pbft"},
    })
    views = _views(cfg)
    main = [v for chain, _, v in views if chain == "main"]
    assert main == [1, 1], main


def test_the_old_settings_keep_the_old_view_changes():
    """The record of the old world: 500 ms is shorter than PBFT's normal case at N = 100 on
    20 Mbit/s with whole blocks in the pre-prepare and a residential primary (each block
    through its uplink 99 times), so every round changes view; "auto" decides the same rounds in view 0 with whole
    blocks too, and so does the old cap once proposals carry digests."""
    raw = {"experiment": {"seed": 1, "rounds": 2, "runtime": "local"},
           "topology": {"vpps": 1, "nodes_per_vpp": 100}, "workload": {"cross_vpp_share": 0.0}}

    def side(**consensus):
        cfg = build_config({**raw, "consensus": {"algorithm": "pbft", "pbft_primary": "stable",
                                                 **consensus}})
        return [v for chain, _, v in _views(cfg) if chain == "vpp-0"]

    assert min(side(view_timeout_ms=500, proposal="block")) >= 2
    assert side(proposal="block") == [1, 1]
    assert side(view_timeout_ms=500) == [1, 1]
