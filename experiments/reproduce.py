"""Regenerate the figures and tables of docs/results.md: every standard sweep, its report (means
with 95 % intervals over seeds, figures), the credit study, the trading day with its variants,
and what the simulator costs.

    python experiments/reproduce.py                     # everything, into runs/reproduce
    python experiments/reproduce.py --quick             # 2 rounds, one seed: a smoke test
    python experiments/reproduce.py --only bandwidth    # one section

Each section's report lands in ``OUT/<section>/.../report`` (``report.md``, ``report.html``,
PNGs); with ``--docs DIR`` the figures the results page shows are copied to ``DIR/figures`` and
each section's summary table to ``DIR/tables/<section>.md``. The sweep sections are plain
``mlts sweep`` runs of shipped configs, in-process on the local runtime; ``credit_study`` and
``cost`` are the scripts of those names; ``trading_day`` runs ``trading_day.toml`` and its
variants (``DAY_VARIANTS``).
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
                                                   "bytes_vs_topology_nodes_per_vpp.png",
                                                   "latency_ms_vs_topology_nodes_per_vpp.png",
                                                   "finality_ms_vs_topology_nodes_per_vpp.png"]),
    "latency_vs_nodes_large": ("latency_vs_nodes_large.toml", [
        "latency_ms_vs_topology_nodes_per_vpp.png", "finality_ms_vs_topology_nodes_per_vpp.png"]),
    "bandwidth": ("bandwidth.toml", ["latency_ms_vs_network_uplink_mbps.png",
                                     "finality_ms_vs_network_uplink_mbps.png"]),
    "byzantine_fraction": ("byzantine_fraction.toml", [
        "views_vs_faults_byzantine_fraction.png",
        "byzantine_in_committee_vs_faults_byzantine_fraction.png"]),
    "random_committee_ablation": ("random_committee_ablation.toml", [
        "byzantine_in_committee_vs_consensus_algorithm.png"]),
    "anchoring_vs_vpps": ("anchoring_vs_vpps.toml", ["anchoring_vs_topology_vpps.png"]),
    # for the record: the N and bandwidth sweeps on the consensus as previously shipped
    "latency_vs_nodes_previous": ("latency_vs_nodes.toml", []),
    "bandwidth_previous": ("bandwidth.toml", []),
}
# the consensus as shipped before issue 34: a fixed 500 ms first view timeout, whole blocks in
# the pre-prepare (and view changes), PBFT led by the first node by name, DCE-PBFT's primary
# sending every copy of the certificate; PBFT up to N = 100 (beyond, its views multiply)
PREVIOUS = ["consensus.view_timeout_ms=500", "consensus.proposal=block",
            "consensus.pbft_primary=stable", "consensus.dissemination=primary"]
OVERRIDES = {
    "latency_vs_nodes_previous": [*PREVIOUS, "sweep.topology.nodes_per_vpp=[10, 20, 40, 70, 100]"],
    "bandwidth_previous": PREVIOUS,
}
SECTIONS = [*SWEEPS, "credit_study", "trading_day", "cost"]
# the trading day and the variants the results page compares it with (one run each, seed 11):
# variant -> (day, overrides). --quick runs 8 periods from 10:00, so that something trades.
DAY_VARIANTS = {
    "summer, cda": ("2026-06-21", []),
    "summer, call auction": ("2026-06-21", ["workload.market=call"]),
    "summer, midpoint bids": ("2026-06-21", ["workload.bidding=midpoint"]),
    "winter, cda": ("2026-12-21", []),
}
DAY_FIGURES = {"energy_day.png": "trading_day_energy.png",
               "energy_shares.png": "trading_day_shares.png",
               "energy_prices.png": "trading_day_prices.png"}
QUICK = ["experiment.rounds=2", "sweep.experiment.seed=[1]"]


def run_sweep_section(name: str, out: Path, quick: bool) -> Path:
    from mlts_ray.analysis.report import report
    from mlts_ray.config import load_config
    from mlts_ray.runtime.local import run_local
    from mlts_ray.runtime.sweep import run_sweep

    config, _ = SWEEPS[name]
    cfg = load_config(HERE / config, ["experiment.runtime=local", *OVERRIDES.get(name, []),
                                      *(QUICK if quick else [])])
    if name in OVERRIDES:  # its own sweep name, so the variant's runs never resume the plain one's
        cfg = cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
            update={"name": f"{cfg.experiment.name}-previous"})})
    sweep_dir = run_sweep(cfg, out / name,
                          lambda point, where, resume=None: run_local(point, where, resume=resume))
    return report(sweep_dir)


def run_credit_study(out: Path, quick: bool) -> Path:
    args = [sys.executable, str(HERE / "credit_study.py"), "--out", str(out / "credit_study")]
    subprocess.run(args + (["--quick", "--seeds", "1"] if quick else []), check=True)
    return out / "credit_study" / "credit_study.md"


def run_trading_day(out: Path, quick: bool) -> Path:
    """The trading day and its variants; the first one's report, and one table of them all."""
    from mlts_ray.analysis.energy_report import day_summary
    from mlts_ray.analysis.load import load_table
    from mlts_ray.analysis.report import report
    from mlts_ray.config import load_config
    from mlts_ray.runtime.local import run_local

    folder = out / "trading_day"
    lines, first = [], None
    for variant, (day, sets) in DAY_VARIANTS.items():
        when = [f"experiment.start={day}T10:00", "experiment.rounds=8"] if quick \
            else [f"experiment.start={day}T00:00"]
        cfg = load_config(HERE / "trading_day.toml", ["experiment.runtime=local", *when, *sets])
        run = Path(run_local(cfg, folder / "runs"))
        energy, trades = load_table(run, "energy"), load_table(run, "trades")
        day = day_summary(energy, trades)
        if first is None:
            first = report(run)
            lines += _vpp_table(day) + [""]
            lines += ["| day | generated kWh | consumed kWh | sold kWh | inside | across | to grid"
                      " | grid import kWh | self-sufficiency | mean price ct/kWh |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
        lines.append(_day_row(variant, day, energy, trades))
    (folder / "trading_day.md").write_text("\n".join(lines) + "\n")
    return first


def _vpp_table(day) -> list[str]:
    rows = ["| VPP | generated kWh | consumed kWh | sold inside | traded across | grid import"
            " | grid export | self-sufficiency |", "|---|---|---|---|---|---|---|---|"]
    for r in day.itertuples():
        rows.append(f"| {r.vpp} | {r.generated_kwh:.1f} | {r.consumed_kwh:.1f} | "
                    f"{r.intra_kwh:.1f} | {r.cross_kwh:.1f} | {r.grid_import_kwh:.1f} | "
                    f"{r.grid_export_kwh:.1f} | {r.self_sufficiency:.2f} |")
    return rows


def _day_row(variant: str, day, energy, trades) -> str:
    """One day's totals: energy sold inside a VPP, across VPPs and to the grid, and prices."""
    settled = trades[trades.status == "settled"]
    intra = settled[~settled.cross].wh.sum() / 1000
    cross = settled[settled.cross].wh.sum() / 1000
    grid = energy.export_wh.sum() / 1000
    sold = intra + cross + grid
    use = energy.consumption_wh.sum() / 1000
    imported = energy.import_wh.sum() / 1000
    price = (settled.price * settled.wh).sum() / settled.wh.sum() if len(settled) else float("nan")
    share = (lambda x: f"{x:.0f} ({x / sold:.0%})") if sold else (lambda x: f"{x:.0f}")
    return (f"| {variant} | {energy.generation_wh.sum() / 1000:.0f} | {use:.0f} | {sold:.0f} | "
            f"{share(intra)} | {share(cross)} | {share(grid)} | {imported:.0f} | "
            f"{1 - imported / use if use else float('nan'):.2f} | {price:.1f} |")


def run_cost(out: Path, quick: bool) -> Path:
    args = [sys.executable, str(HERE / "cost_study.py"), "--out", str(out / "cost")]
    subprocess.run(args + (["--quick"] if quick else []), check=True)
    return out / "cost" / "cost.md"


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
    if name == "trading_day":
        for source, target in DAY_FIGURES.items():
            shutil.copy(folder / source, docs / "figures" / target)
        shutil.copy(folder.parents[2] / "trading_day.md", docs / "tables" / f"{name}.md")
        return
    if name == "cost":
        shutil.copy(folder / "cost.png", docs / "figures" / "cost.png")
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
        special = {"credit_study": run_credit_study, "trading_day": run_trading_day,
                   "cost": run_cost}
        md = (special[name](args.out, args.quick) if name in special
              else run_sweep_section(name, args.out, args.quick))
        if args.docs is not None:
            publish(name, md, args.docs)
        print(f"{name}: {time.perf_counter() - started:.0f} s -> {md}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
