"""``mlts report``: PNG figures and a Markdown report beside a run's or a sweep's tables.

For a run: latency and finality per round and chain, messages per phase, credit trajectories of
honest vs Byzantine nodes, committee membership, anchoring. For a sweep: each metric against
each swept parameter, one line per algorithm, with a 95 % confidence band over seeds; message
counts are drawn beside PBFT's and DCE-PBFT's closed forms when nodes per VPP is swept.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

from mlts_ray.analysis.document import Document  # noqa: E402
from mlts_ray.analysis.energy_report import day_figures, day_summary  # noqa: E402
from mlts_ray.analysis.load import load_sweep, load_table, read_manifest  # noqa: E402
from mlts_ray.analysis.summary import consensus_summary  # noqa: E402
from mlts_ray.config import committee_size, from_toml  # noqa: E402
from mlts_ray.names import MAIN  # noqa: E402
from mlts_ray.errors import RunError  # noqa: E402
from mlts_ray.runtime.storage import locate  # noqa: E402

METRICS = {
    "latency_ms": "latency (ms)",
    "finality_ms": "finality (ms)",
    "messages": "messages per round",
    "bytes": "bytes on the wire per round",
    "views": "views per round",
    "byzantine_in_committee": "Byzantine members in committee",
}
NOT_PARAMETERS = {"experiment.seed", "consensus.algorithm"}


def _save(fig, path: Path) -> str:
    for ax in fig.axes:
        if ax.get_xlabel() == "round":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def report(target: str | Path) -> Path:
    """Figures, ``report.md`` and a self-contained ``report.html`` in ``<target>/report/``;
    returns the Markdown file."""
    where = Path(locate(target).path)
    if (where / "sweep.json").is_file():
        return _sweep_report(where)
    read_manifest(where)
    return _run_report(where)


# --- one run -----------------------------------------------------------------------------------


def _run_report(run: Path) -> Path:
    out = run / "report"
    out.mkdir(exist_ok=True)
    consensus = load_table(run, "consensus")
    if consensus.empty:
        raise RunError(str(run), "no finished round to report")
    figures = {
        "latency.png": ("Latency and finality per round", _latency(consensus, out / "latency.png")),
        "messages.png": ("Messages per phase", _messages(load_table(run, "messages"), out / "messages.png")),
        "credits.png": ("Credit of honest vs Byzantine nodes", _credits(load_table(run, "credits"), out / "credits.png")),
        "committee.png": ("Committee membership", _committee(load_table(run, "credits"), out / "committee.png")),
        "anchoring.png": ("Anchoring", _anchoring(load_table(run, "blocks"), load_table(run, "anchors"), out / "anchoring.png")),
    }
    table = consensus_summary(consensus).set_index("chain").round(2)
    manifest = read_manifest(run)
    energy, trades = load_table(run, "energy"), load_table(run, "trades")
    day = None
    if not energy.empty:
        cfg = from_toml(manifest["config_toml"])
        for name, title in day_figures(cfg, energy, trades, out).items():
            figures[name] = (title, name)
        day = day_summary(energy, trades).set_index("vpp").round(3)
    doc = Document(f"Run {manifest['run_id']}")
    doc.para(f"Runtime `{manifest.get('runtime')}`, seed {manifest.get('seed')}, "
             f"{manifest.get('rounds_done')} rounds, status `{manifest.get('status')}`.")
    doc.heading("Per chain")
    doc.table(table)
    if day is not None:
        doc.heading("Energy per VPP")
        doc.table(day)
    for name, (title, _) in figures.items():
        doc.heading(title)
        doc.figure(title, out / name)
    return doc.write(out)


def _latency(df: pd.DataFrame, path: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for chain, rows in df.groupby("chain"):
        axes[0].plot(rows["round"], rows["latency_ms"], marker=".", label=chain)
        axes[1].plot(rows["round"], rows["finality_ms"], marker=".", label=chain)
    for ax, what in zip(axes, ("latency (ms)", "finality (ms)"), strict=True):
        ax.set_xlabel("round")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small", ncol=2)
    return _save(fig, path)


def _messages(df: pd.DataFrame, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4))
    per = df.groupby(["chain", "phase"])["count"].mean().unstack(fill_value=0)
    per.plot.bar(stacked=True, ax=ax)
    ax.set_ylabel("messages per round (mean)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def _credits(df: pd.DataFrame, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4))
    for behaviour, rows in df.groupby("behaviour"):
        mean = rows.groupby("round")["credit"].mean()
        ax.plot(mean.index, mean.values, label=f"{behaviour} ({rows.node.nunique()} nodes)",
                linewidth=2.5 if behaviour == "honest" else 1.5)
    ax.set_xlabel("round")
    ax.set_ylabel("mean credit")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _committee(df: pd.DataFrame, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4))
    members = df[df.in_committee]
    share = members.assign(faulty=members.behaviour != "honest").groupby("round")["faulty"].mean()
    size = members.groupby(["round", "chain"]).size().groupby("round").mean()
    ax.plot(share.index, share.values, color="tab:red", label="Byzantine share of committee seats")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("round")
    ax.set_ylabel("share")
    ax2 = ax.twinx()
    ax2.plot(size.index, size.values, color="tab:blue", linestyle="--", label="committee size (mean)")
    ax2.set_ylabel("members")
    fig.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def _anchoring(blocks: pd.DataFrame, anchors: pd.DataFrame, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 4))
    collab = blocks[blocks.kind == "collaborative"].groupby("round").size()
    ax.bar(collab.index, collab.values, color="tab:green", label="collaborative blocks")
    if not anchors.empty:
        ok = anchors.groupby("round")["ok"].agg(["sum", "count"])
        ax.plot(ok.index, ok["sum"], "ko", label="anchored and verified")
    ax.set_xlabel("round")
    ax.set_ylabel("blocks")
    ax.legend(fontsize="small")
    return _save(fig, path)


# --- a sweep -----------------------------------------------------------------------------------


def _band(values: pd.Series) -> tuple[float, float]:
    values = values.dropna()  # a seed whose rounds had no latency is not a zero
    mean = values.mean()
    if len(values) < 2:
        return mean, 0.0
    return mean, 1.96 * values.std(ddof=1) / math.sqrt(len(values))


def _sweep_report(sweep: Path) -> Path:
    out = sweep / "report"
    out.mkdir(exist_ok=True)
    df = load_sweep(sweep)
    df["algorithm"] = df["consensus.algorithm"]
    df["level"] = (df.chain == MAIN).map({True: "main chain", False: "side chains"})
    swept = [c for c in df.columns if "." in c and c not in NOT_PARAMETERS
             and df[c].nunique() > 1]
    # Only seeds (and perhaps the algorithm) swept: each algorithm is one point of its own.
    axes = swept or ["consensus.algorithm"]
    figures = []
    for param in axes:
        for metric, label in METRICS.items():
            name = f"{metric}_vs_{param.replace('.', '_')}.png"
            figures.append((f"{label} vs {param}", _metric_plot(df, param, metric, label, out / name)))
    anchoring = _anchoring_vs(sweep, swept, out)
    if anchoring:
        figures.append(anchoring)
    doc = Document(f"Sweep {sweep.name}")
    doc.para(f"{df['point'].nunique()} points, {df['experiment.seed'].nunique()} seed(s); "
             "bands are 95 % confidence intervals over seeds (per-seed means of each point).")
    doc.table(_summary(df, swept))
    for title, name in figures:
        doc.heading(title)
        doc.figure(title, out / name)
    return doc.write(out)


def _summary(df: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Means over seeds with 95 % half-widths, main and side chains apart (averaging a PBFT
    main chain of 6 messages with side chains of 19,998 describes neither)."""
    keys = list(dict.fromkeys(["algorithm", "level", *swept]))
    df = df.assign(clean=df.committed & ~df.committed_beyond_f)
    per_seed = df.groupby([*keys, "experiment.seed"]).agg(
        latency_ms=("latency_ms", "mean"), finality_ms=("finality_ms", "mean"),
        messages=("messages", "mean"), bytes=("bytes", "mean"),
        committed=("clean", "mean")).reset_index()
    out = {}
    for metric in ("latency_ms", "finality_ms", "messages", "bytes", "committed"):
        stats = per_seed.groupby(keys)[metric].apply(_band)
        out[metric] = stats.map(lambda b: b[0])
        out[f"{metric}_ci95"] = stats.map(lambda b: b[1])
    # the protocol's shape (k, f, views) beside its figures, how many rounds each mean rests
    # on, the rounds without a latency it leaves out (censored: the worst ones), and the
    # commits of a committee beyond f (not counted as clean commits above)
    counts = df.groupby(keys).agg(
        k=("committee_size", "max"), f=("f", "max"), views=("views", "mean"),
        rounds=("round", "size"), latency_n=("latency_ms", "count"),
        finality_n=("finality_ms", "count"), beyond_f=("committed_beyond_f", "sum"))
    counts.insert(counts.columns.get_loc("latency_n") + 1, "censored",
                  counts.rounds - counts.latency_n)
    return pd.DataFrame(out).join(counts).round(2)


