"""The ``mlts`` command line. Every user error is printed as ``error: <subject>: <why>`` with
exit status 2 -- never a traceback."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from mlts_ray import __version__
from mlts_ray.config import load_config, to_toml
from mlts_ray.errors import ContentError, MltsError, RunError

SET_HELP = "Override one config key, e.g. --set topology.vpps=4 (repeatable)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlts")
def cli() -> None:
    """Simulate MLTS: multi-chain energy trading between VPPs under PBFT and DCE-PBFT."""


@cli.command("config")
@click.argument("config_file")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def config_cmd(config_file: str, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved configuration (every default filled in) as TOML."""
    click.echo(to_toml(load_config(config_file, overrides)), nl=False)


def _experiment_options(command):
    """CONFIG_FILE, --out, --runtime, --set and --address: what `run` and `sweep` share."""
    for option in reversed([
        click.argument("config_file"),
        click.option("--out", default="runs", show_default=True,
                     help="Where runs go: a directory or a pyarrow filesystem URI "
                          "(s3://bucket/runs)."),
        click.option("--runtime", type=click.Choice(["ray", "local"]), default=None,
                     help="Overrides experiment.runtime."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP),
        click.option("--address", default=None,
                     help="Ray cluster to join (default: RAY_ADDRESS, else start Ray locally)."),
        click.option("--force", is_flag=True,
                     help="Run even if the estimated memory or actor count exceeds the machine."),
    ]):
        command = option(command)
    return command


def _load(config_file: str, overrides: tuple[str, ...], runtime: str | None):
    if runtime:
        overrides = (*overrides, f"experiment.runtime={runtime}")
    return load_config(config_file, overrides)


@cli.command("run")
@_experiment_options
@click.option("--quiet", is_flag=True, help="No progress bar or summary; only the run directory.")
@click.option("--report", "make_report", is_flag=True,
              help="Also make the run's figures and report (their paths are printed).")
@click.option("--resume", default=None, metavar="RUN_DIR",
              help="Continue an interrupted run (same config; its tables end up identical).")
def run_cmd(config_file: str, out: str, runtime: str | None, overrides: tuple[str, ...],
            address: str | None, force: bool, quiet: bool, make_report: bool,
            resume: str | None) -> None:
    """Run one experiment; prints its run directory as the last line."""
    from mlts_ray.runtime.driver import Interrupted, StorageFailed

    cfg = _load(config_file, overrides, runtime)
    if cfg.sweep:  # a sweep config run as one run: say which run this is, never silently
        click.echo(f"note: `mlts run` runs the config without its [sweep] ({len(cfg.sweep)} "
                   "swept keys); `mlts sweep` runs every point", err=True)
    from mlts_ray.population import no_ops

    for key, why in no_ops(cfg):  # settings that would change nothing, said before the run
        click.echo(f"note: {key}: {why}", err=True)
    run = _runner(cfg.experiment.runtime, address, resume)
    started = time.perf_counter()

    def resume_hint(run_dir: str) -> str:
        return "resume with: " + _resume_command(config_file, overrides, runtime, address, run_dir,
                                                 force)

    try:
        with _runtime_session(cfg.experiment.runtime, address):
            _preflight([cfg], cfg.experiment.runtime, force, quiet)
            if quiet:
                run_dir = run(cfg, out)
            else:
                from rich.progress import Progress

                with Progress(transient=True, console=_stderr_console()) as bar:
                    task = bar.add_task(f"{cfg.experiment.name}: rounds",
                                        total=cfg.experiment.rounds)
                    run_dir = run(cfg, out, lambda done, _: bar.update(task, completed=done))
        if not quiet:
            _print_summary(run_dir, time.perf_counter() - started)
    except Interrupted as err:
        click.echo(f"{err.why}; every finished round is in {err.subject}", err=True)
        click.echo(resume_hint(err.subject), err=True)
        raise SystemExit(130) from None
    except StorageFailed as err:
        click.echo(f"error: {err.subject}: {err.why}", err=True)
        click.echo(resume_hint(err.subject), err=True)
        raise SystemExit(2) from None
    if make_report:
        _echo_report(run_dir)
    click.echo(str(run_dir))


