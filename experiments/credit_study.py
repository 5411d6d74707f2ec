#!/usr/bin/env python
"""The credit experiment rerun: every Byzantine behaviour, alone, on the side chain and on the
main chain, at 10/30/50 % faulty, DCE-PBFT against a random committee of the same size k.

The side-chain half is the sweep of ``experiments/credit_behaviours.toml``; the main-chain half
is the same sweep with ``MAIN_OVERRIDES``. Every point runs in-process with the local runtime
(``mlts_ray.runtime.local.run_local``), ``--jobs`` at a time. Per (where, behaviour, fraction,
algorithm), averaged over the sweep's seeds (per-seed values in ``credit_study_runs.csv``):

1. ``exit_round``: the first round r such that no node of the behaviour holds a seat in any round
   >= r on the faulty chain(s) (0: never seated; None / "never": seated in the last round);
2. faulty seats per round, counted from the credits table (``in_committee`` of the nodes whose
   behaviour is the faulty one, so trading behaviours count too), over all rounds and over the
   late window (rounds >= rounds // 2: 30-59 in the full study); ``byz_in_committee`` is the
   consensus table's own count, for comparison (it only counts consensus behaviours);
3. commit rate and mean views of the faulty chain(s);
4. last round: mean consensus credit of honest and of faulty nodes, the share of faulty nodes
   not ``active`` (below eligibility, suspended or banned) and the share of honest ones.

Outputs in ``--out``: ``credit_study.csv``, ``credit_study_runs.csv``, ``credit_study.md``,
``credit_study.png`` (credit per round, honest vs faulty, 30 % on the side chain, DCE-PBFT),
``credit_seats.png`` (faulty seats per round, 10/30/50 %, DCE-PBFT vs random committee, side
chain), ``credit_study.json`` (provenance and failures) and the run directories under ``runs/``.

    python experiments/credit_study.py --out /tmp/credit_study
    python experiments/credit_study.py --quick --out /tmp/credit_quick   # 20 rounds, one seed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlts_ray.analysis.load import load_table, read_manifest  # noqa: E402
from mlts_ray.config import (  # noqa: E402
    Config,
    load_config,
    main_committee_size,
    side_committee_size,
    sweep_points,
    with_values,
)
from mlts_ray.errors import MltsError  # noqa: E402
from mlts_ray.names import MAIN  # noqa: E402
from mlts_ray.population.registry import names  # noqa: E402

BEHAVIOURS = names()  # every behaviour a config may name, in the registry's order
from mlts_ray.mlts.simulation import run_id_of  # noqa: E402
from mlts_ray.runtime.local import run_local  # noqa: E402
from mlts_ray.runtime.pool import each  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "credit_behaviours.toml"

#: The main-chain half: 10 VPPs so the main chain has 10 VMCs (committee ceil(0.6 x 10) = 6);
#: 6 grid nodes so that false-audit (which only grid-1.. can be there) fills 1/3/5 slots.
MAIN_OVERRIDES: dict[str, Any] = {
    "faults.where": "main",
    "topology.vpps": 10,
    "topology.nodes_per_vpp": 6,
    "topology.supervisors_per_vpp": 1,
    "topology.grid_nodes": 6,
}
SIDE_OVERRIDES: dict[str, Any] = {"faults.where": "side"}
WHERES = {"side": SIDE_OVERRIDES, "main": MAIN_OVERRIDES}
QUICK_ROUNDS = 20
KEY = ["where", "behaviour", "fraction", "algorithm"]
ALGO_ORDER = ["dce-pbft", "random-committee"]


# --- the points -----------------------------------------------------------------------------


def study_points(cfg: Config, wheres: list[str], quick: bool, behaviours: list[str] | None,
                 seeds: list[int] | None) -> tuple[list[dict], list[dict]]:
    """``(tasks, refused)``: one task per run, each with its validated config; points the
    config validation refuses are returned with the error."""
    points = sweep_points(cfg)
    if quick and not seeds:
        first_seed = cfg.sweep.get("experiment.seed", [cfg.experiment.seed])[0]
        points = [p for p in points if p.get("experiment.seed", first_seed) == first_seed]
    tasks, refused = [], []
    for where in wheres:
        for point in points:
            values = {**point, **WHERES[where]}
            if quick:
                values["experiment.rounds"] = QUICK_ROUNDS
            behaviour = list(values.get("faults.behaviours", cfg.faults.behaviours))
            if len(behaviour) != 1:
                raise SystemExit(f"{CONFIG}: every point needs one behaviour, got {behaviour}")
            key = {"where": where, "behaviour": behaviour[0],
                   "fraction": float(values.get("faults.byzantine_fraction",
                                                cfg.faults.byzantine_fraction)),
                   "algorithm": values.get("consensus.algorithm", cfg.consensus.algorithm),
                   "seed": int(values.get("experiment.seed", cfg.experiment.seed))}
            if behaviours and key["behaviour"] not in behaviours:
                continue
            if seeds and key["seed"] not in seeds:
                continue
            try:
                point_cfg = with_values(cfg, values)
            except MltsError as err:
                refused.append({**key, "status": "refused", "error": str(err)})
                continue
            tasks.append({"key": key, "cfg": point_cfg})
    return tasks, refused


# --- one run --------------------------------------------------------------------------------


def _faulty_chains(chains: pd.Series, where: str) -> pd.Series:
    if where == "main":
        return chains == MAIN
    if where == "side":
        return chains != MAIN
    return pd.Series(True, index=chains.index)


def measure(cfg: Config, where: str, behaviour: str, credits: pd.DataFrame,
            consensus: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """The study's numbers for one run, and its per-round series (for the figures)."""
    rounds = cfg.experiment.rounds
    late = rounds // 2
    index = pd.RangeIndex(rounds, name="round")
    c = credits[_faulty_chains(credits["chain"], where)]
    k = consensus[_faulty_chains(consensus["chain"], where)]
    # supervisors (side: the last resources; main: the grid nodes) can never hold a seat
    ident = c["chain"] + "|" + c["node"]
    sup = ident.isin(set(ident[c["role"] == "supervisory"]))
    c = c.assign(supervisor=sup)
    is_faulty = c["behaviour"] == behaviour
    is_honest = (c["behaviour"] == "honest") & ~c["supervisor"]  # honest committee candidates
    faulty_nodes = c.loc[is_faulty, ["chain", "node"]].drop_duplicates()
    supervisors = set(map(tuple, c.loc[is_faulty & c["supervisor"],
                                       ["chain", "node"]].drop_duplicates().to_numpy()))
    seats = (c[is_faulty & c["in_committee"]].groupby("round").size()
             .reindex(index, fill_value=0))
    seated = seats[seats > 0]
    if faulty_nodes.empty:
        exit_round = np.nan
    elif seated.empty:
        exit_round = 0
    elif seated.index.max() == rounds - 1:
        exit_round = None  # still seated in the last round
    else:
        exit_round = int(seated.index.max()) + 1
    byz = k.groupby("round")["byzantine_in_committee"].sum().reindex(index, fill_value=0)
    last = c[c["round"] == rounds - 1]
    lf = last[last["behaviour"] == behaviour]
    honest_all = last[last["behaviour"] == "honest"]
    lh = honest_all[~honest_all["supervisor"]]  # honest committee candidates
    ls = honest_all[honest_all["supervisor"]]  # honest supervisors
    k_late = k[k["round"] >= late]
    metrics = {
        "n_faulty": len(faulty_nodes),
        "n_faulty_seatable": len(faulty_nodes) - len(supervisors),
        "committee_k": int(k["committee_size"].max()) if len(k) else np.nan,
        "exit_round": exit_round,
        "still_seated": exit_round is None,  # a faulty seat in the last round
        "seats_mean": float(seats.mean()),
        "seats_late": float(seats[seats.index >= late].mean()),
        "byz_in_committee": float(byz.mean()),
        "commit_rate": float(k["committed"].mean()),
        "commit_rate_late": float(k_late["committed"].mean()),
        "views_mean": float(k["views"].mean()),
        "latency_ms": float(k["latency_ms"].mean()),
        "credit_honest": float(lh["credit"].mean()),
        "credit_faulty": float(lf["credit"].mean()),
        "faulty_not_active": float((lf["status"] != "active").mean()) if len(lf) else np.nan,
        "faulty_banned": float((lf["status"] == "banned").mean()) if len(lf) else np.nan,
        "honest_not_active": float((lh["status"] != "active").mean()) if len(lh) else np.nan,
        "honest_all_credit": float(honest_all["credit"].mean()),
        "honest_all_not_active": (float((honest_all["status"] != "active").mean())
                                  if len(honest_all) else np.nan),
        "honest_sup_credit": float(ls["credit"].mean()) if len(ls) else np.nan,
        "honest_sup_not_active": float((ls["status"] != "active").mean()) if len(ls) else np.nan,
        "faulty_status": _counts(lf["status"]),
        "honest_status": _counts(lh["status"]),
        "honest_sup_status": _counts(ls["status"]),
        "safety_violations": int(k["safety_violation"].sum()),
        "degraded_rounds": int(k["committee_degraded"].sum()),
        "degraded_share": float(k["committee_degraded"].mean()),
    }
    series = pd.DataFrame({
        "credit_honest": c[is_honest].groupby("round")["credit"].mean().reindex(index),
        "credit_faulty": c[is_faulty].groupby("round")["credit"].mean().reindex(index),
        "seats": seats,
    }).reset_index()
    return metrics, series