def _metric_plot(df: pd.DataFrame, param: str, metric: str, label: str, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = list(dict.fromkeys(["algorithm", "level", param, "experiment.seed"]))
    per_seed = df.groupby(keys)[metric].mean().reset_index()
    for (algorithm, level), rows in per_seed.groupby(["algorithm", "level"]):
        stats = rows.groupby(param)[metric].apply(_band)
        xs = list(stats.index)
        mean = [m for m, _ in stats]
        half = [h for _, h in stats]
        style = "-" if level == "side chains" else "--"
        line, = ax.plot(xs, mean, style, marker="o", label=f"{algorithm}, {level}")
        ax.fill_between(xs, [m - h for m, h in zip(mean, half)], [m + h for m, h in zip(mean, half)],
                        alpha=0.2, color=line.get_color())
    if metric == "messages" and param == "topology.nodes_per_vpp":
        _closed_forms(ax, df, sorted(df[param].unique()))
    _log_if_wide(ax, df[param], per_seed[metric])
    ax.set_xlabel(param)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _log_if_wide(ax, xs: pd.Series, ys: pd.Series) -> None:
    """Log axes where positive values span more than 20x (1-100 Mbit/s, 0.1-55 s latency):
    on linear axes every point but the largest sits on the floor."""
    for values, set_scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        values = pd.to_numeric(values, errors="coerce").dropna()
        if len(values) and (values > 0).all() and values.max() > 20 * values.min():
            set_scale("log")


def _anchoring_vs(sweep: Path, swept: list[str], out: Path) -> tuple[str, str] | None:
    """Collaborative blocks per main block, anchor-proof length (hashes) and anchoring lag
    (main blocks between a trade's main block and the one that anchors it) per point."""
    anchors = load_sweep(sweep, "anchors")
    if anchors.empty or not swept:
        return None
    param = "topology.vpps" if "topology.vpps" in swept else swept[0]
    per_block = anchors.groupby(["point", param, "main_height"]).size().rename("leaves").reset_index()
    per_block["proof_hashes"] = per_block.leaves.map(lambda n: math.ceil(math.log2(n)) if n > 1 else 0)
    lag = anchors.assign(lag=anchors.main_height - anchors.collab_type).groupby(param).lag.mean()
    stats = per_block.groupby(param)[["leaves", "proof_hashes"]].mean()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(stats.index, stats.leaves, "o-", label="collaborative blocks per main block")
    ax.plot(stats.index, stats.proof_hashes, "s-", label="anchor proof length (hashes)")
    ax.plot(lag.index, lag.values, "^--", label="anchoring lag (main blocks)")
    ax.set_xlabel(param)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return (f"anchoring vs {param}", _save(fig, out / f"anchoring_vs_{param.replace('.', '_')}.png"))


def _closed_forms(ax, df: pd.DataFrame, ns: list[int]) -> None:
    """PBFT ``(N-1) + (N-1)^2 + N(N-1)`` and DCE-PBFT ``(k-1) + (k-1)^2 + k(k-1) + (N-k)``
    (pre-prepare to certificate; the measured counts add requests and replies)."""
    side = df[df.chain != MAIN]
    if side.empty:
        return
    pbft = [(n - 1) + (n - 1) ** 2 + n * (n - 1) for n in ns]
    ks = [committee_size(n, 0.10, 2) for n in ns]
    dce = [(k - 1) + (k - 1) ** 2 + k * (k - 1) + (n - k) for n, k in zip(ns, ks, strict=True)]
    ax.plot(ns, pbft, "k--", linewidth=1, label="PBFT closed form")
    ax.plot(ns, dce, "k:", linewidth=1, label="DCE-PBFT closed form (k = max(2, 10% N))")
    ax.set_yscale("log")

