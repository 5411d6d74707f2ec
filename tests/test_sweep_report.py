"""Sweeps, the combined table, reports and their figures, and the notebook loaders."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import json
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from mlts_ray.analysis import load_run, load_sweep
from mlts_ray.analysis.report import report
from mlts_ray.cli import main
from mlts_ray.config import build_config, load_config
from mlts_ray.errors import ConfigError
from mlts_ray.runtime.local import run_local
from mlts_ray.runtime.sweep import COMBINED, run_sweep

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
PNG = b"\x89PNG\r\n\x1a\n"


def _sweep_cfg():
    return build_config({
        "experiment": {"name": "tiny", "rounds": 2, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 5, "grid_nodes": 1},
        "sweep": {"topology.nodes_per_vpp": [4, 6], "consensus.algorithm": ["pbft", "dce-pbft"]},
    })


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return Path(run_sweep(_sweep_cfg(), tmp_path_factory.mktemp("sweeps"), run_local))


def _assert_real_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG, path
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.01, f"{path.name} is blank"


def test_a_sweep_runs_every_point_and_writes_the_combined_table(sweep_dir):
    combined = pd.read_parquet(sweep_dir / COMBINED)
    points = combined.groupby(["topology.nodes_per_vpp", "consensus.algorithm"]).point.nunique()
    assert len(points) == 4 and (points == 1).all()
    assert set(combined.chain) == {"vpp-0", "vpp-1", "main"}
    pbft4 = combined[(combined["consensus.algorithm"] == "pbft") & (combined.chain == "vpp-0")
                     & (combined["topology.nodes_per_vpp"] == 4)]
    assert (pbft4.n_nodes == 4).all() and (pbft4.committee_size == 4).all()  # parameters took effect
    assert len(list(sweep_dir.glob("tiny-*"))) == 4


def test_loaders_return_observations_with_parameters_as_columns(sweep_dir):
    df = load_sweep(sweep_dir)
    for column in ("point", "topology.nodes_per_vpp", "consensus.algorithm", "experiment.seed",
                   "chain", "round", "latency_ms", "messages", "committed"):
        assert column in df.columns, column
    assert len(df) == 4 * 2 * 3  # points x rounds x chains
    one = load_run(next(sweep_dir.glob("tiny-*")), "credits")
    assert {"node", "credit", "consensus.algorithm", "topology.vpps"} <= set(one.columns)
    assert len(load_sweep(sweep_dir, "market")) == 4 * 2 * 3  # a row per chain and period


def test_sweep_report_has_figures_that_it_names(sweep_dir):
    path = report(sweep_dir)
    text = path.read_text()
    figures = sorted(path.parent.glob("*.png"))
    assert len(figures) >= 5
    for figure in figures:
        _assert_real_png(figure)
        assert f"]({figure.name})" in text, figure.name
    assert "messages_vs_topology_nodes_per_vpp.png" in {f.name for f in figures}


def test_run_report_has_the_five_figures(tmp_path, capsys):
    cfg = build_config({"experiment": {"rounds": 3, "runtime": "local"},
                        "faults": {"byzantine_fraction": 0.3, "behaviours": ["silent", "forge"]}})
    run = run_local(cfg, tmp_path)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    text = (run / "report" / "report.md").read_text()
    for name in ("latency", "messages", "credits", "committee", "anchoring"):
        figure = run / "report" / f"{name}.png"
        _assert_real_png(figure)
        assert f"]({name}.png)" in text and str(figure) in out


def test_a_sweep_over_an_unknown_key_fails_before_running(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nruntime = "local"\n[sweep]\n"topology.vpp" = [1, 2]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(bad), "--out", str(out)]) == 2
    assert not out.exists()
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert err.value.subject == "sweep.topology.vpp"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_experiment_config_runs_reduced(path, tmp_path):
    text = path.read_text()
    assert text.startswith("# ") and "?" in text.split("\n\n")[0]  # opens with its question
    cfg = load_config(path, ["experiment.runtime=local", "experiment.rounds=2"])
    if cfg.sweep:
        # the first two values of each swept key, one seed: the same code path, smaller
        small = {k: v[:2] if k != "experiment.seed" else v[:1] for k, v in cfg.sweep.items()}
        small = {k: [x for x in v if not (k == "topology.nodes_per_vpp" and x > 40)] or v[:1]
                 for k, v in small.items()}
        cfg = build_config({**cfg.model_dump(mode="json"), "sweep": small})
        done = Path(run_sweep(cfg, tmp_path, run_local))
        assert (done / COMBINED).exists()
    else:
        cfg = build_config(cfg.model_dump(mode="json"), ["topology.nodes_per_vpp=10"])
        assert (run_local(cfg, tmp_path) / "manifest.json").exists()


# --- issue 12: every sweep shape reports, main and side apart, interrupt and resume ------------

SEEDS_ONLY = """[experiment]
name = "seeds"
rounds = 1
runtime = "local"
[topology]
vpps = 2
nodes_per_vpp = 5
[sweep]
"experiment.seed" = [1, 2]
"""


def test_a_seed_only_sweep_reports_and_prints_its_directory(tmp_path, capsys):
    config = tmp_path / "seeds.toml"
    config.write_text(SEEDS_ONLY)
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    sweep = Path(out[-1])
    assert (sweep / "combined.parquet").is_file()
    report = (sweep / "report" / "report.md").read_text()
    assert "main chain" in report and "side chains" in report  # never averaged together


def test_the_sweep_table_never_averages_main_and_side_chains(sweep_dir):
    from mlts_ray.analysis.report import _summary

    df = load_sweep(sweep_dir)
    df["algorithm"] = df["consensus.algorithm"]
    df["level"] = (df.chain == "main").map({True: "main chain", False: "side chains"})
    table = _summary(df, []).reset_index()
    for (algorithm, level), rows in df.groupby(["algorithm", "level"]):
        want = rows.groupby("experiment.seed")["messages"].mean().mean()
        got = table[(table.algorithm == algorithm) & (table.level == level)]["messages"].item()
        assert got == pytest.approx(want, abs=0.01)


def test_sweep_out_that_is_a_file_is_refused_by_name(tmp_path, capsys):
    config = tmp_path / "seeds.toml"
    config.write_text(SEEDS_ONLY)
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["sweep", str(config), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "not a directory" in err and "Traceback" not in err


def test_an_interrupted_sweep_resumes_to_the_uninterrupted_combined_table(tmp_path):
    from mlts_ray.config import load_config
    from mlts_ray.runtime.driver import Interrupted

    config = tmp_path / "seeds.toml"
    config.write_text(SEEDS_ONLY.replace("[1, 2]", "[1, 2, 3]").replace("rounds = 1", "rounds = 3"))
    cfg = load_config(config)
    whole = Path(run_sweep(cfg, tmp_path / "whole", run_local))
    calls = []

    def interrupt_second(point_cfg, out, resume=None):
        calls.append(resume)
        if len(calls) == 2:  # Ctrl-C during the second point, after its first round

            def stop(done, total):
                raise KeyboardInterrupt

            return run_local(point_cfg, out, stop)
        return run_local(point_cfg, out, resume=resume)

    with pytest.raises(Interrupted) as err:
        run_sweep(cfg, tmp_path / "cut", interrupt_second)
    cut = Path(err.value.subject)
    assert main(["sweep", str(config), "--resume", str(cut), "--no-report"]) == 0
    a = pd.read_parquet(whole / "combined.parquet")
    b = pd.read_parquet(cut / "combined.parquet")
    keep = [c for c in a.columns if not c.startswith("wall_")]
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


def test_a_point_that_fails_is_recorded_and_resume_continues_its_run(tmp_path):
    """A full disk in the second point: the sweep record names its failed run, so --resume
    continues that run (keeping its finished round) instead of starting it again."""
    from mlts_ray.config import load_config
    from mlts_ray.errors import RunError

    config = tmp_path / "seeds.toml"
    config.write_text(SEEDS_ONLY.replace("[1, 2]", "[1, 2, 3]").replace("rounds = 1", "rounds = 3"))
    cfg = load_config(config)
    whole = Path(run_sweep(cfg, tmp_path / "whole", run_local))
    calls = []

    def disk_full_in_second(point_cfg, out, resume=None):
        calls.append(resume)
        if len(calls) == 2:

            def full(done, total):
                raise OSError(28, "No space left on device")

            return run_local(point_cfg, out, full)
        return run_local(point_cfg, out, resume=resume)

    with pytest.raises(RunError) as err:
        run_sweep(cfg, tmp_path / "cut", disk_full_in_second)
    assert "point 2 of 3" in err.value.why and "--resume" in err.value.why
    (cut,) = (tmp_path / "cut").iterdir()
    record = json.loads((cut / "sweep.json").read_text())
    assert [p["status"] for p in record["points"]] == ["complete", "failed"]
    failed = cut / record["points"][1]["run"]
    assert json.loads((failed / "manifest.json").read_text())["rounds_done"] == 1
    resumed = []

    def track(point_cfg, out, resume=None):
        resumed.append(resume)
        return run_local(point_cfg, out, resume=resume)

    run_sweep(cfg, tmp_path, track, resume=cut)
    assert resumed == [str(failed), None]
    a = pd.read_parquet(whole / "combined.parquet")
    b = pd.read_parquet(cut / "combined.parquet")
    keep = [c for c in a.columns if not c.startswith("wall_")]
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


def test_ctrl_c_in_a_sweep_exits_130_with_a_resume_command_that_works(tmp_path):
    """A real SIGINT to a real ``mlts sweep`` process, sent once its first round is on disk."""
    import shlex
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "seeds.toml"
    config.write_text(SEEDS_ONLY.replace("rounds = 1", "rounds = 150"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mlts_ray.cli", "sweep", str(config), "--out", str(out),
           "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # bounds a hang; nothing about speed is asserted
    while not list(out.glob("*/*/digests/round-000000.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    hint = next(line for line in stderr.splitlines() if line.startswith("resume with: "))
    args = shlex.split(hint.removeprefix("resume with: "))
    assert args[:2] == ["mlts", "sweep"] and args[-2] == "--resume"
    assert main([*args[1:], "--no-report"]) == 0
    record = json.loads((Path(args[-1]) / "sweep.json").read_text())
    assert [p["status"] for p in record["points"]] == ["complete", "complete"]


class _Page(HTMLParser):
    """What a browser would need from a page: images, tables, anything fetched from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.tables, self.rows, self.headers, self.outside = [], 0, 0, [], []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "table":
            self.tables += 1
            assert "sortable" in a.get("class", "")
        elif tag == "tr":
            self.rows += 1
        elif tag == "th":
            self._in_th = True
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.outside.append(a[key])
        if tag in ("link", "script") and (a.get("src") or a.get("href")):
            self.outside.append(a.get("src") or a.get("href"))

    def handle_endtag(self, tag):
        if tag == "th":
            self._in_th = False

    def handle_data(self, data):
        if self._in_th and data.strip():
            self.headers.append(data.strip())


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_the_html_report_is_self_contained_with_its_figures_and_tables(kind, sweep_dir, tmp_path):
    if kind == "run":
        cfg = build_config({"experiment": {"rounds": 2, "runtime": "local"}})
        target = run_local(cfg, tmp_path)
    else:
        target = sweep_dir
    md = report(target)
    page = _Page()
    page.feed((md.parent / "report.html").read_text())
    pngs = sorted(md.parent.glob("*.png"))
    assert len(page.images) == len(pngs) >= 5
    for src in page.images:  # every figure embedded, and a real PNG
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.tables >= 1 and page.rows >= 3 and page.headers
    assert page.outside == []  # nothing fetched from elsewhere: it opens offline