def _counts(values: pd.Series) -> str:
    counts = values.value_counts()
    return " ".join(f"{name}:{n}" for name, n in sorted(counts.items()))


def run_point(task: dict) -> tuple[dict, pd.DataFrame | None]:
    """Run (or, with ``reuse``, find) one point and measure it; failures are returned."""
    key, cfg = task["key"], task["cfg"]
    started = time.perf_counter()
    row: dict[str, Any] = dict(key)
    try:
        run_dir = task.get("existing") or run_local(cfg, task["runs"])
        credits = load_table(run_dir, "credits")
        consensus = load_table(run_dir, "consensus")
        metrics, series = measure(cfg, key["where"], key["behaviour"], credits, consensus)
        row.update(metrics, status="ok", run_dir=str(run_dir), error="")
    except Exception as err:  # a crash of one point must not lose the others
        row.update(status="failed", error=f"{type(err).__name__}: {err}",
                   traceback=traceback.format_exc(limit=6))
        series = None
    row["wall_s"] = round(time.perf_counter() - started, 2)
    return row, series


def _existing(runs: Path, cfg: Config) -> str | None:
    run = runs / run_id_of(cfg)
    try:
        return str(run) if read_manifest(run).get("status") == "complete" else None
    except MltsError:
        return None


# --- aggregation ----------------------------------------------------------------------------


