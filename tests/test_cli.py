"""Tests of the ``mlts`` command line: ``mlts config`` prints resolved TOML; every user error is
``error: <subject>: <why>`` on stderr with exit status 2 and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlts_ray import __version__
from mlts_ray.cli import main
from mlts_ray.config import load_config

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"
MLTS_SCRIPT = Path(sys.executable).parent / ("mlts.exe" if os.name == "nt" else "mlts")


def _run(args: list[str], *, script: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(MLTS_SCRIPT)] if script else [sys.executable, "-m", "mlts_ray.cli"]
    return subprocess.run(cmd + args, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def _assert_quickstart(data: dict) -> None:
    assert data["experiment"]["name"] == "quickstart"
    assert data["experiment"]["seed"] == 7
    assert data["experiment"]["rounds"] == 5
    assert data["topology"]["vpps"] == 3
    assert data["topology"]["nodes_per_vpp"] == 8
    assert data["consensus"]["algorithm"] == "dce-pbft"
    # fully resolved: defaults the file does not mention are printed too
    assert data["credit"]["initial"] == 60
    assert data["network"]["inter_min_latency_ms"] == 20


# --- 1. mlts config, as a real process ----------------------------------------------------------


def test_subprocess_module_config_quickstart():
    proc = _run(["config", "experiments/quickstart.toml"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    _assert_quickstart(tomllib.loads(proc.stdout))


def test_console_script_config_quickstart():
    assert MLTS_SCRIPT.is_file(), f"console script not installed next to {sys.executable}"
    proc = _run(["config", "experiments/quickstart.toml"], script=True)
    assert proc.returncode == 0, proc.stderr
    data = tomllib.loads(proc.stdout)
    _assert_quickstart(data)
    # what the CLI prints is the resolved config itself
    assert data == load_config(QUICKSTART).model_dump(mode="json")


# --- 2. --set through the CLI -------------------------------------------------------------------


def test_subprocess_config_with_sets():
    proc = _run(["config", "experiments/quickstart.toml",
                 "--set", "topology.vpps=4", "--set", "consensus.algorithm=pbft"])
    assert proc.returncode == 0, proc.stderr
    data = tomllib.loads(proc.stdout)
    assert data["topology"]["vpps"] == 4
    assert data["consensus"]["algorithm"] == "pbft"
    assert data["experiment"]["name"] == "quickstart"


def test_inprocess_config_with_sets(capsys):
    rc = main(["config", str(QUICKSTART),
               "--set", "topology.vpps=4", "--set", "consensus.algorithm=pbft"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert err == ""
    data = tomllib.loads(out)
    assert data["topology"]["vpps"] == 4
    assert data["consensus"]["algorithm"] == "pbft"
    assert data["topology"]["nodes_per_vpp"] == 8


def test_inprocess_config_set_sweep_and_later_set_wins(capsys):
    rc = main(["config", str(QUICKSTART), "--set", "sweep.topology.vpps=[2,4]",
               "--set", "topology.vpps=5", "--set", "topology.vpps=6",
               "--set", "faults.behaviours=crash,silent"])
    out, _ = capsys.readouterr()
    assert rc == 0
    data = tomllib.loads(out)
    assert data["sweep"] == {"topology.vpps": [2, 4]}
    assert data["topology"]["vpps"] == 6
    assert data["faults"]["behaviours"] == ["crash", "silent"]


def test_inprocess_output_loads_back_to_the_same_config(capsys, tmp_path):
    args = ["--set", "network.loss=0.1", "--set", "experiment.name=123"]
    assert main(["config", str(QUICKSTART), *args]) == 0
    out, _ = capsys.readouterr()
    path = tmp_path / "resolved.toml"
    path.write_text(out, encoding="utf-8")
    again = load_config(path)
    assert again == load_config(QUICKSTART, [a for a in args if a != "--set"])
    assert again.experiment.name == "123"
    # and printing the printed config again gives the same text
    assert main(["config", str(path)]) == 0
    assert capsys.readouterr().out == out


# --- 3. user errors: exit 2, "error: <key>: ...", no traceback -----------------------------------


def _bad_toml(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text("[topology\nvpps = 3\n", encoding="utf-8")
    return path


def _unknown_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "unknown.toml"
    path.write_text("[topology]\nvpp = 3\n", encoding="utf-8")
    return path


# (id, args builder given tmp_path, subject builder given tmp_path, fragment of the why)
CLI_BAD = [
    ("bad-set-value", lambda t: [str(QUICKSTART), "--set", "topology.nodes_per_vpp=-3"],
     lambda t: "topology.nodes_per_vpp", "must be >= 4, got -3"),
    ("bad-set-type", lambda t: [str(QUICKSTART), "--set", "topology.vpps=lots"],
     lambda t: "topology.vpps", "must be an integer"),
    ("bad-set-literal", lambda t: [str(QUICKSTART), "--set", "consensus.algorithm=raft"],
     lambda t: "consensus.algorithm", "'raft'"),
    ("unknown-set-key", lambda t: [str(QUICKSTART), "--set", "topology.vpp=4"],
     lambda t: "topology.vpp", "did you mean topology.vpps?"),
    ("set-without-equals", lambda t: [str(QUICKSTART), "--set", "topology.vpps"],
     lambda t: "--set", "key=value"),
    ("impossible-combination", lambda t: [str(QUICKSTART), "--set", "topology.supervisors_per_vpp=8"],
     lambda t: "topology.supervisors_per_vpp", "VPP of 8"),
    ("sweep-bad-value", lambda t: [str(QUICKSTART), "--set", "sweep.topology.vpps=[2,0]"],
     lambda t: "sweep.topology.vpps[1]", "got 0"),
    ("unknown-key-in-file", lambda t: [str(_unknown_key_file(t))],
     lambda t: "topology.vpp", "did you mean topology.vpps?"),
    ("missing-file", lambda t: [str(t / "nope.toml")],
     lambda t: str(t / "nope.toml"), "no such file"),
    ("bad-toml", lambda t: [str(_bad_toml(t))],
     lambda t: str(t / "bad.toml"), "TOML"),
]


@pytest.mark.parametrize(("make_args", "make_subject", "fragment"),
                         [pytest.param(*row[1:], id=row[0]) for row in CLI_BAD])
def test_inprocess_user_errors(capsys, tmp_path, make_args, make_subject, fragment):
    rc = main(["config", *make_args(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""  # nothing half-printed
    assert err.startswith(f"error: {make_subject(tmp_path)}: "), err
    assert fragment in err
    assert "Traceback" not in err


def test_inprocess_documented_error_line(capsys):
    rc = main(["config", str(QUICKSTART), "--set", "topology.nodes_per_vpp=-3"])
    assert rc == 2
    assert capsys.readouterr().err == "error: topology.nodes_per_vpp: must be >= 4, got -3\n"


def test_inprocess_every_problem_gets_a_line(capsys, tmp_path):
    path = tmp_path / "two.toml"
    path.write_text("[topology]\nvpps = 0\nnodes_per_vpp = 2\n", encoding="utf-8")
    assert main(["config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: topology.vpps: must be >= 1, got 0",
                     "error: topology.nodes_per_vpp: must be >= 4, got 2"]


@pytest.mark.parametrize(
    ("make_args", "make_subject"),
    [
        pytest.param(lambda t: ["--set", "topology.nodes_per_vpp=-3"],
                     lambda t: "topology.nodes_per_vpp", id="bad-set-value"),
        pytest.param(lambda t: [str(t / "nope.toml")], lambda t: str(t / "nope.toml"),
                     id="missing-file"),
        pytest.param(lambda t: [str(_bad_toml(t))], lambda t: str(t / "bad.toml"),
                     id="bad-toml"),
    ],
)
def test_subprocess_user_errors_exit_2_without_traceback(tmp_path, make_args, make_subject):
    args = make_args(tmp_path)
    if args[0] == "--set":
        args = ["experiments/quickstart.toml", *args]
    proc = _run(["config", *args])
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {make_subject(tmp_path)}: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_click_usage_error_exits_2(capsys):
    assert main(["config"]) == 2  # missing CONFIG_FILE
    assert "Missing argument" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


# --- 4. --version and --help --------------------------------------------------------------------


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"mlts, version {__version__}"
    assert __version__ == "0.1.0"


def test_console_script_version():
    proc = _run(["--version"], script=True)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_help_lists_config(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: mlts" in out
    commands = out.split("Commands:", 1)[1]
    assert "config" in commands
    assert main(["-h"]) == 0
    assert "config" in capsys.readouterr().out.split("Commands:", 1)[1]


def test_config_help_documents_set(capsys):
    assert main(["config", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--set KEY=VALUE" in out
    assert "CONFIG_FILE" in out


# --- bugs found by these tests, fixed -------------------------------------------------------------------


def test_subprocess_set_sweep_into_non_table_sweep_has_no_traceback(tmp_path):
    path = tmp_path / "sweep3.toml"
    path.write_text("sweep = 3\n", encoding="utf-8")
    proc = _run(["config", str(path), "--set", "sweep.topology.vpps=[2,4]"])
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: sweep: ")


def test_directory_as_config_file_uses_error_format(capsys, tmp_path):
    rc = main(["config", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: {tmp_path}: ")


def test_a_fault_setting_that_cannot_act_is_said_before_the_run(capsys, tmp_path):
    """Behaviours with no faulty node to take them run as an honest run would: `mlts run`
    says so by key before it starts, and the run itself goes ahead."""
    rc = main(["run", str(QUICKSTART), "--runtime", "local", "--quiet", "--out", str(tmp_path),
               "--set", "experiment.rounds=1", "--set", "faults.behaviours=crash",
               "--set", "faults.delay_ms=300"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "note: faults.behaviours: has no effect: faults.byzantine_fraction is 0" in err
    assert "note: faults.delay_ms: has no effect: no node has the 'delay' behaviour" in err


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_empty_out_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch,
                                                            command):
    """``--out ''`` used to write the run into the current directory."""
    monkeypatch.chdir(tmp_path)
    config = QUICKSTART if command == "run" else tmp_path.parent / "sweep.toml"
    if command == "sweep":
        config.write_text(QUICKSTART.read_text() + '\n[sweep]\n"experiment.seed" = [1, 2]\n')
    quiet = ["--quiet"] if command == "run" else []
    rc = main([command, str(config), "--runtime", "local", *quiet, "--out", "",
               "--set", "experiment.rounds=1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error: --out: is empty" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
