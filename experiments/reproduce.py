"""Regenerate the figures and tables of docs/results.md: every standard sweep, its report (means
with 95 % intervals over seeds, figures), and the credit study.

    python experiments/reproduce.py                     # everything, into runs/reproduce
    python experiments/reproduce.py --quick             # 2 rounds, one seed: a smoke test
    python experiments/reproduce.py --only bandwidth    # one section

Each section's report lands in ``OUT/<section>/.../report`` (``report.md``, ``report.html``,
PNGs); with ``--docs DIR`` the figures the results page shows are copied to ``DIR/figures`` and
each section's summary table to ``DIR/tables/<section>.md``. Every section is a plain
``mlts sweep`` of a shipped config, run here in-process on the local runtime.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent

# section -> (sweep config, the figures docs/results.md shows)
SWEEPS = {
    "latency_vs_nodes": ("latency_vs_nodes.toml", ["messages_vs_topology_nodes_per_vpp.png",
                                                   "latency_ms_vs_topology_nodes_per_vpp.png"]),
    "bandwidth": ("bandwidth.toml", ["latency_ms_vs_network_uplink_mbps.png",
                                     "finality_ms_vs_network_uplink_mbps.png"]),
    "byzantine_fraction": ("byzantine_fraction.toml", [
        "committed_vs_faults_byzantine_fraction.png", "views_vs_faults_byzantine_fraction.png",
        "byzantine_in_committee_vs_faults_byzantine_fraction.png"]),
    "random_committee_ablation": ("random_committee_ablation.toml", [
        "byzantine_in_committee_vs_consensus_algorithm.png"]),
    "anchoring_vs_vpps": ("anchoring_vs_vpps.toml", ["anchoring_vs_topology_vpps.png"]),
}
SECTIONS = [*SWEEPS, "credit_study"]
QUICK = ["experiment.rounds=2", "sweep.experiment.seed=[1]"]


def run_sweep_section(name: str, out: Path, quick: bool) -> Path:
    from mlts_ray.analysis.report import report
    from mlts_ray.config import load_config
    from mlts_ray.runtime.local import run_local
    from mlts_ray.runtime.sweep import run_sweep

    config, _ = SWEEPS[name]
    cfg = load_config(HERE / config, ["experiment.runtime=local", *(QUICK if quick else [])])
    sweep_dir = run_sweep(cfg, out / name,
                          lambda point, where, resume=None: run_local(point, where, resume=resume))
    return report(sweep_dir)


def run_credit_study(out: Path, quick: bool) -> Path:
    args = [sys.executable, str(HERE / "credit_study.py"), "--out", str(out / "credit_study")]
    subprocess.run(args + (["--quick", "--seeds", "1"] if quick else []), check=True)
    return out / "credit_study" / "credit_study.md"


def publish(name: str, report_md: Path, docs: Path) -> None:
    """The figures the results page shows, and the section's summary table."""
    (docs / "figures").mkdir(parents=True, exist_ok=True)
    (docs / "tables").mkdir(parents=True, exist_ok=True)
    folder = report_md.parent
    if name == "credit_study":
        for figure in ("credit_study.png", "credit_seats.png"):
            shutil.copy(folder / figure, docs / "figures" / figure)
        shutil.copy(report_md, docs / "tables" / f"{name}.md")
        return
    for figure in SWEEPS[name][1]:
        if (folder / figure).is_file():
            shutil.copy(folder / figure, docs / "figures" / f"{name}__{figure}")
    text = report_md.read_text()
    # the summary table: the first Markdown table of the report
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is not None:
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")),
                   len(lines))
        (docs / "tables" / f"{name}.md").write_text("\n".join(lines[start:end]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/reproduce", type=Path)
    parser.add_argument("--docs", type=Path, help="copy figures and tables here (e.g. docs)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, one seed")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        started = time.perf_counter()
        md = (run_credit_study(args.out, args.quick) if name == "credit_study"
              else run_sweep_section(name, args.out, args.quick))
        if args.docs is not None:
            publish(name, md, args.docs)
        print(f"{name}: {time.perf_counter() - started:.0f} s -> {md}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
