"""The ``oscar-elyra`` command line (click).

Exit codes: 0 ok, 1 remote failure, 2 bad usage or input.
"""

from __future__ import annotations

import logging
import sys
from importlib import import_module

import click

from oscar_elyra import __version__
from oscar_elyra.commands._common import CliState
from oscar_elyra.errors import OscarError, is_bad_input
from oscar_elyra.redact import install_log_redaction, redact


def exit_code(exc: OscarError) -> int:
    """The CLI's exit code for a library error: 2 bad usage or input, 1 a remote failure."""
    return 2 if is_bad_input(exc) else 1


class _Main(click.Group):
    """Maps library errors to one clear line and the documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OscarError as exc:
            click.echo(f"Error: {redact(str(exc))}", err=True)
            sys.exit(exit_code(exc))
        except FileNotFoundError as exc:
            click.echo(f"Error: file not found: {exc.filename or exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # a local path that cannot be read or written
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"Error: {redact(exc.strerror or str(exc))}{where}", err=True)
            sys.exit(2)
        except RecursionError:
            click.echo("Error: the input is nested too deeply", err=True)
            sys.exit(2)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oscar-elyra")
@click.option("--cluster", metavar="ID", help="Cluster id from ~/.oscar-cli/config.yaml.")
@click.option("--endpoint", metavar="URL", help="OSCAR endpoint (overrides OSCAR_ENDPOINT).")
@click.option(
    "--token",
    metavar="TOKEN",
    help="A service's own token (overrides OSCAR_SERVICE_TOKEN): run, job, map and deepaas "
    "with only --endpoint and this token, without a cluster account.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, cluster, endpoint, token, as_json, quiet, verbose) -> None:
    """Compose and run AI inference pipelines on OSCAR clusters."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:  # urllib3 logs each retry as a warning; the final error says it all
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    install_log_redaction()
    ctx.obj = CliState(
        cluster=cluster, endpoint=endpoint, service_token=token, json=as_json, quiet=quiet
    )


def _register() -> None:
    """Attach each area's commands (one module per area under ``oscar_elyra.commands``)."""
    for module, names in [
        ("local", ["local"]),
        ("cluster", ["cluster", "services", "logs"]),
        ("data", ["job", "map", "put", "get", "ls"]),
        ("buckets", ["buckets", "rm"]),
        ("catalog", ["catalog"]),
        ("kfp", ["kfp"]),
        ("pipeline", ["validate", "describe"]),
        ("run", ["run"]),
        ("deepaas", ["deepaas"]),
        ("palette", ["palette"]),
        ("hub", ["hub"]),
    ]:
        mod = import_module(f"oscar_elyra.commands.{module}")
        for name in names:
            main.add_command(getattr(mod, name))


_register()
