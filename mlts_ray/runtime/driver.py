"""The round loop every runtime shares: stream each round to the run directory, stop cleanly
on Ctrl-C at a round boundary, and resume an interrupted run (docs/architecture.md section 7).

Resuming replays the finished rounds without writing them (the simulation is deterministic, so
this rebuilds exactly the state the interrupted run had -- no pickled state is ever stored) and
then continues; the resumed run's tables equal an uninterrupted run's.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlts_ray.config import Config, to_toml
from mlts_ray.errors import MltsError, RunError
from mlts_ray.mlts.simulation import run_id_of
from mlts_ray.runtime.sink import RunSink

Progress = Callable[[int, int], None]
RoundFn = Callable[[int], Mapping[str, pa.RecordBatch]]
Pending = Callable[[], Mapping[str, pa.RecordBatch]]  # waits for a round started elsewhere
Submit = Callable[[int], Pending]


class Interrupted(RunError):
    """The run stopped at a round boundary on request; ``subject`` is the run directory."""


class StorageFailed(RunError):
    """The run directory could not be written (``subject``); the finished rounds are kept, so
    once the cause is fixed ``--resume`` continues the run."""


class _Stop:
    requested = False
    round: int | None = None  # the round being finished (stored next)


@contextmanager
def graceful_stop() -> Iterator[_Stop]:
    """First Ctrl-C: finish the round in progress, then stop -- said at once on stderr, since
    a round may take minutes. Second: stop at once."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigint(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        when = "the round in progress" if stop.round is None else f"round {stop.round}"
        sys.stderr.write(f"\nstopping once {when} is stored (every finished round is kept); "
                         "press Ctrl-C again to stop now\n")
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def open_sink(cfg: Config, out: str | Path, resume: str | Path | None, runtime: str) -> RunSink:
    if resume is not None:
        return RunSink.reopen(resume, cfg)
    return RunSink.create(out, run_id_of(cfg), {
        "name": cfg.experiment.name, "seed": cfg.experiment.seed,
        "rounds": cfg.experiment.rounds, "runtime": runtime,
        "config": cfg.model_dump(mode="json"), "config_toml": to_toml(cfg),
    })


def drive(
    cfg: Config, sink: RunSink, run_round: RoundFn | None = None,
    progress: Progress | None = None, after_round: Callable[[int], None] | None = None,
    submit: Submit | None = None, **manifest: Any,
) -> Path | str:
    """Run the rounds not yet in ``sink`` (replaying the finished ones first).

    A runtime whose rounds run elsewhere passes ``submit(rnd)`` instead of ``run_round``: it
    starts the round and returns what waits for its tables. Round ``r + 1`` is then started
    before round ``r`` is written, so the writing overlaps the next round (pipelined), with the
    same guarantees on disk: rounds are stored in order, each whole before ``rounds_done``
    moves, and a failure in round ``r + 1`` surfaces only after round ``r`` is stored."""
    if submit is None:
        submit = lambda rnd: (lambda: run_round(rnd))  # noqa: E731 -- runs when waited for
    started = time.perf_counter()
    first = int(sink.manifest["rounds_done"])
    rounds = cfg.experiment.rounds
    sink.manifest.update(manifest, status="running")
    sink.finish("running")
    with graceful_stop() as stop:
        try:
            for rnd in range(first):
                submit(rnd)()  # replay: rebuild the state, write nothing
            pending = submit(first) if first < rounds else None
            for rnd in range(first, rounds):
                stop.round = rnd
                batches = pending()
                more = rnd + 1 < rounds and not stop.requested
                pending = submit(rnd + 1) if more else None
                sink.write_batches(rnd, batches)
                if progress:
                    progress(rnd + 1, rounds)
                if after_round:
                    after_round(rnd)
                if stop.requested and rnd + 1 < rounds:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            done = int(sink.manifest["rounds_done"])
            sink.finish("interrupted")
            raise Interrupted(str(sink.root), f"interrupted after {done} of {rounds} rounds") from None
        except MltsError as err:
            sink.fail(str(err))
            raise
        except OSError as err:  # the run directory: a full disk, a lost mount, permissions
            done = int(sink.manifest["rounds_done"])
            why = f"cannot store round {done}: {err}"
            sink.fail(why)
            raise StorageFailed(str(sink.root), f"{why}; every finished round ({done}) is kept") \
                from None
        except Exception as err:  # a bug: keep the finished rounds readable, then say where
            sink.fail(f"{type(err).__name__}: {err}")
            raise RunError(str(sink.root), f"internal error: {type(err).__name__}: {err}") from err
    sink.finish("complete", wall_s=round(time.perf_counter() - started, 3))
    return sink.root
