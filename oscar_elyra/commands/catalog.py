"""``oscar-elyra catalog install|uninstall``: the OSCAR palette in Elyra's metadata store.

The Jupyter server extension of the package creates the catalog when Jupyter starts; these
commands are for explicit control (see :mod:`oscar_elyra.elyra.catalog`).
"""

from __future__ import annotations

import click

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.elyra import CATALOG_INSTANCE
from oscar_elyra.elyra.catalog import install_catalog, set_created_at_start, uninstall_catalog


@click.group("catalog")
def catalog() -> None:
    """Show the OSCAR components in Elyra's pipeline editor palette."""


@catalog.command("install")
@click.option("--name", default=None, help="Catalog instance name (default: oscar-components).")
@pass_state
def install(state: CliState, name: str | None) -> None:
    """Register the OSCAR component catalog (idempotent); reload JupyterLab to see it."""
    outcome = install_catalog(name)
    if not name:
        set_created_at_start(True)  # undo an earlier `catalog uninstall`
    state.emit(
        {"catalog": name or CATALOG_INSTANCE, "result": outcome},
        f"OSCAR component catalog {outcome}; reload JupyterLab to see the 'OSCAR' category "
        "in the palette of the Kubeflow Pipelines (and Airflow) pipeline editors.",
    )


@catalog.command("uninstall")
@click.option("--name", default=None, help="Catalog instance name (default: oscar-components).")
@pass_state
def uninstall(state: CliState, name: str | None) -> None:
    """Remove the OSCAR component catalog (no error when it is not installed).

    Without --name this also stops Jupyter from creating it again at start
    (`oscar-elyra catalog install` undoes that).
    """
    removed = uninstall_catalog(name)
    human = "OSCAR component catalog " + ("removed." if removed else "was not installed.")
    if not name:
        set_created_at_start(False)
        human += " Jupyter will not create it again at start."
    state.emit({"catalog": name or CATALOG_INSTANCE, "removed": removed}, human)
