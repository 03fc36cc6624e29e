"""The OSCAR component catalog instance in Elyra's metadata store (schemaspace
``component-catalogs``), and the Jupyter server extension that creates it at server start.

Elyra keeps catalog instances as JSON files under ``<jupyter data dir>/metadata/
component-catalogs/``; its server loads every instance into the palette at start and hears of
instances created later through the ``post_save`` hook of
``elyra.pipeline.component_metadata.ComponentCatalogMetadata``. So the extension creates the
instance through Elyra's own ``MetadataManager`` from its *start* hook, which jupyter_server runs
once every extension (Elyra included) is loaded: Elyra's component cache exists by then and
picks the new catalog up before the first palette request.

``oscar-elyra catalog uninstall`` removes the instance and records, next to it in the user's
Jupyter data dir (``oscar_elyra/catalog.json``), that the extension must not create it again;
``catalog install`` creates the instance and drops that record. (A user-level
``jupyter server extension disable`` would not do: in a virtual environment Jupyter gives the
environment's config, which enables the extension, priority over the user's.)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.elyra import CATALOG_INSTANCE, CATALOG_TYPE, CATEGORY
from oscar_elyra.errors import ConfigError

__all__ = [
    "EXTENSION",
    "created_at_start",
    "ensure_catalog",
    "install_catalog",
    "set_created_at_start",
    "uninstall_catalog",
]

#: the Jupyter server extension's name (the package that holds its entry points)
EXTENSION = "oscar_elyra"

#: metadata of the bundled components' catalog
_WANTED = {
    "description": "OSCAR serverless services: invoke, upload, download, deploy",
    "runtime_type": "KUBEFLOW_PIPELINES",
    "components": "bundled",  # the schema's default, which Elyra fills in
    "categories": [CATEGORY],
}


def _manager():
    try:  # optional heavy dependency (elyra extra)
        from elyra.metadata.manager import MetadataManager
        from elyra.metadata.schemaspaces import ComponentCatalogs
    except ImportError as exc:
        raise ConfigError(
            "Elyra is not installed; install it with: pip install 'oscar-elyra[elyra]'"
        ) from exc
    return MetadataManager(schemaspace=ComponentCatalogs.COMPONENT_CATALOGS_SCHEMASPACE_NAME)


def _existing(manager: Any, name: str) -> Any:
    from elyra.metadata.error import MetadataNotFoundError  # optional heavy dependency (elyra)

    try:
        return manager.get(name)
    except MetadataNotFoundError:
        return None


def _instance(name: str, display_name: str, metadata: dict) -> Any:
    from elyra.metadata.metadata import Metadata  # optional heavy dependency (elyra)

    return Metadata(
        name=name, display_name=display_name, schema_name=CATALOG_TYPE, metadata=dict(metadata)
    )


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
    name = name or CATALOG_INSTANCE
    wanted = metadata or _WANTED
    manager = _manager()
    existing = _existing(manager, name)
    instance = _instance(name, display_name, wanted)
    if existing is None:
        manager.create(name, instance)
        return "created"
    if existing.schema_name != CATALOG_TYPE:
        raise ConfigError(
            f"A component catalog named {name!r} of type {existing.schema_name!r} already exists; "
            "choose another name with --name"
        )
    if existing.metadata == wanted:
        if refresh:
            manager.update(name, instance)
        return "unchanged"
    manager.update(name, instance)
    return "updated"


def ensure_catalog() -> str:
    """Create the default OSCAR catalog instance when there is none; "created" or "present".

    An existing instance of that name (maybe edited in Elyra's UI) is left as it is.
    """
    manager = _manager()
    if _existing(manager, CATALOG_INSTANCE) is not None:
        return "present"
    manager.create(CATALOG_INSTANCE, _instance(CATALOG_INSTANCE, "OSCAR components", _WANTED))
    return "created"


def uninstall_catalog(name: str | None = None) -> bool:
    """Remove the OSCAR catalog instance; returns False when there was none."""
    name = name or CATALOG_INSTANCE
    manager = _manager()
    existing = _existing(manager, name)
    if existing is None:
        return False
    if existing.schema_name != CATALOG_TYPE:
        raise ConfigError(
            f"Component catalog {name!r} is of type {existing.schema_name!r}, "
            f"not {CATALOG_TYPE!r}; not removing it"
        )
    manager.remove(name)
    return True


def _settings_file() -> Path:
    # next to Elyra's metadata (the user's Jupyter data dir), where the catalog instance lives
    return Path(jupyter_data_dir()) / "oscar_elyra" / "catalog.json"


def created_at_start() -> bool:
    """Whether the extension creates the catalog at server start (False after an uninstall)."""
    try:
        data = json.loads(_settings_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return data.get("create_at_start") is not False


def set_created_at_start(enabled: bool) -> None:
    """Let the extension create the catalog at server start, or not (``catalog uninstall``)."""
    path = _settings_file()
    if enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"create_at_start": False})


# ----------------------------------------------------------------------------- server extension


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Nothing to load: the catalog is created in the start hook (after Elyra is loaded)."""
    serverapp.log.debug("oscar_elyra: OSCAR palette extension loaded")


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    """Create the OSCAR catalog instance if missing; never stops the server."""
    if importlib.util.find_spec("elyra") is None:  # a slim install: no pipeline editor to serve
        serverapp.log.debug("oscar_elyra: Elyra is not installed; no OSCAR palette")
        return
    if not created_at_start():
        serverapp.log.info(
            "oscar_elyra: OSCAR palette catalog uninstalled by the user; not created"
        )
        return
    try:
        outcome = ensure_catalog()
    except Exception as exc:  # noqa: BLE001 - a palette problem must not stop Jupyter
        serverapp.log.warning(f"oscar_elyra: could not create the OSCAR palette catalog: {exc}")
        return
    if outcome == "created":
        serverapp.log.info(
            f"oscar_elyra: created component catalog {CATALOG_INSTANCE!r} "
            "(the 'OSCAR' palette category of the Kubeflow Pipelines editor)"
        )