def _exit_text(values: list) -> str:
    """Each seed's exit round: "never" (None) or "-" (no faulty node at all, NaN)."""
    def one(v):
        if v is None:
            return "never"
        return "-" if isinstance(v, float) and np.isnan(v) else str(int(v))
    return ", ".join(one(v) for v in values)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"].copy()
    numeric = ["n_faulty", "n_faulty_seatable", "committee_k", "seats_mean", "seats_late",
               "byz_in_committee", "commit_rate", "commit_rate_late", "views_mean",
               "latency_ms", "credit_honest", "credit_faulty", "faulty_not_active",
               "faulty_banned", "honest_not_active", "honest_all_credit",
               "honest_all_not_active", "honest_sup_credit", "honest_sup_not_active",
               "safety_violations", "degraded_rounds", "degraded_share"]
    rows = []
    for key, g in ok.groupby(KEY, sort=False):
        g = g.sort_values("seed")
        row = dict(zip(KEY, key))
        row["seeds"] = len(g)
        exits = [None if still else v for v, still in zip(g["exit_round"], g["still_seated"])]
        never = sum(v is None for v in exits)
        row["exit_rounds"] = _exit_text(exits)
        row["exit_never"] = never
        # the worst seed: "never" if any seed still had a faulty seat in the last round
        known = [v for v in exits if v is not None and not np.isnan(v)]
        row["exit_round_max"] = None if never else (max(int(v) for v in known) if known
                                                    else np.nan)
        for col in numeric:
            row[col] = g[col].astype(float).mean()
        row["faulty_status"] = " | ".join(g["faulty_status"])
        row["honest_status"] = " | ".join(g["honest_status"])
        row["honest_sup_status"] = " | ".join(g["honest_sup_status"])
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {b: i for i, b in enumerate(BEHAVIOURS)}
    out["_w"] = out["where"].map({"side": 0, "main": 1, "both": 2})
    out["_b"] = out["behaviour"].map(order)
    out["_a"] = out["algorithm"].map({a: i for i, a in enumerate(ALGO_ORDER)})
    return out.sort_values(["_w", "_b", "fraction", "_a"]).drop(columns=["_w", "_b", "_a"])


