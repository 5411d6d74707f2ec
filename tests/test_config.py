"""Tests of mlts_ray.config: validation errors name the dotted key, defaults follow docs/architecture.md and the README,
``--set`` is typed, ``to_toml`` round-trips, committee sizes are exact."""

from __future__ import annotations

import itertools
import math
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.config import (
    SECTIONS,
    Config,
    build_config,
    committee_size,
    dotted,
    known_keys,
    load_config,
    main_committee_size,
    side_committee_size,
    to_toml,
)
from mlts_ray.errors import ConfigError, MltsError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"

PARTITION = {"start_ms": 0, "end_ms": 100, "groups": [["vpp-0/vmc"], ["vpp-1/vmc", "vpp-2/vmc"]]}


def _write(tmp_path: Path, raw: dict[str, Any], name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


# --- 1. bad inputs ------------------------------------------------------------------------------
# (id, raw mapping, --set overrides, expected subject(s), fragments expected in `why`)
# A tuple of subjects means "either is acceptable" (only used where the code's choice of prefix is
# debatable, see the sweep-unknown-key rows).

SWEEP_UNKNOWN = ("topology.vpp", "sweep.topology.vpp")

BAD: list[tuple[str, dict[str, Any], list[str], str | tuple[str, ...], list[str]]] = [
    # unknown names
    ("unknown-section", {"topo": {"vpps": 3}}, [], "topo", ["unknown key"]),
    ("unknown-key-suggests", {"topology": {"vpp": 3}}, [], "topology.vpp",
     ["unknown key", "did you mean topology.vpps?"]),
    ("unknown-key-suggests-2", {"consensus": {"algoritm": "pbft"}}, [], "consensus.algoritm",
     ["unknown key", "did you mean consensus.algorithm?"]),
    ("unknown-key-in-partition", {"faults": {"partitions": [{**PARTITION, "stop_ms": 5}]}}, [],
     "faults.partitions[0].stop_ms", ["unknown key"]),
    # wrong types
    ("str-for-int", {"topology": {"vpps": "3"}}, [], "topology.vpps",
     ["must be an integer", "'3'", "(str)"]),
    ("bool-for-int", {"experiment": {"seed": True}}, [], "experiment.seed",
     ["must be an integer", "True", "(bool)"]),
    ("float-for-int", {"topology": {"nodes_per_vpp": 8.0}}, [], "topology.nodes_per_vpp",
     ["must be an integer", "8.0", "(float)"]),
    ("int-for-list", {"faults": {"behaviours": 3}}, [], "faults.behaviours",
     ["must be a list", "3"]),
    ("str-for-float", {"network": {"loss": "high"}}, [], "network.loss",
     ["must be a number", "'high'"]),
    ("bool-for-float", {"credit": {"initial": False}}, [], "credit.initial",
     ["must be a number", "False"]),
    ("section-not-table", {"topology": 3}, [], "topology", ["must be a table"]),
    ("sweep-not-list", {"sweep": {"topology.vpps": 3}}, [], "sweep.topology.vpps",
     ["must be a list"]),
    # out of range, many sections
    ("nodes-per-vpp-negative", {"topology": {"nodes_per_vpp": -3}}, [], "topology.nodes_per_vpp",
     [">= 4", "-3"]),
    ("seed-negative", {"experiment": {"seed": -1}}, [], "experiment.seed", [">= 0", "-1"]),
    ("rounds-zero", {"experiment": {"rounds": 0}}, [], "experiment.rounds", [">= 1", "got 0"]),
    ("vpps-zero", {"topology": {"vpps": 0}}, [], "topology.vpps", [">= 1", "got 0"]),
    ("loss-one", {"network": {"loss": 1.0}}, [], "network.loss", ["< 1", "1.0"]),
    ("byzantine-1.5", {"faults": {"byzantine_fraction": 1.5}}, [], "faults.byzantine_fraction",
     ["<= 1", "1.5"]),
    ("side-fraction-zero", {"consensus": {"side_committee_fraction": 0}}, [],
     "consensus.side_committee_fraction", ["> 0", "got 0"]),
    ("main-fraction-above-one", {"consensus": {"main_committee_fraction": 1.2}}, [],
     "consensus.main_committee_fraction", ["<= 1", "1.2"]),
    ("intra-min-latency-zero", {"network": {"intra_min_latency_ms": 0}}, [],
     "network.intra_min_latency_ms", ["> 0", "got 0"]),
    ("credit-initial-above-100", {"credit": {"initial": 101}}, [], "credit.initial",
     ["<= 100", "101"]),
    ("cross-share-negative", {"workload": {"cross_vpp_share": -0.1}}, [],
     "workload.cross_vpp_share", [">= 0", "-0.1"]),
    ("empty-name", {"experiment": {"name": ""}}, [], "experiment.name", ["safe directory name"]),
    ("no-behaviours", {"faults": {"behaviours": []}}, [], "faults.behaviours", ["at least 1"]),
    # literals
    ("algorithm", {"consensus": {"algorithm": "raft"}}, [], "consensus.algorithm",
     ["'dce-pbft'", "'raft'"]),
    ("where", {"faults": {"where": "everywhere"}}, [], "faults.where",
     ["'side'", "'main'", "'both'", "'everywhere'"]),
    ("behaviour-0", {"faults": {"behaviours": ["byzantine"]}}, [], "faults.behaviours[0]",
     ["'crash'", "'false-audit'", "'byzantine'"]),
    ("behaviour-1", {"faults": {"behaviours": ["crash", "bogus"]}}, [], "faults.behaviours[1]",
     ["'bogus'"]),
    ("runtime", {"experiment": {"runtime": "slurm"}}, [], "experiment.runtime", ["'slurm'"]),
    # count-or-auto
    ("nodes-per-actor-zero", {"experiment": {"nodes_per_actor": 0}}, [],
     "experiment.nodes_per_actor", ['>= 1 or "auto"', "got 0"]),
    ("nodes-per-actor-many", {"experiment": {"nodes_per_actor": "many"}}, [],
     "experiment.nodes_per_actor", ['"auto"', "'many'"]),
    ("nodes-per-actor-bool", {"experiment": {"nodes_per_actor": True}}, [],
     "experiment.nodes_per_actor", ['"auto"', "True"]),
    # impossible combinations
    ("side-min-too-large",
     {"topology": {"nodes_per_vpp": 4, "supervisors_per_vpp": 1},
      "consensus": {"side_committee_min": 4}}, [],
     "consensus.side_committee_min", ["a committee of 4", "3 non-supervisor", "nodes_per_vpp = 4"]),
    ("side-fraction-too-large",
     {"topology": {"nodes_per_vpp": 10, "supervisors_per_vpp": 3},
      "consensus": {"side_committee_fraction": 0.8}}, [],
     "consensus.side_committee_fraction", ["committee of 8", "7 non-supervisor"]),
    ("supervisors-fill-vpp", {"topology": {"supervisors_per_vpp": 8}}, [],
     "topology.supervisors_per_vpp", ["8 supervisors", "VPP of 8"]),
    ("supervisors-exceed-vpp", {"topology": {"nodes_per_vpp": 5, "supervisors_per_vpp": 9}}, [],
     "topology.supervisors_per_vpp", ["9 supervisors", "VPP of 5"]),
    ("feed-in-above-retail", {"workload": {"feed_in_cents": 41, "retail_cents": 40}}, [],
     "workload.feed_in_cents", ["workload.retail_cents"]),
    ("replaced-price-band", {"workload": {"price_low_cents": 8}}, [],
     "workload.price_low_cents", ["workload.feed_in_cents"]),
    ("suspend-above-eligible", {"credit": {"suspend_threshold": 70}}, [],
     "credit.suspend_threshold", ["credit.eligible_threshold"]),
    ("initial-above-maximum", {"credit": {"initial": 60, "maximum": 50}}, [], "credit.initial",
     ["credit.maximum"]),
    ("partition-end-equals-start",
     {"faults": {"partitions": [{**PARTITION, "start_ms": 100, "end_ms": 100}]}}, [],
     "faults.partitions[0].end_ms", ["start_ms"]),
    ("partition-end-before-start-second",
     {"faults": {"partitions": [PARTITION, {**PARTITION, "start_ms": 300, "end_ms": 200}]}}, [],
     "faults.partitions[1].end_ms", ["start_ms"]),
    ("partition-missing-end", {"faults": {"partitions": [{"start_ms": 0, "groups": [["a"]]}]}}, [],
     "faults.partitions[0].end_ms", ["is required"]),
    ("partition-unknown-node", {"faults": {"partitions": [{**PARTITION, "groups": [["vpp-9/vmc"]]}]}},
     [], "faults.partitions[0].groups[0]", ["no such node 'vpp-9/vmc'"]),
    ("partition-unpadded-node", {"faults": {"partitions": [{**PARTITION, "groups": [["vpp-0/n-1"]]}]}},
     [], "faults.partitions[0].groups[0]", ["no such node"]),
    ("partition-node-twice",
     {"faults": {"partitions": [{**PARTITION, "groups": [["vpp-0/vmc"], ["vpp-0/vmc"]]}]}},
     [], "faults.partitions[0].groups[1]", ["already in group 0"]),
    ("partition-round-beyond-run",
     {"faults": {"partitions": [{**PARTITION, "rounds": [7]}]}}, [],
     "faults.partitions[0].rounds[0]", ["round 7"]),
    ("latency-infinite", {"network": {"intra_latency_ms": float("inf")}}, [],
     "network.intra_latency_ms", ["finite"]),
    ("timeout-nan", {"consensus": {"view_timeout_ms": float("nan")}}, [],
     "consensus.view_timeout_ms", ["finite"]),
    ("delay-beyond-an-hour", {"faults": {"delay_ms": 1e300}}, [], "faults.delay_ms", ["<= 3600000"]),
    ("name-escapes", {"experiment": {"name": "../../escaped"}}, [], "experiment.name",
     ["safe directory name"]),
    ("name-with-slash", {"experiment": {"name": "a/b"}}, [], "experiment.name", ["safe"]),
    ("name-with-newline", {"experiment": {"name": "a\nb"}}, [], "experiment.name", ["safe"]),
    ("name-hidden", {"experiment": {"name": ".x"}}, [], "experiment.name", ["safe"]),
    ("name-too-long", {"experiment": {"name": "x" * 65}}, [], "experiment.name", ["64"]),
    ("partition-empty-group", {"faults": {"partitions": [{**PARTITION, "groups": [["vpp-0/vmc"], []]}]}},
     [], "faults.partitions[0].groups[1]", ["empty"]),
    # contradictions across fields and times the site's clock does not show once (issue 33)
    ("start-in-the-spring-gap", {"experiment": {"start": "2026-03-29T02:30"}}, [],
     "experiment.start", ["does not exist in Europe/Berlin", "daylight saving begins"]),
    ("start-in-the-autumn-repeat", {"experiment": {"start": "2026-10-25T02:30"}}, [],
     "experiment.start", ["happens twice in Europe/Berlin"]),
    ("start-in-another-zones-gap",
     {"experiment": {"start": "2026-03-08T02:30"}, "energy": {"timezone": "America/New_York"}},
     [], "experiment.start", ["does not exist in America/New_York"]),
    ("eligible-above-maximum", {"credit": {"maximum": 50, "initial": 40, "idle_floor": 30}}, [],
     "credit.eligible_threshold", ["above credit.maximum (50)", "ever be eligible"]),
    ("idle-floor-above-maximum",
     {"credit": {"maximum": 45, "initial": 40, "idle_floor": 50, "eligible_threshold": 40}}, [],
     "credit.idle_floor", ["<= credit.maximum"]),
    ("min-timeout-above-timeout", {"consensus": {"view_timeout_ms": 40}}, [],
     "consensus.min_view_timeout_ms", ["50 ms is above consensus.view_timeout_ms (40 ms)"]),
    ("sweep-too-many-points",
     {"sweep": {"experiment.seed": list(range(2000)), "topology.vpps": list(range(1, 1001))}},
     [], "sweep", ["2,000,000 points (2000 x 1000)", "at most 10,000"]),
    # sweeps
    ("sweep-unknown-key", {"sweep": {"topology.vpp": [2, 4]}}, [], SWEEP_UNKNOWN,
     ["unknown key", "did you mean topology.vpps?"]),
    ("sweep-empty", {"sweep": {"topology.vpps": []}}, [], "sweep.topology.vpps",
     ["at least one value"]),
    ("sweep-bad-value", {"sweep": {"topology.vpps": [2, 0, 4]}}, [], "sweep.topology.vpps[1]",
     [">= 1", "got 0"]),
    ("sweep-bad-type", {"sweep": {"consensus.algorithm": ["pbft", "raft"]}}, [],
     "sweep.consensus.algorithm[1]", ["'raft'"]),
    ("sweep-bad-combination", {"sweep": {"topology.supervisors_per_vpp": [1, 8]}}, [],
     "sweep.topology.supervisors_per_vpp[1]", ["topology.supervisors_per_vpp:", "VPP of 8"]),
    # --set
    ("set-without-equals", {}, ["topology.vpps"], "--set", ["key=value", "'topology.vpps'"]),
    ("set-empty-key", {}, ["=3"], "--set", ["key=value"]),
    ("set-unknown-key", {}, ["topology.vpp=4"], "topology.vpp",
     ["unknown key", "did you mean topology.vpps?"]),
    ("set-unknown-section", {}, ["topo.vpps=4"], "topo.vpps", ["unknown key"]),
    ("set-out-of-range", {}, ["topology.nodes_per_vpp=-3"], "topology.nodes_per_vpp",
     [">= 4", "-3"]),
    ("set-wrong-type", {}, ["topology.vpps=true"], "topology.vpps", ["must be an integer", "True"]),
    ("set-bad-literal", {}, ["consensus.algorithm=raft"], "consensus.algorithm", ["'raft'"]),
    ("set-bad-behaviour", {}, ["faults.behaviours=crash,nap"], "faults.behaviours[1]",
     ["'nap'"]),
    ("set-nodes-per-actor-many", {}, ["experiment.nodes_per_actor=many"],
     "experiment.nodes_per_actor", ["'many'"]),
    ("set-into-scalar-section", {"topology": 3}, ["topology.vpps=4"], "topology",
     ["must be a table"]),
    ("set-breaks-combination", {}, ["topology.nodes_per_vpp=4", "consensus.side_committee_min=4"],
     "consensus.side_committee_min", ["a committee of 4"]),
    ("set-sweep-unknown-key", {}, ["sweep.topology.vpp=[2,4]"], SWEEP_UNKNOWN,
     ["did you mean topology.vpps?"]),
    ("set-sweep-empty", {}, ["sweep.topology.vpps=[]"], "sweep.topology.vpps",
     ["at least one value"]),
    ("set-sweep-bad-value", {}, ["sweep.topology.vpps=[2,0]"], "sweep.topology.vpps[1]",
     [">= 1", "got 0"]),
]


def _check(err: ConfigError, subject: str | tuple[str, ...], fragments: list[str]) -> None:
    subjects = subject if isinstance(subject, tuple) else (subject,)
    assert err.subject in subjects, (err.subject, err.why)
    for fragment in fragments:
        assert fragment in err.why, (fragment, err.why)
    assert str(err) == f"{err.subject}: {err.why}"


@pytest.mark.parametrize(("raw", "overrides", "subject", "fragments"),
                         [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_build_config(raw, overrides, subject, fragments):
    with pytest.raises(ConfigError) as info:
        build_config(raw, overrides)
    _check(info.value, subject, fragments)


@pytest.mark.parametrize(("raw", "overrides", "subject", "fragments"),
                         [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_load_config(tmp_path, raw, overrides, subject, fragments):
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    _check(info.value, subject, fragments)


@pytest.mark.parametrize(("raw", "overrides", "subject", "fragments"),
                         [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_through_the_cli_names_the_key_without_a_traceback(
    tmp_path, capsys, raw, overrides, subject, fragments
):
    from mlts_ray.cli import main

    path = _write(tmp_path, raw)
    args = ["run", str(path), "--out", str(tmp_path / "runs")]
    assert main([*args, *(a for o in overrides for a in ("--set", o))]) == 2
    err = capsys.readouterr().err
    subjects = (subject,) if isinstance(subject, str) else subject
    assert any(err.startswith(f"error: {s}: ") for s in subjects), err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_bad_table_has_at_least_25_rows_and_distinct_ids():
    assert len(BAD) >= 25
    assert len({row[0] for row in BAD}) == len(BAD)


def test_config_error_is_an_mlts_error():
    with pytest.raises(MltsError):
        build_config({"topology": {"vpps": 0}})


def test_several_pydantic_problems_are_all_reported():
    with pytest.raises(ConfigError) as info:
        build_config({"topology": {"vpps": 0, "nodes_per_vpp": 2}, "network": {"loss": 1.0}})
    err = info.value
    keys = [key for key, _ in err.problems]
    assert keys == ["topology.vpps", "topology.nodes_per_vpp", "network.loss"]
    assert (err.subject, err.why) == err.problems[0]
    assert dict(err.problems)["topology.nodes_per_vpp"] == "must be >= 4, got 2"


def test_nodes_per_vpp_message_is_exactly_the_documented_one():
    with pytest.raises(ConfigError) as info:
        build_config({}, ["topology.nodes_per_vpp=-3"])
    assert str(info.value) == "topology.nodes_per_vpp: must be >= 4, got -3"


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.subject == str(path)
    assert "no such file" in info.value.why


def test_missing_file_as_str_names_the_path(tmp_path):
    path = str(tmp_path / "sub" / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["topology.vpps=4"])
    assert info.value.subject == path


def test_toml_syntax_error_names_the_path(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[topology\nvpps = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.subject == str(path)
    assert "TOML" in info.value.why


def test_toml_duplicate_key_names_the_path(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text("[topology]\nvpps = 3\nvpps = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.subject == str(path)
    assert "TOML" in info.value.why


def test_undecodable_file_names_the_path(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[experiment]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.subject == str(path)
    assert "cannot read" in info.value.why


def test_build_config_does_not_mutate_its_input():
    raw = {"topology": {"vpps": 3}, "sweep": {"experiment.seed": [1]}}
    build_config(raw, ["topology.vpps=5", "sweep.experiment.seed=[2,3]"])
    assert raw == {"topology": {"vpps": 3}, "sweep": {"experiment.seed": [1]}}


# --- 2. defaults --------------------------------------------------------------------------------


def test_empty_config_gives_design_defaults():
    cfg = build_config({})
    assert cfg == Config()
    c, cr, n = cfg.consensus, cfg.credit, cfg.network
    assert c.algorithm == "dce-pbft"
    assert c.side_committee_fraction == 0.10
    assert c.side_committee_min == 2
    assert c.main_committee_fraction == 0.60
    assert (c.view_timeout_ms, c.timeout_margin) == ("auto", 2)
    assert cr.initial == 60 and cr.maximum == 100
    assert (cr.eligible_threshold, cr.suspend_threshold, cr.suspend_rounds) == (60, 20, 5)
    assert (cr.primary_reward, cr.primary_timeout_penalty) == (3, 10)
    assert (cr.consensus_phase_reward, cr.consensus_phase_penalty) == (1, 4)
    assert (cr.idle_rounds, cr.idle_decay, cr.idle_floor, cr.recovery_rate) == (20, 1, 50, 0.25)
    assert (cr.offence_rounds, cr.complaint_stake) == (20, 5)
    assert (c.accountability_factor, c.min_view_timeout_ms, c.dce_primary) == (2, 50, "rotate")
    assert (cr.ordinary_trade_reward, cr.ordinary_trade_reward_cap) == (1, 3)
    assert (cr.abandon_penalty, cr.misbehaviour_penalty) == (8, 25)
    assert (cr.audit_stake, cr.audit_penalty) == (5, 20)
    assert (n.intra_latency_ms, n.intra_jitter_ms, n.intra_min_latency_ms) == (10, 3, 2)
    assert (n.inter_latency_ms, n.inter_jitter_ms, n.inter_min_latency_ms) == (50, 15, 20)
    assert (n.uplink_mbps, n.downlink_mbps) == (20, 100)
    assert (n.vmc_uplink_mbps, n.vmc_downlink_mbps, n.grid_uplink_mbps, n.grid_downlink_mbps) == \
        (1000, 1000, 1000, 1000)
    assert (n.transport, n.rto_ms) == ("reliable", 200)
    assert (n.sign_cost_ms, n.verify_cost_ms) == (0.05, 0.15)
    assert n.loss == 0
    assert cfg.topology.supervisors_per_vpp == 1
    assert cfg.faults.byzantine_fraction == 0 and cfg.faults.partitions == []
    assert cfg.experiment.nodes_per_actor == "auto"
    assert cfg.sweep == {}


def test_default_committee_sizes():
    cfg = build_config({})
    # side: max(2, ceil(0.10 * 8)) = 2; main: ceil(0.60 * 3) = 2
    assert side_committee_size(cfg) == 2
    assert main_committee_size(cfg) == 2


def test_partial_section_keeps_other_defaults():
    cfg = build_config({"network": {"loss": 0.2}})
    assert cfg.network.loss == 0.2
    assert cfg.network.intra_latency_ms == 10
    assert cfg.network.uplink_mbps == 20


# --- 3. quickstart ------------------------------------------------------------------------------


def test_quickstart():
    cfg = load_config(QUICKSTART)
    assert cfg.experiment.name == "quickstart"
    assert cfg.experiment.seed == 7
    assert (cfg.topology.vpps, cfg.topology.nodes_per_vpp) == (3, 8)
    assert cfg.topology.grid_nodes == 2
    assert cfg.experiment.rounds == 5
    assert cfg.consensus.algorithm == "dce-pbft"
    assert cfg.workload.orders_per_node == 2 and cfg.workload.cross_vpp_share == 1.0
    assert cfg != Config()


def test_quickstart_with_overrides():
    cfg = load_config(str(QUICKSTART), ["topology.vpps=4", "consensus.algorithm=pbft"])
    assert cfg.topology.vpps == 4
    assert cfg.consensus.algorithm == "pbft"
    assert cfg.experiment.seed == 7  # the file's other values stay


# --- 4. to_toml round trip ----------------------------------------------------------------------

RICH_OVERRIDES = [
    "topology.vpps=4",
    "network.loss=0.1",
    "consensus.view_timeout_ms=750.5",
    "experiment.name=round-trip",
    "experiment.nodes_per_actor=16",
    "faults.byzantine_fraction=0.25",
    "faults.behaviours=crash,equivocate",
    "faults.where=both",
    'faults.partitions=[{start_ms=10, end_ms=250.5, groups=[["vpp-0/vmc"], ["vpp-1/vmc", "vpp-2/vmc"]]}]',
    "sweep.topology.vpps=[3,4]",
    'sweep.consensus.algorithm=["pbft","dce-pbft"]',
    "sweep.network.loss=[0.0, 0.05]",
]


def _round_trip(cfg: Config, tmp_path: Path) -> Config:
    text = to_toml(cfg)
    path = tmp_path / "resolved.toml"
    path.write_text(text, encoding="utf-8")
    again = load_config(path)
    assert again == cfg
    assert build_config(tomllib.loads(text)) == cfg
    assert to_toml(again) == text  # and the printout is stable
    return again


def test_round_trip_quickstart(tmp_path):
    cfg = load_config(QUICKSTART)
    again = _round_trip(cfg, tmp_path)
    assert again.experiment.name == "quickstart" and again.topology.vpps == 3


def test_round_trip_overrides_sweep_partition(tmp_path):
    cfg = load_config(QUICKSTART, RICH_OVERRIDES)
    # the overrides really are in the config, so the round trip is not of defaults
    assert cfg.topology.vpps == 4
    assert cfg.experiment.name == "round-trip"
    assert cfg.faults.behaviours == ["crash", "equivocate"]
    assert len(cfg.faults.partitions) == 1
    assert cfg.faults.partitions[0].end_ms == 250.5
    assert cfg.faults.partitions[0].groups == [["vpp-0/vmc"], ["vpp-1/vmc", "vpp-2/vmc"]]
    assert cfg.sweep == {"topology.vpps": [3, 4], "consensus.algorithm": ["pbft", "dce-pbft"],
                         "network.loss": [0.0, 0.05]}
    again = _round_trip(cfg, tmp_path)
    assert again.sweep == cfg.sweep
    assert again.faults.partitions == cfg.faults.partitions


def test_to_toml_is_fully_resolved():
    data = tomllib.loads(to_toml(load_config(QUICKSTART)))
    assert set(data) == set(SECTIONS) | {"sweep"}
    for section, model in SECTIONS.items():
        assert set(data[section]) == set(model.model_fields), section
    assert data["credit"]["audit_stake"] == 5
    assert data["network"]["inter_min_latency_ms"] == 20
    assert data["experiment"]["seed"] == 7


# --- 5. --set typing ----------------------------------------------------------------------------


def _get(cfg: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(cfg, section), name)


@pytest.mark.parametrize(
    ("item", "key", "expected", "kind"),
    [
        ("topology.vpps=4", "topology.vpps", 4, int),
        ("topology.vpps= 4 ", "topology.vpps", 4, int),
        ("experiment.seed=123456789", "experiment.seed", 123456789, int),
        ("network.loss=0.1", "network.loss", 0.1, float),
        ("network.loss=0", "network.loss", 0.0, float),
        ("consensus.view_timeout_ms=1e3", "consensus.view_timeout_ms", 1000.0, float),
        ("experiment.name=123", "experiment.name", "123", str),
        ("experiment.name=true", "experiment.name", "true", str),
        ("experiment.name=my-run", "experiment.name", "my-run", str),
        ("consensus.algorithm=pbft", "consensus.algorithm", "pbft", str),
        ("consensus.algorithm=random-committee", "consensus.algorithm", "random-committee", str),
        ("experiment.runtime=local", "experiment.runtime", "local", str),
        ("faults.behaviours=crash,silent", "faults.behaviours", ["crash", "silent"], list),
        ("faults.behaviours=crash, forge ,", "faults.behaviours", ["crash", "forge"], list),
        ('faults.behaviours=["crash","forge"]', "faults.behaviours", ["crash", "forge"], list),
        ("faults.behaviours=false-audit", "faults.behaviours", ["false-audit"], list),
        ("experiment.nodes_per_actor=4", "experiment.nodes_per_actor", 4, int),
        ("experiment.nodes_per_actor=auto", "experiment.nodes_per_actor", "auto", str),
    ],
)
def test_set_typing(item, key, expected, kind):
    value = _get(build_config({}, [item]), key)
    assert value == expected
    assert type(value) is kind


def test_set_sweep_list():
    cfg = build_config({}, ["sweep.topology.vpps=[2,4]"])
    assert cfg.sweep == {"topology.vpps": [2, 4]}
    assert all(type(v) is int for v in cfg.sweep["topology.vpps"])
    assert cfg.topology.vpps == 3  # a sweep does not change the base value


def test_set_sweep_single_value_becomes_a_list():
    cfg = build_config({}, ["sweep.experiment.seed=5"])
    assert cfg.sweep == {"experiment.seed": [5]}


def test_set_sweep_replaces_file_sweep_of_same_key_and_keeps_others():
    raw = {"sweep": {"topology.vpps": [2], "experiment.seed": [1, 2]}}
    cfg = build_config(raw, ["sweep.topology.vpps=[5,6]"])
    assert cfg.sweep == {"topology.vpps": [5, 6], "experiment.seed": [1, 2]}


def test_later_set_of_same_key_wins():
    cfg = build_config({}, ["topology.vpps=4", "topology.vpps=6"])
    assert cfg.topology.vpps == 6
    cfg = build_config({}, ["consensus.algorithm=pbft", "consensus.algorithm=dce-pbft"])
    assert cfg.consensus.algorithm == "dce-pbft"


def test_set_overrides_the_file(tmp_path):
    path = _write(tmp_path, {"topology": {"vpps": 7}})
    assert load_config(path).topology.vpps == 7
    assert load_config(path, ["topology.vpps=9"]).topology.vpps == 9


def test_set_can_repair_a_bad_file_value(tmp_path):
    path = _write(tmp_path, {"topology": {"nodes_per_vpp": 2}})
    with pytest.raises(ConfigError):
        load_config(path)
    assert load_config(path, ["topology.nodes_per_vpp=5"]).topology.nodes_per_vpp == 5


# --- 6. committee_size --------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "fraction", "exact"),
                         [(100, 0.07, 7), (50, 0.14, 7), (25, 0.28, 7), (100, 0.55, 55),
                          (75, 0.68, 51)])
def test_committee_size_exact_not_float(n, fraction, exact):
    # float products that land just above an integer: a float ceil rounds them up by one
    assert math.ceil(fraction * n) == exact + 1
    assert committee_size(n, fraction) == exact


def test_committee_size_30_tenth_min_2():
    assert committee_size(30, 0.1, 2) == 3


@pytest.mark.parametrize(
    ("n", "fraction", "minimum", "expected"),
    [
        (10, 0.6, 1, 6),
        (8, 0.1, 2, 2),
        (30, 0.1, 2, 3),
        (31, 0.1, 2, 4),
        (100, 0.1, 2, 10),
        (3, 0.6, 1, 2),
        (1, 0.6, 1, 1),
        (5, 1.0, 1, 5),
        (3, 0.1, 10, 3),  # minimum larger than n: capped at n
        (4, 0.9, 7, 4),
        (100, 0.29, 1, 29),
        (100, 0.57, 1, 57),
    ],
)
def test_committee_size_table(n, fraction, minimum, expected):
    assert committee_size(n, fraction, minimum) == expected


def test_committee_size_default_minimum_is_one():
    assert committee_size(10, 0.01) == 1
    assert committee_size(10, 0.6) == 6


def test_side_committee_size_uses_exact_arithmetic():
    cfg = build_config({"topology": {"nodes_per_vpp": 30}})
    assert side_committee_size(cfg) == 3
    cfg = build_config({"topology": {"vpps": 10}})
    assert main_committee_size(cfg) == 6


def _oracle(n: int, fraction: str, minimum: int) -> int:
    return min(n, max(minimum, math.ceil(Fraction(fraction) * n)))


decimal_fraction = st.one_of(
    st.integers(1, 100).map(lambda k: f"{k // 100}.{k % 100:02d}"),  # 0.01 .. 1.00
    st.integers(1, 10).map(lambda k: f"{k // 10}.{k % 10}"),  # 0.1 .. 1.0
)


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 1000), fraction=decimal_fraction, minimum=st.integers(1, 1100))
def test_committee_size_matches_exact_oracle(n, fraction, minimum):
    got = committee_size(n, float(fraction), minimum)
    assert got == _oracle(n, fraction, minimum)
    assert 1 <= got <= n
    assert got >= min(n, minimum)


# --- 7. dotted keys -----------------------------------------------------------------------------


def test_known_keys_cover_every_section_field():
    keys = known_keys()
    assert len(keys) == len(set(keys)) == sum(len(m.model_fields) for m in SECTIONS.values())
    assert "sweep" not in SECTIONS
    for key in ("topology.nodes_per_vpp", "consensus.side_committee_min", "credit.audit_stake",
                "network.loss", "faults.partitions", "workload.market",
                "experiment.nodes_per_actor"):
        assert key in keys


def test_dotted_has_every_known_key_with_its_value():
    cfg = load_config(QUICKSTART, RICH_OVERRIDES)
    flat = dotted(cfg)
    assert set(flat) == set(known_keys())
    data = cfg.model_dump(mode="json")
    for key in known_keys():
        section, name = key.split(".")
        assert flat[key] == data[section][name], key
    assert flat["topology.vpps"] == 4
    assert flat["experiment.seed"] == 7
    assert flat["faults.behaviours"] == ["crash", "equivocate"]
    assert "sweep" not in {k.split(".")[0] for k in flat}


def test_every_known_key_can_be_set():
    # each key accepts its own resolved value through --set (parse_value knows every key's type)
    cfg = build_config({})
    flat = dotted(cfg)
    items = []
    for key in known_keys():
        value = flat[key]
        items.append(f"{key}={value}" if isinstance(value, str) else
                     f"{key}={tomli_w.dumps({'v': value}).partition('=')[2].strip()}")
    assert build_config({}, items) == cfg


# --- bugs found by these tests, fixed ----------------------------------


def test_every_point_of_an_accepted_sweep_is_valid():
    sweep = {"topology.nodes_per_vpp": [4, 8], "consensus.side_committee_min": [2, 4]}
    # each value alone is fine against the base (8 nodes, side_committee_min 2) ...
    for key, values in sweep.items():
        for value in values:
            build_config({}, [f"{key}={value}"])
    # ... but one point of the product is not; validation must refuse the sweep before any run
    with pytest.raises(ConfigError) as info:
        build_config({"sweep": sweep})
    assert info.value.subject.startswith("sweep.")


def test_every_point_of_an_accepted_sweep_is_valid_when_independent():
    # the non-buggy half: an independent sweep is accepted and all its points build
    sweep = {"topology.vpps": [2, 4], "consensus.algorithm": ["pbft", "dce-pbft"]}
    cfg = build_config({"sweep": sweep})
    for point in itertools.product(*cfg.sweep.values()):
        build_config({}, [f"{k}={v}" for k, v in zip(cfg.sweep, point)])


def test_set_sweep_into_non_table_sweep_is_config_error():
    with pytest.raises(ConfigError) as info:
        build_config({"sweep": 3}, ["sweep.topology.vpps=[2,4]"])
    assert info.value.subject == "sweep"


def test_sweep_table_with_unquoted_dotted_keys(tmp_path):
    quoted = tmp_path / "quoted.toml"
    quoted.write_text('[sweep]\n"topology.vpps" = [2, 4]\n', encoding="utf-8")
    dotted_keys = tmp_path / "dotted.toml"
    dotted_keys.write_text("[sweep]\ntopology.vpps = [2, 4]\n", encoding="utf-8")
    assert load_config(quoted).sweep == {"topology.vpps": [2, 4]}
    assert load_config(dotted_keys) == load_config(quoted)
