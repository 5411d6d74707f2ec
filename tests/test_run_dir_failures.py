"""Every way a run can stop leaves a directory that ``--resume`` and ``verify`` understand:
a full disk (a quota filesystem, and a real tiny tmpfs where this machine lets us mount one),
a corrupt manifest, a second writer, concurrent runs into one ``--out``, an output file that
cannot be written (docs/architecture.md section 9: nothing half-written; issue 12, item 3)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlts_ray.analysis.load import read_manifest
from mlts_ray.analysis.verify import verify_run
from mlts_ray.cli import main
from mlts_ray.config import build_config
from mlts_ray.errors import RunError
from mlts_ray.runtime.driver import StorageFailed
from mlts_ray.runtime.local import run_local
from mlts_ray.runtime.sink import RunSink
from mlts_ray.runtime.storage import Location, RunLock
from quota_fs import quota_fs
from run_checks import assert_same_tables

SMALL = ["experiment.runtime=local", "experiment.rounds=6", "topology.vpps=2",
         "topology.nodes_per_vpp=5"]
CLI = [sys.executable, "-m", "mlts_ray.cli"]


def _cfg(*extra: str):
    return build_config({"experiment": {"name": "failures", "seed": 3}}, [*SMALL, *extra])


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return run_local(_cfg(), tmp_path_factory.mktemp("ref"))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "exp.toml"
    path.write_text('[experiment]\nname = "failures"\nseed = 3\n')
    return path


def _run_dir_bytes(run: Path) -> int:
    return sum(p.stat().st_size for p in run.rglob("*") if p.is_file())


# --- a full disk ----------------------------------------------------------------------------


def test_a_disk_that_fills_mid_run_fails_cleanly_and_resumes_to_theassert_same_tables(reference, tmp_path):
    fs, quota = quota_fs(budget=_run_dir_bytes(reference) // 2)
    with pytest.raises(StorageFailed) as err:
        run_local(_cfg(), Location(fs, str(tmp_path / "runs")))
    assert "No space left on device" in err.value.why
    run = Path(err.value.subject)
    manifest = read_manifest(run)
    assert manifest["status"] == "failed" and "No space left" in manifest["error"]
    assert 0 < manifest["rounds_done"] < 6
    assert _temporaries(run) == []  # the half-written file went, and gave its space back
    quota.budget = 10**9  # space freed
    run_local(_cfg(), Location(fs, str(tmp_path / "runs")), resume=run)
    assert read_manifest(run)["status"] == "complete" and "error" not in read_manifest(run)
    assert_same_tables(reference, run)
    verify_run(run)  # the digest chain continues across the failure and the resume


def test_a_disk_full_before_the_first_round_leaves_nothing(tmp_path):
    fs, _ = quota_fs(budget=100)  # not even the manifest fits
    with pytest.raises(RunError, match="cannot create the run directory"):
        run_local(_cfg(), Location(fs, str(tmp_path / "runs")))
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 600 KiB tmpfs, where this machine lets us mount one (root, no seccomp)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the quota filesystem covers it")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_filesystem_through_the_cli(config_file, tiny_tmpfs):
    settings = ["experiment.rounds=400", "topology.vpps=2", "topology.nodes_per_vpp=5"]
    sets = [a for s in settings for a in ("--set", s)]
    proc = subprocess.run([*CLI, "run", str(config_file), "--quiet", "--runtime", "local",
                           "--out", str(tiny_tmpfs), *sets], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    (run,) = [p for p in tiny_tmpfs.iterdir() if p.is_dir()]
    manifest = read_manifest(run)
    assert manifest["status"] == "failed" and 0 < manifest["rounds_done"] < 400
    assert _temporaries(run) == []
    hint = proc.stderr.strip().splitlines()[-1]
    assert hint.startswith("resume with: mlts run ")
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_tmpfs)], check=True)
    again = subprocess.run([*CLI, *shlex.split(hint.removeprefix("resume with: mlts "))],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert read_manifest(run)["status"] == "complete"
    assert main(["verify", str(run)]) == 0


# --- a corrupt manifest -----------------------------------------------------------------------

CORRUPT = {
    "not JSON": (lambda text: text[: len(text) // 2], "unreadable manifest"),
    "not an object": (lambda text: "[1, 2]", "not a JSON object"),
    "no config_toml": (lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                                if k != "config_toml"}), "config_toml"),
    "config_toml not a config": (
        lambda text: json.dumps({**json.loads(text), "config_toml": "[topology]\nvpps = -1\n"}),
        "config_toml"),
    "config_toml not TOML": (
        lambda text: json.dumps({**json.loads(text), "config_toml": "[[["}), "config_toml"),
    "rounds_done a string": (
        lambda text: json.dumps({**json.loads(text), "rounds_done": "3"}), "rounds_done"),
    "rounds_done beyond the rounds": (
        lambda text: json.dumps({**json.loads(text), "rounds_done": 99}), "rounds_done"),
    "no run_id": (lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                           if k != "run_id"}), "run_id"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_resume_of_a_corrupt_manifest_is_refused_by_name(case, config_file, reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    manifest = run / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "status": "interrupted", "rounds_done": 3}))
    edit, named = CORRUPT[case]
    manifest.write_text(edit(manifest.read_text()))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    code = main(["run", str(config_file), "--quiet", "--resume", str(run),
                 *[a for s in SMALL for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2 and "manifest.json" in err and named in err, err
    assert "Traceback" not in err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing touched


# --- one writer per run -------------------------------------------------------------------------


def _start_long_run(config_file, out) -> subprocess.Popen:
    sets = [a for s in [*SMALL[1:], "experiment.rounds=400"] for a in ("--set", s)]
    return subprocess.Popen([*CLI, "run", str(config_file), "--quiet", "--runtime", "local",
                             "--out", str(out), *sets],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rounds(out: Path, proc, rounds: int = 1) -> Path:
    deadline = time.time() + 120
    while time.time() < deadline:
        for manifest in out.glob("*/manifest.json"):
            try:
                if json.loads(manifest.read_text())["rounds_done"] >= rounds:
                    return manifest.parent
            except (ValueError, KeyError):
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no progress")


def test_resume_of_a_run_another_process_is_writing_is_refused(config_file, tmp_path, capsys):
    proc = _start_long_run(config_file, tmp_path)
    try:
        run = _wait_for_rounds(tmp_path, proc)
        sets = [a for s in [*SMALL[1:], "experiment.rounds=400"] for a in ("--set", s)]
        code = main(["run", str(config_file), "--quiet", "--runtime", "local",
                     "--resume", str(run), *sets])
        err = capsys.readouterr().err
        assert code == 2 and f"being written by process {proc.pid}" in err, err
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the killed writer's lock: the run resumes
    cfg = build_config({"experiment": {"name": "failures", "seed": 3}},
                       [*SMALL, "experiment.rounds=400"])
    sink = RunSink.reopen(run, cfg)
    assert sink.manifest["run_id"]
    sink.close()


def test_concurrent_resumes_of_one_run_let_exactly_one_in(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    manifest = run / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()),
                                    "status": "interrupted", "rounds_done": 2}))
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append(RunSink.reopen(run, _cfg()))
        except RunError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sinks = [o for o in outcomes if isinstance(o, RunSink)]
    assert len(sinks) == 1, outcomes
    assert all("being written by process" in o.why for o in outcomes if isinstance(o, RunError))
    sinks[0].close()


def test_concurrent_runs_into_one_out_each_get_their_own_directory(config_file, tmp_path):
    sets = [a for s in SMALL[1:3] for a in ("--set", s)]
    procs = [subprocess.Popen([*CLI, "run", str(config_file), "--quiet", "--runtime", "local",
                               "--out", str(tmp_path), *sets], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    dirs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        dirs.append(out.strip().splitlines()[-1])
    assert len(set(dirs)) == 6
    for run in dirs:
        assert read_manifest(run)["status"] == "complete"
    assert_same_tables(dirs[0], dirs[5])


def test_runs_created_at_the_same_instant_never_share_a_directory(tmp_path):
    sinks: list[RunSink] = []
    barrier = threading.Barrier(12)

    def create() -> None:
        barrier.wait()
        sinks.append(RunSink.create(tmp_path, "same-id", {}))

    threads = [threading.Thread(target=create) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({s.location.path for s in sinks}) == 12
    for s in sinks:
        s.close()


def test_a_failure_between_opening_and_the_round_loop_marks_the_run_failed(tmp_path):
    with pytest.raises(ValueError):
        with RunSink.create(tmp_path, "early", {"rounds": 3}) as sink:
            raise ValueError("a host did not start")
    manifest = read_manifest(sink.root)
    assert manifest["status"] == "failed" and "a host did not start" in manifest["error"]
    RunLock(sink.location).release()  # the lock is free again: a new writer can take it


def test_interrupted_run_prints_a_resume_command_that_works_as_printed(config_file, reference, tmp_path):
    sets = [a for s in [*SMALL[1:], "experiment.rounds=400"] for a in ("--set", s)]
    proc = _start_long_run(config_file, tmp_path)
    _wait_for_rounds(tmp_path, proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    assert hint.startswith("resume with: mlts run ")
    argv = shlex.split(hint.removeprefix("resume with: mlts "))
    assert all(s in argv for s in sets)  # the overrides that made the config are all there
    again = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr


# --- outputs that cannot be written are refused before the work ------------------------------


@pytest.mark.parametrize("command", [["safety", "--schedules", "1"], ["bench", "--quick", "--no-ray"]])
def test_json_into_a_missing_directory_is_refused_before_any_work(command, tmp_path, capsys):
    code = main([*command, "--json", str(tmp_path / "no" / "such" / "out.json")])
    out, err = capsys.readouterr()
    assert code == 2 and "--json" in err and "no such directory" in err, err
    assert out == "" and len(err.strip().splitlines()) == 1  # refused before any work printed


def test_out_that_is_a_file_is_refused_by_name(config_file, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code = main(["run", str(config_file), "--quiet", "--out", str(target),
                 *[a for s in SMALL for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2 and str(target) in err and "not a directory" in err, err
    assert target.read_text() == "x"