def series_mean(series: list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    frames = [s.assign(**{k: key[k] for k in KEY}) for key, s in series]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df.groupby([*KEY, "round"], as_index=False)[["credit_honest", "credit_faulty",
                                                        "seats"]].mean()


# --- outputs --------------------------------------------------------------------------------


def _f(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.0f} %"


def markdown(table: pd.DataFrame, runs: pd.DataFrame, meta: dict) -> str:
    late = meta["late_from"]
    last = meta["rounds"] - 1
    show_byz = not np.allclose(table["seats_mean"], table["byz_in_committee"])
    lines = [
        "# Credit study: each Byzantine behaviour alone, DCE-PBFT vs random committee", "",
        f"{meta['rounds']} rounds, seeds {meta['seeds']} (numbers are means over seeds; "
        "'left committee' lists each seed's round), "
        f"{meta['n_runs']} runs in {meta['wall_s']:.0f} s with {meta['jobs']} processes. "
        f"Side chain: {meta['side_topology']}; main chain: {meta['main_topology']}.", "",
        "- **faulty (seatable)**: nodes of the behaviour on the faulty chain(s) (those that are "
        "not supervisors, so could hold a seat).",
        "- **left committee**: first round r with no faulty seat in any round >= r "
        "(0: never seated; never: seated in the last round).",
        f"- **seats/rnd**: faulty committee seats per round (credits table), all rounds and "
        f"rounds {late}-{last}" + (
            "; **byz/rnd**: the consensus table's `byzantine_in_committee`." if show_byz else
            " (the consensus table's `byzantine_in_committee` gives the same mean in every "
            "row)."),
        "- **commit rate**, **views**: per round of the faulty chain(s); **degraded**: share of "
        "those rounds whose committee had to be filled with non-eligible nodes.",
        f"- last round ({last}): mean consensus **credit** of honest committee candidates "
        "(every honest node but the supervisors) and of the faulty nodes (all of them); share of "
        "faulty nodes, of honest candidates and of honest supervisors (side: the VPP's "
        "supervisors; main: the grid nodes) **not active** (ineligible, suspended or banned).",
        "",
    ]
    header = ("| behaviour | faulty | algorithm | k | faulty (seatable) | left committee | "
              f"seats/rnd | seats/rnd {late}-{last} |{' byz/rnd |' if show_byz else ''} "
              "commit rate | views | degraded | credit honest | credit faulty | "
              "faulty not active | honest not active | honest sup. not active |")
    rule = "|" + "---|" * (header.count("|") - 1)
    for where, g in table.groupby("where", sort=False):
        lines += [f"## Faults on the {where} chain{'s' if where == 'side' else ''}", "",
                  header, rule]
        for _, r in g.iterrows():
            lines.append("| " + " | ".join([
                r["behaviour"], f"{100 * r['fraction']:.0f} %", r["algorithm"],
                _f(r["committee_k"], 0),
                f"{_f(r['n_faulty'], 0)} ({_f(r['n_faulty_seatable'], 0)})",
                r["exit_rounds"], _f(r["seats_mean"]), _f(r["seats_late"]),
                *([_f(r["byz_in_committee"])] if show_byz else []),
                _pct(r["commit_rate"]), _f(r["views_mean"]),
                _pct(r["degraded_share"]),
                _f(r["credit_honest"], 1), _f(r["credit_faulty"], 1),
                _pct(r["faulty_not_active"]), _pct(r["honest_not_active"]),
                _pct(r["honest_sup_not_active"]),
            ]) + " |")
        lines.append("")
    bad = runs[runs["status"] != "ok"]
    if len(bad):
        lines += ["## Runs that failed or were refused", "",
                  "| where | behaviour | faulty | algorithm | seed | status | error |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in bad.iterrows():
            err = str(r.get("error", "")).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r['where']} | {r['behaviour']} | {100 * r['fraction']:.0f} % | "
                         f"{r['algorithm']} | {r['seed']} | {r['status']} | {err} |")
        lines.append("")
    changed = meta["source_digest_after"] != meta["source_digest"]
    lines += [f"Provenance: git {meta['git_head']}, mlts_ray sources sha256 "
              f"{meta['source_digest']}{' (uncommitted changes)' if meta['git_dirty'] else ''}"
              f"{' -- the sources changed while the study ran (the runs used the version above)' if changed else ''}.",
              ""]
    return "\n".join(lines)


