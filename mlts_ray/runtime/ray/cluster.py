"""Joining Ray (docs/architecture.md section 7): start it locally or join a cluster within a
bound, leave it again, keep stdout for mlts's own results while Ray runs, and read the
cluster's size for the budget."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from mlts_ray.errors import RunError
from mlts_ray.runtime.budget import Machine


def timeout_s() -> float:
    """How long joining a cluster may take (``MLTS_RAY_TIMEOUT_S``, default 30 s: a head on a
    LAN answers in milliseconds and ``ray.init`` of a local instance takes 3.4-5 s here)."""
    raw = os.environ.get("MLTS_RAY_TIMEOUT_S", "30")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise RunError("MLTS_RAY_TIMEOUT_S", f"{raw!r} is not a number of seconds in (0, 3600]")
    return value


def _endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``ray://host:port`` address; None for the
    addresses Ray resolves itself (``auto``, ``local``)."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise RunError("--address", f"{address!r}: the port must be a number in 1..65535")
    return host.strip("[]"), int(port)


def _probe(address: str, timeout: float) -> None:
    """Refuse an address nothing listens on before Ray retries it for minutes."""
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as err:
        why = (f"no answer within {timeout:g} s" if isinstance(err, TimeoutError)
               else err.strerror or type(err).__name__)
        raise RunError("--address", f"no Ray cluster answers at {address} ({why}); start one "
                       "with `ray start --head` or fix --address / RAY_ADDRESS") from None


_connected_here = False  # ray.init was called by connect(), so release() may undo it


def connect(address: str | None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), or start Ray locally; reuse a running session.
    Joining is bounded by ``timeout_s()`` and fails with a RunError naming the address."""
    global _connected_here
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    timeout = timeout_s()
    if address:
        _probe(address, timeout)
        # Ray's own waits for a GCS that accepts connections but does not answer (each try
        # would otherwise wait 60 s, retried): bounded by the same timeout unless set.
        for knob in ("RAY_py_gcs_connect_timeout_s", "RAY_gcs_rpc_server_connect_timeout_s"):
            os.environ.setdefault(knob, str(max(1, int(timeout))))
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        raise RunError(address or "ray", f"cannot start or join Ray: {err}") from None
    _connected_here = True


def release() -> None:
    """Undo ``connect``: stop the Ray instance it started, or leave the cluster it joined."""
    global _connected_here
    if _connected_here and ray.is_initialized():
        ray.shutdown()
    _connected_here = False


@contextmanager
def stdout_kept_for_results() -> Iterator[None]:
    """Ray's raylet, core worker and log monitor write to file descriptor 1 from C++ and from
    its threads; ``mlts`` promises that stdout carries its results only (the run directory is
    the last line). While Ray runs, descriptor 1 points at stderr; Ray is shut down before it
    is restored, so nothing Ray prints on the way out reaches stdout either."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            release()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def cluster_machine() -> Machine:
    """CPUs and memory of the Ray cluster ``connect`` reached: its ``memory`` resource (what
    Ray gives tasks and actors) plus its object store, which together are what was available
    when each node started."""
    resources = ray.cluster_resources()
    memory = int(resources.get("memory", 0) + resources.get("object_store_memory", 0))
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    where = "this machine" if nodes <= 1 else f"the Ray cluster ({nodes} nodes)"
    return Machine(max(1, int(resources.get("CPU", 1))), memory, where)
