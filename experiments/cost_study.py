#!/usr/bin/env python
"""What the simulator costs: wall time per simulated round against the number of nodes, on the
local runtime and on Ray, for PBFT and DCE-PBFT on the default model (20 Mbit/s residential
uplinks, the metered workload, real Ed25519 on every message).

Each size runs ``--rounds`` rounds (default 4) of one seed; the figure is the median wall time
of the rounds after the first (the first derives keys, warms pvlib's and demandlib's series and,
on Ray, the actors' imports). Ray's start-up (``ray.init``, actors, placement groups) is reported
apart, in ``startup_s``. The Ray runtime and the local one write identical tables (the test
suite holds that); only their wall clocks differ.

    python experiments/cost_study.py --out runs/cost            # ~3 min on 2 cores
    python experiments/cost_study.py --out /tmp/cost --quick    # the two smallest, local only

Outputs in ``--out``: ``cost.csv``, ``cost.md`` (the table docs/results.md shows) and
``cost.png`` (seconds per round vs nodes, log-log).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mlts_ray.analysis.load import load_table, read_manifest  # noqa: E402
from mlts_ray.config import Config, build_config  # noqa: E402

# (algorithm, vpps, nodes per VPP): PBFT is one VPP of N (it seats every node, so N is what it
# pays for); DCE-PBFT also scales out over VPPs, which is how MLTS grows.
SIZES = [
    ("pbft", 1, 10), ("pbft", 1, 40), ("pbft", 1, 100),
    ("dce-pbft", 1, 10), ("dce-pbft", 1, 100), ("dce-pbft", 4, 25),
    ("dce-pbft", 10, 100), ("dce-pbft", 20, 100),
]
QUICK = [("pbft", 1, 10), ("dce-pbft", 4, 25)]


def size_config(algorithm: str, vpps: int, nodes: int, rounds: int) -> Config:
    return build_config({
        "experiment": {"name": f"cost-{algorithm}-{vpps}x{nodes}", "seed": 1, "rounds": rounds},
        "topology": {"vpps": vpps, "nodes_per_vpp": nodes, "grid_nodes": 2},
        "consensus": {"algorithm": algorithm},
    })


def timed_run(cfg: Config, runtime: str, out: Path) -> dict:
    """Run ``cfg`` on ``runtime``; per-round wall times from the driver's progress callback."""
    stamps: list[float] = []

    def progress(done: int, total: int) -> None:
        stamps.append(time.perf_counter())

    started = time.perf_counter()
    if runtime == "local":
        from mlts_ray.runtime.local import run_local

        run = Path(run_local(cfg, out, progress=progress))
    else:
        from mlts_ray.runtime.ray.run import run_ray

        run = Path(run_ray(cfg, out, progress=progress))
    manifest = read_manifest(run)
    steps = [b - a for a, b in zip([started, *stamps], stamps, strict=False)]
    startup = float(manifest.get("ray", {}).get("startup_s", 0.0))
    consensus = load_table(run, "consensus")
    return {
        "runtime": runtime, "nodes": cfg.topology.vpps * cfg.topology.nodes_per_vpp,
        "first_round_s": round(steps[0] - startup, 3),
        "round_s": round(statistics.median(steps[1:]) if len(steps) > 1 else steps[0], 3),
        "startup_s": startup,
        "messages_per_round": round(consensus.messages.sum() / cfg.experiment.rounds),
    }


def study(sizes: list[tuple[str, int, int]], runtimes: list[str], rounds: int,
          out: Path) -> pd.DataFrame:
    rows = []
    if "ray" in runtimes:
        from mlts_ray.runtime.ray.cluster import connect

        connect(None)  # once, so no size pays ray.init
    for algorithm, vpps, nodes in sizes:
        cfg = size_config(algorithm, vpps, nodes, rounds)
        for runtime in runtimes:
            row = timed_run(cfg, runtime, out / "runs" / runtime)
            rows.append({"algorithm": algorithm, "vpps": vpps, "nodes_per_vpp": nodes, **row})
            print(f"{algorithm} {vpps}x{nodes} {runtime}: {row['round_s']} s/round", flush=True)
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> str:
    wide = df.pivot_table(index=["algorithm", "vpps", "nodes_per_vpp", "nodes",
                                 "messages_per_round"],
                          columns="runtime", values="round_s").reset_index()
    lines = ["| algorithm | VPPs x nodes | nodes | messages/round | local s/round |"
             + (" Ray s/round | Ray / local |" if "ray" in wide else ""),
             "|---|---|---|---|---|" + ("---|---|" if "ray" in wide else "")]
    for r in wide.itertuples():
        line = (f"| {r.algorithm} | {r.vpps} x {r.nodes_per_vpp} | {r.nodes:,} | "
                f"{r.messages_per_round:,} | {r.local:.3f} |")
        if "ray" in wide:
            line += f" {r.ray:.3f} | {r.ray / r.local:.2f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def figure(df: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (algorithm, runtime), part in df.groupby(["algorithm", "runtime"]):
        part = part[part.vpps == 1] if algorithm == "pbft" else part
        part = part.sort_values("nodes")
        ax.plot(part.nodes, part.round_s, marker="o", label=f"{algorithm}, {runtime}",
                linestyle="-" if runtime == "local" else "--")
    ax.set(xscale="log", yscale="log", xlabel="nodes", ylabel="wall s per simulated round",
           title="What a round costs (2 cores, real signatures)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/cost", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="two small sizes, local, 2 rounds")
    parser.add_argument("--no-ray", action="store_true", help="the local runtime only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes, rounds = (QUICK, 2) if args.quick else (SIZES, args.rounds)
    runtimes = ["local"] if args.quick or args.no_ray else ["local", "ray"]
    df = study(sizes, runtimes, rounds, args.out)
    df.to_csv(args.out / "cost.csv", index=False)
    (args.out / "cost.md").write_text(table(df))
    figure(df, args.out / "cost.png")
    print(f"-> {args.out / 'cost.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
