"""The ``mlts`` command line. Every user error is printed as ``error: <subject>: <why>`` with
exit status 2 -- never a traceback."""

from __future__ import annotations

import sys

import click

from mlts_ray import __version__
from mlts_ray.config import load_config, to_toml
from mlts_ray.errors import MltsError

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


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mlts", standalone_mode=False)
    except MltsError as err:
        for subject, why in getattr(err, "problems", [(err.subject, err.why)]):
            click.echo(f"error: {subject}: {why}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
