"""Ray clusters the tests start and stop themselves: a multi-node one on this machine
(``ray.cluster_utils.Cluster``), one CPU per node, joined by this process for the test
module's lifetime; and a head started as a user would (``ray start --head``) in a temporary
directory of its own, stopped by ending its own processes only -- never ``ray stop``, which
ends every Ray of the user on the machine, whoever started it."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import ray
from ray.cluster_utils import Cluster

BIN = Path(sys.executable).parent


@contextmanager
def local_cluster(nodes: int) -> Iterator[Cluster]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Head:
    temp: Path  # its own temp dir (short: Ray's socket paths)
    port: int  # the GCS port
    dashboard: str  # the job server's address
    env: dict  # what a client of it needs (its token included)

    def processes(self) -> list[psutil.Process]:
        """Its processes: those that name its temp dir or its GCS port on their command line,
        and all their descendants (workers and agents name neither)."""
        roots = []
        for p in psutil.process_iter(["cmdline"]):
            args = p.info["cmdline"] or []
            if any(str(self.temp) in a or a.endswith(f":{self.port}") for a in args):
                roots.append(p)
        family = {p.pid: p for p in roots}
        for p in roots:
            try:
                family.update((c.pid, c) for c in p.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return list(family.values())


def start_head(cpus: int = 2, dashboard: bool = True) -> Head:
    temp = Path(tempfile.mkdtemp(prefix="mltsray", dir="/tmp"))
    port, dash = free_port(), free_port()
    # Ray 2.60 turns token authentication on: the head and every client share one token.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    ui = (["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]
          if dashboard else ["--include-dashboard=false"])
    # every port of its own: another Ray on the machine holds the defaults (its dashboard
    # agent's 52365, the client server's 10001, ...), and sharing one breaks both
    own = [f"--{flag}={free_port()}" for flag in (
        "node-manager-port", "object-manager-port", "ray-client-server-port",
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
        "metrics-export-port")]
    subprocess.run([BIN / "ray", "start", "--head", f"--port={port}", f"--num-cpus={cpus}", *ui,
                    *own, f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=120)
    return Head(temp, port, f"http://127.0.0.1:{dash}", env)


def stop_head(head: Head) -> None:
    """End the head's own processes (terminate, then kill what is left) and its temp dir."""
    procs = head.processes()
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=15)
    shutil.rmtree(head.temp, ignore_errors=True)


@contextmanager
def ray_head(cpus: int = 2, dashboard: bool = True) -> Iterator[Head]:
    head = start_head(cpus, dashboard)
    try:
        yield head
    finally:
        stop_head(head)
