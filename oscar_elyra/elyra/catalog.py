"""The OSCAR component catalog instance in Elyra's metadata store (schemaspace
``component-catalogs``), and the Jupyter server extension that creates it at server start.

Elyra keeps catalog instances as JSON files under ``<jupyter data dir>/metadata/
component-catalogs/``; its server loads every instance into the palette at start and hears of
instances created later through the ``post_save`` hook of
``elyra.pipeline.component_metadata.ComponentCatalogMetadata``. So the extension creates the
instance through Elyra's own ``MetadataManager`` from its *start* hook, which jupyter_server runs
once every extension (Elyra included) is loaded: Elyra's component cache exists by then and
picks the new catalog up before the first palette request.

``oscar-elyra catalog uninstall`` removes the instance and disables the extension for the user
(``jupyter_server_config.d/oscar_elyra.json`` in the user's Jupyter config dir), so the palette
stays away; ``catalog install`` creates the instance and enables the extension again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.elyra import CATALOG_INSTANCE, CATALOG_TYPE, CATEGORY
from oscar_elyra.errors import ConfigError

__all__ = [
    "EXTENSION",
    "ensure_catalog",
    "extension_enabled_for_user",
    "install_catalog",
    "set_extension_for_user",
    "uninstall_catalog",
]

#: the Jupyter server extension's name (the package that holds its entry points)
EXTENSION = "oscar_elyra"

_WANTED = {
    "description": "OSCAR serverless services: invoke, upload, download, deploy",
    "runtime_type": "KUBEFLOW_PIPELINES",
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


def _instance(name: str) -> Any:
    from elyra.metadata.metadata import Metadata  # optional heavy dependency (elyra)

    return Metadata(
        name=name,
        display_name="OSCAR components",
        schema_name=CATALOG_TYPE,
        metadata=dict(_WANTED),
    )


def install_catalog(name: str | None = None) -> str:
    """Create or refresh the OSCAR catalog instance; returns "created", "updated" or "unchanged"."""
    name = name or CATALOG_INSTANCE
    manager = _manager()
    existing = _existing(manager, name)
    if existing is None:
        manager.create(name, _instance(name))
        return "created"
    if existing.schema_name != CATALOG_TYPE:
        raise ConfigError(
            f"A component catalog named {name!r} of type {existing.schema_name!r} already exists; "
            "choose another name with --name"
        )
    if existing.metadata == _WANTED:
        return "unchanged"
    manager.update(name, _instance(name))
    return "updated"


def ensure_catalog() -> str:
    """Create the default OSCAR catalog instance when there is none; "created" or "present".

    An existing instance of that name (maybe edited in Elyra's UI) is left as it is.
    """
    manager = _manager()
    if _existing(manager, CATALOG_INSTANCE) is not None:
        return "present"
    manager.create(CATALOG_INSTANCE, _instance(CATALOG_INSTANCE))
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


def _user_extension_file() -> Path:
    return Path(jupyter_config_dir()) / "jupyter_server_config.d" / f"{EXTENSION}.json"


def extension_enabled_for_user() -> bool | None:
    """What the user's Jupyter config says about the extension: True, False or None (nothing)."""
    path = _user_extension_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("ServerApp", {}).get("jpserver_extensions", {}).get(EXTENSION)
    return value if isinstance(value, bool) else None


def set_extension_for_user(enabled: bool) -> Path:
    """Enable or disable the extension in the user's Jupyter config (the file jupyter_server's
    ``jupyter server extension enable|disable --user`` writes); returns that file."""
    path = _user_extension_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        data = {}
    data.setdefault("ServerApp", {}).setdefault("jpserver_extensions", {})[EXTENSION] = enabled
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    return path


# ----------------------------------------------------------------------------- server extension


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Nothing to load: the catalog is created in the start hook (after Elyra is loaded)."""
    serverapp.log.debug("oscar_elyra: OSCAR palette extension loaded")


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    """Create the OSCAR catalog instance if missing; never stops the server."""
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
