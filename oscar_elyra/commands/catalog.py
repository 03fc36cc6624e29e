"""``oscar-elyra catalog install|uninstall``: the OSCAR palette in Elyra's metadata store."""

from __future__ import annotations

import click

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.elyra import CATALOG_INSTANCE, CATALOG_TYPE, CATEGORY
from oscar_elyra.errors import ConfigError


def _manager():
    try:  # optional heavy dependency (elyra extra)
        from elyra.metadata.manager import MetadataManager
        from elyra.metadata.schemaspaces import ComponentCatalogs
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "Elyra is not installed; install it with: pip install 'oscar-elyra[elyra]'"
        ) from exc
    return MetadataManager(schemaspace=ComponentCatalogs.COMPONENT_CATALOGS_SCHEMASPACE_NAME)


def install_catalog(
    name: str | None = None,
    *,
    display_name: str = "OSCAR components",
    metadata: dict | None = None,
    refresh: bool = False,
) -> str:
    """Create or refresh the OSCAR catalog instance; returns "created", "updated" or "unchanged".

    ``metadata`` replaces the bundled components' (the user catalog of ``palette add``
    passes its own); with ``refresh`` an unchanged instance is saved again, which tells a
    running JupyterLab to re-read its components (Elyra's component cache manifest).
    """
    # optional heavy dependency (elyra extra)
    from elyra.metadata.error import MetadataNotFoundError
    from elyra.metadata.metadata import Metadata

    name = name or CATALOG_INSTANCE
    manager = _manager()
    wanted = metadata or {
        "description": "OSCAR serverless services: invoke, upload, download, deploy",
        "runtime_type": "KUBEFLOW_PIPELINES",
        "components": "bundled",  # the schema's default, which Elyra fills in
        "categories": [CATEGORY],
    }
    try:
        existing = manager.get(name)
    except MetadataNotFoundError:
        existing = None
    instance = Metadata(
        name=name, display_name=display_name, schema_name=CATALOG_TYPE, metadata=wanted
    )
    if existing is None:
        manager.create(name, instance)
        return "created"
    if existing.schema_name == CATALOG_TYPE and existing.metadata == wanted:
        if refresh:
            manager.update(name, instance)
        return "unchanged"
    if existing.schema_name != CATALOG_TYPE:
        raise ConfigError(
            f"A component catalog named {name!r} of type {existing.schema_name!r} already exists; "
            "choose another name with --name"
        )
    manager.update(name, instance)
    return "updated"


def uninstall_catalog(name: str | None = None) -> bool:
    """Remove the OSCAR catalog instance; returns False when there was none."""
    from elyra.metadata.error import MetadataNotFoundError  # optional heavy dependency (elyra)

    name = name or CATALOG_INSTANCE
    manager = _manager()
    try:
        existing = manager.get(name)
    except MetadataNotFoundError:
        return False
    if existing.schema_name != CATALOG_TYPE:
        raise ConfigError(
            f"Component catalog {name!r} is of type {existing.schema_name!r}, "
            f"not {CATALOG_TYPE!r}; "
            "not removing it"
        )
    manager.remove(name)
    return True


@click.group("catalog")
def catalog() -> None:
    """Show the OSCAR components in Elyra's pipeline editor palette."""


@catalog.command("install")
@click.option("--name", default=None, help="Catalog instance name (default: oscar-components).")
@pass_state
def install(state: CliState, name: str | None) -> None:
    """Register the OSCAR component catalog (idempotent); reload JupyterLab to see it."""
    outcome = install_catalog(name)
    state.emit(
        {"catalog": name or "oscar-components", "result": outcome},
        f"OSCAR component catalog {outcome}; "
        "reload JupyterLab to see the 'OSCAR' palette category.",
    )


@catalog.command("uninstall")
@click.option("--name", default=None, help="Catalog instance name (default: oscar-components).")
@pass_state
def uninstall(state: CliState, name: str | None) -> None:
    """Remove the OSCAR component catalog (no error when it is not installed)."""
    removed = uninstall_catalog(name)
    state.emit(
        {"catalog": name or "oscar-components", "removed": removed},
        "OSCAR component catalog removed."
        if removed
        else "OSCAR component catalog was not installed.",
    )
