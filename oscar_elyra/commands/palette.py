"""``oscar-elyra palette add|ls|rm``: typed palette nodes for DEEPaaS models."""

from __future__ import annotations

import click

from oscar_elyra import deepaas as dp
from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.commands.catalog import install_catalog
from oscar_elyra.commands.cluster import _table
from oscar_elyra.elyra import CATALOG_TYPE
from oscar_elyra.elyra import model_components as mc
from oscar_elyra.elyra.user_catalog import (
    USER_CATALOG_INSTANCE,
    USER_CATEGORY,
    user_components_dir,
)
from oscar_elyra.errors import ConfigError, ValidationError
from oscar_elyra.hub import Hub

HUB_HELP = "OSCAR Hub: a URL or a local folder (default: $OSCAR_HUB, else grycap/oscar-hub)."


def _register() -> str:
    """Show the user catalog in Elyra's palette; a line saying what happened."""
    try:
        outcome = install_catalog(
            USER_CATALOG_INSTANCE,
            display_name="OSCAR models",
            metadata={
                "description": "DEEPaaS models with typed inputs (oscar-elyra palette add)",
                "runtime_type": "KUBEFLOW_PIPELINES",
                "components": "user",
                "categories": [USER_CATEGORY],
            },
            refresh=True,
        )
    except ConfigError as exc:
        return f"({exc}; the component file is ready for when it is)"
    except ImportError as exc:  # pragma: no cover - a broken Elyra installation
        return f"(Elyra could not be loaded: {exc})"
    if outcome == "created":
        return (
            f"Elyra catalog {USER_CATALOG_INSTANCE!r} ({CATALOG_TYPE}) created: reload "
            f"JupyterLab to see the {USER_CATEGORY!r} palette category."
        )
    return f"Elyra's palette ({USER_CATEGORY!r}) is refreshed in a running JupyterLab."


@click.group("palette")
def palette() -> None:
    """Typed palette nodes for DEEPaaS models (the user component catalog).

    \b
    The components live in $OSCAR_ELYRA_COMPONENTS (default: the user data dir's
    oscar-elyra/components); Elyra shows them under 'OSCAR models'.
    """


@palette.command("add")
@click.argument("service")
@click.option(
    "--name", default=None, help="Palette name of the node (default: 'SERVICE (DEEPaaS)')."
)
@click.option(
    "--crate",
    metavar="SLUG",
    default=None,
    help="Read the arguments from this OSCAR Hub crate's metadata, not from the running model.",
)
@click.option("--hub", "location", metavar="URL|DIR", default=None, help=HUB_HELP)
@pass_state
def add(state: CliState, service: str, name: str | None, crate: str | None, location) -> None:
    """Make a typed palette node for the DEEPaaS model served by SERVICE.

    One input per model argument (type, default, required, help), read from the model
    itself ({"help": ""}) or, with --crate, from the hub crate's FormalParameter inputs.
    Running it (Kubeflow Pipelines, or `oscar-elyra run`) calls the model once per input file.
    """
    if crate:
        meta = Hub(location).crate(crate)
        if not meta.arguments:
            raise ValidationError(
                f"crate {crate!r} describes no model arguments (FormalParameter inputs); "
                f"drop --crate to read them from the running service {service!r}"
            )
        args, source = meta.arguments, f"hub crate {crate}"
    else:
        if location:
            raise ValidationError("--hub goes with --crate SLUG")
        args, source = dp.help(service, session=state.session(), refresh=True), "deepaas help"
    comp = mc.write_component(service, args, name=name, source=source)
    note = _register()
    state.emit(
        {**comp.to_dict(), "elyra": note},
        f"Palette node {comp.name!r} written to {comp.path} "
        f"({len(args)} model argument(s): {', '.join(a.name for a in args) or 'none'}).\n"
        f"{note}\nIn a pipeline file its component id is {comp.component_id!r}.",
    )


@palette.command("ls")
@pass_state
def ls(state: CliState) -> None:
    """The typed model nodes of the user catalog."""
    comps = mc.list_components()
    if state.json:
        state.emit([c.to_dict() for c in comps])
        return
    if not comps:
        click.echo(f"no model nodes in {user_components_dir()} (add one with `palette add`)")
        return
    rows = [[c.service, c.name, c.source, ", ".join(c.arguments)] for c in comps]
    click.echo(_table(rows, ["SERVICE", "NODE", "ARGUMENTS FROM", "MODEL ARGUMENTS"]))


@palette.command("rm")
@click.argument("service")
@pass_state
def rm(state: CliState, service: str) -> None:
    """Remove the model node of SERVICE from the palette."""
    path = mc.remove(service)
    note = _register()
    state.emit({"service": service, "removed": str(path), "elyra": note}, f"removed {path}\n{note}")