def _panels(n: int):
    """One small panel per behaviour, three to a row, sharing both axes."""
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    return plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), sharex=True, sharey=True,
                        squeeze=False)


def _label(axes, used: int, ylabel: str) -> None:
    """Hide the panels left over, label the outer axes."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("round")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)


def figure_credit(series: pd.DataFrame, path: Path, meta: dict, fraction: float = 0.3) -> None:
    s = series[(series["where"] == "side") & (series["algorithm"] == "dce-pbft")
               & np.isclose(series["fraction"], fraction)]
    behaviours = [b for b in BEHAVIOURS if b in set(s["behaviour"])]
    if not behaviours:
        return
    fig, axes = _panels(len(behaviours))
    for ax, b in zip(axes.flat, behaviours):
        d = s[s["behaviour"] == b]
        ax.plot(d["round"], d["credit_honest"], color="tab:blue", label="honest candidates")
        ax.plot(d["round"], d["credit_faulty"], color="tab:red", label="faulty")
        ax.axhline(meta["eligible"], color="grey", ls=":", lw=1, label="eligibility")
        ax.axhline(meta["suspend"], color="grey", ls="--", lw=0.8, label="suspension")
        ax.set_title(b, fontsize=10)
        ax.grid(alpha=0.3)
    _label(axes, len(behaviours), "mean consensus credit")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Consensus credit, honest vs faulty: {100 * fraction:.0f} % faulty on the side "
                 f"chain, DCE-PBFT (mean of {len(meta['seeds'])} seed(s))", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_seats(series: pd.DataFrame, path: Path, meta: dict) -> None:
    s = series[series["where"] == "side"]
    behaviours = [b for b in BEHAVIOURS if b in set(s["behaviour"])]
    if not behaviours:
        return
    fig, axes = _panels(len(behaviours))
    colours = {0.1: "tab:green", 0.3: "tab:orange", 0.5: "tab:red"}
    styles = {"dce-pbft": "-", "random-committee": "--"}
    for ax, b in zip(axes.flat, behaviours):
        d = s[s["behaviour"] == b]
        for (frac, algo), g in d.groupby(["fraction", "algorithm"]):
            ax.plot(g["round"], g["seats"], ls=styles.get(algo, ":"),
                    color=colours.get(round(frac, 2), "black"), lw=1.2,
                    label=f"{algo}, {100 * frac:.0f} %")
        ax.set_title(b, fontsize=10)
        ax.grid(alpha=0.3)
    _label(axes, len(behaviours), f"faulty seats (of k={meta['side_k']})")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Faulty committee seats per round, side chain: DCE-PBFT (solid) vs random "
                 f"committee (dashed), mean of {len(meta['seeds'])} seed(s)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- provenance -----------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def source_digest() -> str:
    """sha256 of the mlts_ray sources as imported now (the core is edited concurrently)."""
    import mlts_ray

    root = Path(mlts_ray.__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/credit_study", help="output directory")
    p.add_argument("--config", default=str(CONFIG), help="the side-chain sweep (TOML)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_ROUNDS} rounds and the first seed only (unless --seeds)")
    p.add_argument("--where", nargs="+", choices=list(WHERES), default=list(WHERES))
    p.add_argument("--behaviours", nargs="+", choices=list(BEHAVIOURS), default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="a subset of the sweep's")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--reuse", action="store_true",
                   help="reuse complete runs of the same config already in OUT/runs (they may "
                        "predate code changes)")
    args = p.parse_args(argv)

    started = time.perf_counter()
    # provenance now, before any run: the core may change (and be committed) while we run;
    # the workers fork from this process, so they run the code imported here
    provenance = {"git_head": _git("rev-parse", "--short", "HEAD"),
                  "git_dirty": bool(_git("status", "--porcelain", "--", "mlts_ray")),
                  "source_digest": source_digest()}
    out = Path(args.out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config)
    tasks, refused = study_points(cfg, args.where, args.quick, args.behaviours, args.seeds)
    for t in tasks:
        t["runs"] = str(runs_dir)
        if args.reuse:
            t["existing"] = _existing(runs_dir, t["cfg"])
    # the slower main-chain runs first, so the pool ends evenly
    tasks.sort(key=lambda t: t["key"]["where"] != "main")
    print(f"{len(tasks)} runs ({len(refused)} refused by the config) with {args.jobs} "
          f"process(es) -> {out}", file=sys.stderr)
    for r in refused:
        print(f"  refused: {r}", file=sys.stderr)

    rows: list[dict] = []
    series: list[tuple[dict, pd.DataFrame]] = []
    for i, (row, s) in enumerate(each(run_point, tasks, args.jobs), 1):
        rows.append(row)
        if s is not None:
            series.append((row, s))
        tag = "ok" if row["status"] == "ok" else f"FAILED: {row['error']}"
        print(f"[{i}/{len(tasks)}] {row['where']} {row['behaviour']} {row['fraction']} "
              f"{row['algorithm']} seed {row['seed']}: {row['wall_s']} s {tag}",
              file=sys.stderr)
    runs = pd.DataFrame(rows + refused)
    for col in ("status", "error"):
        if col not in runs:
            runs[col] = ""
    table = aggregate(runs) if len(rows) else pd.DataFrame()
    s_mean = series_mean(series)
    wall = time.perf_counter() - started

    side_cfg = with_values(cfg, {**WHERES["side"]})
    main_cfg = with_values(cfg, {**WHERES["main"]})
    seeds = sorted({t["key"]["seed"] for t in tasks})
    rounds = QUICK_ROUNDS if args.quick else cfg.experiment.rounds
    meta = {
        "command": " ".join([sys.executable, *sys.argv]),
        "quick": args.quick, "rounds": rounds, "late_from": rounds // 2, "seeds": seeds,
        "jobs": args.jobs, "n_runs": len(tasks), "wall_s": wall,
        "failed": int((runs["status"] == "failed").sum()),
        "refused": len(refused),
        "side_topology": (f"{side_cfg.topology.vpps} VPP x {side_cfg.topology.nodes_per_vpp} "
                          f"nodes, {side_cfg.topology.supervisors_per_vpp} supervisors, "
                          f"k = {side_committee_size(side_cfg)}"),
        "main_topology": (f"{main_cfg.topology.vpps} VPPs x {main_cfg.topology.nodes_per_vpp} "
                          f"nodes, {main_cfg.topology.grid_nodes} grid nodes, main k = "
                          f"{main_committee_size(main_cfg)}"),
        "side_k": side_committee_size(side_cfg),
        "eligible": cfg.credit.eligible_threshold, "suspend": cfg.credit.suspend_threshold,
        **provenance,
        "source_digest_after": source_digest(),
    }
    runs.drop(columns=["traceback"], errors="ignore").to_csv(out / "credit_study_runs.csv",
                                                               index=False)
    if len(table):
        table.to_csv(out / "credit_study.csv", index=False)
        (out / "credit_study.md").write_text(markdown(table, runs, meta))
    if len(s_mean):
        s_mean.to_csv(out / "credit_study_series.csv", index=False)
        figure_credit(s_mean, out / "credit_study.png", meta)
        figure_seats(s_mean, out / "credit_seats.png", meta)
    failures = runs[runs["status"] != "ok"].to_dict("records")
    (out / "credit_study.json").write_text(json.dumps({**meta, "failures": failures},
                                                      indent=2, default=str))
    print(f"{len(tasks)} runs in {wall:.0f} s; {meta['failed']} failed, {len(refused)} refused",
          file=sys.stderr)
    for name in ("credit_study.csv", "credit_study.md", "credit_study.png", "credit_seats.png"):
        if (out / name).exists():
            print(out / name)
    return 1 if meta["failed"] or not len(table) else 0


if __name__ == "__main__":
    sys.exit(main())