def test_the_example_notebook_runs_top_to_bottom(tmp_path):
    """experiments/analysis.ipynb loads a run and a sweep with mlts_ray.analysis and redraws a
    figure; executed here with a real kernel so that it never rots."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(__file__).parent.parent / "experiments" / "analysis.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure was drawn


def test_the_reproduce_script_regenerates_sections_in_its_quick_form(tmp_path):
    """experiments/reproduce.py (docs/results.md) in its --quick form, two cheap sections: each
    gets its report, and --docs receives the figures and the summary table with intervals."""
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "experiments" / "reproduce.py"
    docs = tmp_path / "docs"
    subprocess.run([sys.executable, str(script), "--quick", "--only", "anchoring_vs_vpps",
                    "random_committee_ablation", "--out", str(tmp_path / "out"),
                    "--docs", str(docs)], check=True, capture_output=True, timeout=600)
    for figure in ("anchoring_vs_vpps__anchoring_vs_topology_vpps.png",
                   "random_committee_ablation__byzantine_in_committee_vs_consensus_algorithm.png"):
        _assert_real_png(docs / "figures" / figure)
    table = (docs / "tables" / "random_committee_ablation.md").read_text()
    assert "latency_ms_ci95" in table and "dce-pbft" in table and "random-committee" in table


def test_the_reproduce_script_runs_the_trading_day_and_the_cost_study(tmp_path):
    """The results page's trading-day and cost sections come from the script too: the day's
    three figures, one row per variant whose shares add up to what was sold, and a cost row per
    size with a positive wall time."""
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "experiments" / "reproduce.py"
    docs = tmp_path / "docs"
    subprocess.run([sys.executable, str(script), "--quick", "--only", "trading_day", "cost",
                    "--out", str(tmp_path / "out"), "--docs", str(docs)],
                   check=True, capture_output=True, timeout=600)
    for figure in ("trading_day_energy.png", "trading_day_shares.png", "trading_day_prices.png",
                   "cost.png"):
        _assert_real_png(docs / "figures" / figure)
    day = (docs / "tables" / "trading_day.md").read_text().splitlines()
    variants = [line.split("|")[1:-1] for line in day
                if line.startswith(("| summer", "| winter"))]
    assert [v[0].strip() for v in variants] == [
        "summer, cda", "summer, call auction", "summer, midpoint bids", "winter, cda"]
    for cells in variants:
        sold = float(cells[3])
        parts = [float(c.split()[0]) for c in cells[4:7]]
        assert sold > 0 and abs(sum(parts) - sold) <= 1.5  # each part is rounded to a kWh
    cost = [line.split("|")[1:-1] for line in (docs / "tables" / "cost.md").read_text()
            .splitlines() if line.startswith(("| pbft", "| dce-pbft"))]
    assert {c[0].strip() for c in cost} == {"pbft", "dce-pbft"}
    assert all(float(c[4]) > 0 for c in cost)
