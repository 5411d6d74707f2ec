"""The driver's pipelined rounds (``drive(submit=...)``, what the Ray runtime uses): round r + 1
starts before round r is written, and the run directory keeps every guarantee it has without
pipelining -- rounds stored in order, a failure in round r + 1 surfacing after round r is
stored, a stop request leaving no round half-written."""

from __future__ import annotations

import pytest

from mlts_ray.analysis.load import load_table, read_manifest
from mlts_ray.analysis.verify import verify_run
from mlts_ray.config import build_config
from mlts_ray.errors import RunError
from mlts_ray.runtime.driver import drive, open_sink
from mlts_ray.runtime.local import run_local
from mlts_ray.runtime.rounds import Rounds
from test_golden_tables import table_digests


def _cfg(rounds: int = 4):
    return build_config({"experiment": {"name": "pipe", "seed": 3, "rounds": rounds},
                         "topology": {"vpps": 2, "nodes_per_vpp": 5}})


class Remote:
    """A stand-in for the Ray coordinator: ``submit`` computes nothing until waited for, and
    logs when each round was started, waited for and stored."""

    def __init__(self, cfg, sink, fail_at: int | None = None) -> None:
        self.rounds, self.sink, self.fail_at, self.log = Rounds.local(cfg), sink, fail_at, []
        write = sink.write_batches

        def logged_write(rnd, batches):
            write(rnd, batches)
            self.log.append(("stored", rnd))

        sink.write_batches = logged_write

    def submit(self, rnd: int):
        self.log.append(("started", rnd))

        def wait():
            self.log.append(("waited", rnd))
            if rnd == self.fail_at:
                raise RunError(f"round {rnd}", "a node host actor died")
            return self.rounds.batches(rnd)

        return wait


def test_the_next_round_starts_before_this_one_is_written_and_tables_are_unchanged(tmp_path):
    cfg = _cfg()
    with open_sink(cfg, tmp_path / "piped", None, "ray") as sink:
        remote = Remote(cfg, sink)
        piped = drive(cfg, sink, submit=remote.submit, runtime="ray")
    log = remote.log
    for rnd in range(3):  # round r + 1 is in flight while round r is stored
        assert log.index(("started", rnd + 1)) < log.index(("stored", rnd))
    assert [e for e in log if e[0] == "stored"] == [("stored", r) for r in range(4)]
    plain = run_local(cfg, tmp_path / "plain")
    assert table_digests(piped) == table_digests(plain)
    assert verify_run(piped).rounds == 4


def test_a_failure_in_the_round_in_flight_comes_after_the_round_before_is_stored(tmp_path):
    cfg = _cfg()
    with pytest.raises(RunError, match="round 2"):
        with open_sink(cfg, tmp_path, None, "ray") as sink:
            drive(cfg, sink, submit=Remote(cfg, sink, fail_at=2).submit, runtime="ray")
    manifest = read_manifest(sink.root)
    assert manifest["status"] == "failed" and manifest["rounds_done"] == 2
    assert sorted(load_table(sink.root, "consensus")["round"].unique()) == [0, 1]