def _resume_command(config_file: str, overrides: tuple[str, ...], runtime: str | None,
                    address: str | None, run_dir: str, force: bool = False) -> str:
    """The `mlts run` command that continues ``run_dir``, shell-quoted, with every flag that
    made its config (a resume with another config is refused)."""
    import shlex

    args = ["mlts", "run", config_file]
    for item in overrides:
        args += ["--set", item]
    if runtime:
        args += ["--runtime", runtime]
    if address:
        args += ["--address", address]
    if force:
        args.append("--force")
    return shlex.join([*args, "--resume", str(run_dir)])


def _writable_file(option: str, path: str | None) -> None:
    """Refuse an output file that cannot be written before any work is done."""
    if path is None:
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise RunError(option, f"{path} is a directory, not a file")
    if not parent.is_dir():
        raise RunError(option, f"{path}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise RunError(option, f"{path}: not writable")


def _write_output(option: str, path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise RunError(option, f"cannot write {path}: {err.strerror or err}") from None


def _runtime_session(runtime: str, address: str | None):
    """On Ray: join or start it, with stdout reserved for mlts's own results while it runs."""
    if runtime != "ray":
        from contextlib import nullcontext

        return nullcontext()
    from contextlib import contextmanager

    from mlts_ray.runtime.ray.cluster import connect, stdout_kept_for_results

    @contextmanager
    def session():
        with stdout_kept_for_results():
            connect(address)
            yield

    return session()


def _preflight(cfgs, runtime: str, force: bool, quiet: bool) -> None:
    """Estimate what the run (every point of a sweep) takes and refuse what cannot fit."""
    from mlts_ray.runtime import budget

    if runtime == "ray":
        from mlts_ray.runtime.ray.cluster import cluster_machine

        machine = cluster_machine()
    else:
        machine = budget.this_machine()
    est = budget.check_all(cfgs, runtime, machine, force)
    if not quiet and (est.seconds > 60 or est.memory > 2 * budget.GIB or force):
        click.echo(f"estimate: {est.describe()} on {machine.where}", err=True)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _runner(runtime: str, address: str | None, resume: str | None = None):
    """The runtime's ``run(cfg, out, progress)``; heavy imports only when running."""
    if runtime == "ray":
        from mlts_ray.runtime.ray.run import run_ray

        return lambda cfg, out, progress=None: run_ray(cfg, out, address, progress, resume=resume)
    from mlts_ray.runtime.local import run_local

    return lambda cfg, out, progress=None: run_local(cfg, out, progress, resume)


def _echo_report(target) -> None:
    from mlts_ray.analysis.report import report

    path = report(target)
    click.echo(f"report: {path}")
    for figure in sorted(path.parent.glob("*.png")):
        click.echo(f"figure: {figure}")


@cli.command("sweep")
@_experiment_options
@click.option("--report/--no-report", "make_report", default=True, show_default=True,
              help="Make the sweep's figures and report at the end.")
@click.option("--resume", default=None, metavar="SWEEP_DIR",
              help="Continue an interrupted sweep (same config): finished points are kept.")
def sweep_cmd(config_file: str, out: str, runtime: str | None, overrides: tuple[str, ...],
              address: str | None, force: bool, make_report: bool, resume: str | None) -> None:
    """One run per point of the config's [sweep] (cartesian product) and a combined table;
    prints the sweep directory as the last line."""
    from rich.progress import Progress

    from mlts_ray.runtime.driver import Interrupted
    from mlts_ray.runtime.sweep import run_sweep, sweep_configs

    cfg = _load(config_file, overrides, runtime)

    def run_one(point_cfg, where, resume=None):
        return _runner(cfg.experiment.runtime, address, resume)(point_cfg, where)

    try:
        with _runtime_session(cfg.experiment.runtime, address):
            _preflight(sweep_configs(cfg), cfg.experiment.runtime, force, quiet=False)
            with Progress(transient=True, console=_stderr_console()) as bar:
                task = bar.add_task(f"{cfg.experiment.name}: points", total=None)
                sweep_dir = run_sweep(
                    cfg, out, run_one,
                    lambda done, total: bar.update(task, completed=done, total=total),
                    resume=resume)
    except Interrupted as err:
        click.echo(f"{err.why}; every finished point is in {err.subject}", err=True)
        hint = _resume_command(config_file, overrides, runtime, address, err.subject, force)
        click.echo("resume with: " + hint.replace("mlts run ", "mlts sweep ", 1), err=True)
        raise SystemExit(130) from None
    if make_report:
        try:
            _echo_report(sweep_dir)
        except MltsError as err:  # the runs are valuable: never hide where they are
            click.echo(f"error: {err.subject}: {err.why} (the sweep itself is complete)", err=True)
    click.echo(sweep_dir)


@cli.command("report")
@click.argument("target")
def report_cmd(target: str) -> None:
    """Figures (PNG) and a Markdown report for a run or a sweep directory."""
    _echo_report(target)


def _print_summary(run_dir: Path, wall_s: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from mlts_ray.analysis.load import load_table
    from mlts_ray.analysis.summary import consensus_summary

    df = consensus_summary(load_table(run_dir, "consensus"))
    table = Table(title=f"{str(run_dir).rstrip('/').rsplit('/', 1)[-1]}: {wall_s:.1f} s wall")
    for col in df.columns:
        table.add_column(col, justify="left" if df[col].dtype == object else "right")
    for row in df.itertuples(index=False):
        table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    Console(width=max(150, Console().width)).print(table)  # 14 columns, none cut


@cli.command("safety")
@click.option("--schedules", default=500, show_default=True, type=click.IntRange(1, 10**7),
              help="Random schedules at f faulty members, and as many at f+1.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1))
@click.option("--json", "json_file", default=None, help="Also write the tallies to this file.")
def safety_cmd(schedules: int, seed: int, json_file: str | None) -> None:
    """Safety campaign: seeded random schedules (Byzantine mixes at f and f+1, loss,
    partitions, delays); exits 1 if any schedule with at most f faulty broke safety."""
    import json

    from mlts_ray.runtime.campaign import campaign

    _writable_file("--json", json_file)
    result = campaign(schedules, seed)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if json_file:
        _write_output("--json", json_file, text)
    if result["f"]["safety_violations"] or result["f"]["checker_wrong"] or result["f+1"]["checker_wrong"]:
        raise SystemExit(1)


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes: about a minute.")
@click.option("--json", "json_file", default=None, help="Also write the figures to this file.")
@click.option("--no-ray", is_flag=True, help="Skip the Ray packed-over-local figure.")
@click.option("--large", is_flag=True,
              help="Also a 1,000 VPP x 100 node round's time and peak memory (a few minutes).")
def bench_cmd(quick: bool, json_file: str | None, no_ray: bool, large: bool) -> None:
    """Performance figures (docs/architecture.md section 11), as ratios measured in this one run."""
    import json

    from mlts_ray.runtime.bench import bench

    _writable_file("--json", json_file)
    result = bench(quick=quick, ray_packed=not no_ray, large=large,
                   say=lambda line: click.echo(line, err=True))
    text = json.dumps(result, indent=2)
    click.echo(text)
    if json_file:
        _write_output("--json", json_file, text)


@cli.command("verify")
@click.argument("run_dir")
@click.option("--replay", is_flag=True,
              help="Also re-run the simulation (costs a local run) and compare every table.")
def verify_cmd(run_dir: str, replay: bool) -> None:
    """Re-check a stored run: the manifest bound to its run id, every table file bound by its
    digest, every signature, hash link, Merkle root and anchor, and the tables derived from the
    chain (settlement, balances, statuses, anchors, consensus facts); exit 1 naming the first
    bad table, round and row, block, trade or manifest key."""
    from mlts_ray.analysis.verify import verify_run

    click.echo(verify_run(run_dir, replay=replay).summary())


@cli.command("query")
@click.argument("run_dir")
@click.option("--tx", "tx_id", required=True, help="Trade id (the trades table's tx_id).")
def query_cmd(run_dir: str, tx_id: str) -> None:
    """The anchoring path of one trade (side chain, collaborative block, main block) with
    both Merkle proofs, checked."""
    import json

    from mlts_ray.analysis.query import query_trade

    click.echo(json.dumps(query_trade(run_dir, tx_id), indent=2))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mlts", standalone_mode=False)
    except SystemExit as stop:  # an interrupted run exits 130 after saying how to resume
        return int(stop.code or 0)
    except MltsError as err:
        for subject, why in getattr(err, "problems", [(err.subject, err.why)]):
            click.echo(f"error: {subject}: {why}", err=True)
        if err.__cause__ is not None and os.environ.get("MLTS_DEBUG"):
            raise
        # what verify or query found in a run exits 1; usage and input errors exit 2
        return 1 if isinstance(err, ContentError) else 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
