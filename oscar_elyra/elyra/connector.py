"""Component catalog connector listing the OSCAR palette components.

Registered as entry point ``elyra.component.catalog_types`` = ``oscar-catalog``. Each catalog
entry is identified by ``{"component-id": "<file>.yaml"}``; only that key is hashed, so a node's
op ``oscar-catalog:<hash>`` is the same in every installation.
"""

from __future__ import annotations

from typing import Any

from elyra.pipeline.catalog_connector import ComponentCatalogConnector, KfpEntryData

from oscar_elyra.elyra import component_files, components_dir


class OscarComponentCatalogConnector(ComponentCatalogConnector):
    """Serves the KFP component YAML files bundled with oscar_elyra."""

    def get_catalog_entries(self, catalog_metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One entry per bundled component file: ``{"component-id": "<file>.yaml"}``."""
        return [{"component-id": path.name} for path in component_files()]

    def get_entry_data(
        self, catalog_entry_data: dict[str, Any], catalog_metadata: dict[str, Any]
    ) -> KfpEntryData | None:
        """The YAML definition of one entry, or None (logged) when it does not exist."""
        name = str(catalog_entry_data.get("component-id", ""))
        path = components_dir() / name
        if not name or "/" in name or "\\" in name or not path.is_file():
            self.log.warning(f"OSCAR catalog: no component named {name!r} in {components_dir()}")
            return None
        return KfpEntryData(definition=path.read_text(encoding="utf-8"))

    @classmethod
    def get_hash_keys(cls) -> list[Any]:
        """Only the file name identifies a component, so hashes are portable."""
        return ["component-id"]
