"""Component catalog connector listing the OSCAR palette components.

Registered as entry point ``elyra.component.catalog_types`` = ``oscar-catalog``. A catalog
instance lists the components bundled with oscar_elyra, or, when its metadata says
``"components": "user"``, the typed model components of the user component catalog
(``oscar-elyra palette add``, see :mod:`oscar_elyra.elyra.user_catalog`). Each entry is
identified by ``{"component-id": "<file>.yaml"}`` (user ones: ``user/<file>.yaml``); only that
key is hashed, so a node's op ``oscar-catalog:<hash>`` is the same in every installation.
"""

from __future__ import annotations

from typing import Any

from elyra.pipeline.catalog_connector import ComponentCatalogConnector, KfpEntryData

from oscar_elyra.elyra import component_files
from oscar_elyra.elyra.user_catalog import USER_PREFIX, component_path, user_component_files


class OscarComponentCatalogConnector(ComponentCatalogConnector):
    """Serves the KFP component YAML files bundled with oscar_elyra, or the user's own."""

    def get_catalog_entries(self, catalog_metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One entry per component file: ``{"component-id": "<file>.yaml"}``."""
        if catalog_metadata.get("components") == "user":
            return [{"component-id": USER_PREFIX + path.name} for path in user_component_files()]
        return [{"component-id": path.name} for path in component_files()]

    def get_entry_data(
        self, catalog_entry_data: dict[str, Any], catalog_metadata: dict[str, Any]
    ) -> KfpEntryData | None:
        """The YAML definition of one entry, or None (logged) when it does not exist."""
        name = str(catalog_entry_data.get("component-id", ""))
        path = component_path(name)
        if path is None:
            self.log.warning(f"OSCAR catalog: no component {name!r}")
            return None
        return KfpEntryData(definition=path.read_text(encoding="utf-8"))

    @classmethod
    def get_hash_keys(cls) -> list[Any]:
        """Only the file name identifies a component, so hashes are portable."""
        return ["component-id"]
