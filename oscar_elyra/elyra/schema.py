"""Metadata schema of the OSCAR component catalog (entry point ``metadata.schemas_providers``)."""

from __future__ import annotations

import copy

from elyra.metadata.schema import SchemasProvider
from elyra.metadata.schemaspaces import ComponentCatalogs

from oscar_elyra.elyra import CATALOG_TYPE, CATEGORY

_SCHEMA: dict = {
    "$schema": "https://raw.githubusercontent.com/elyra-ai/elyra/main/elyra/metadata/schemas/meta-schema.json",
    "$id": f"https://github.com/grycap/oscar-elyra/schemas/{CATALOG_TYPE}.json",
    "title": "OSCAR components",
    "name": CATALOG_TYPE,
    "display_name": "OSCAR components",
    "schemaspace": ComponentCatalogs.COMPONENT_CATALOGS_SCHEMASPACE_NAME,
    "schemaspace_id": ComponentCatalogs.COMPONENT_CATALOGS_SCHEMASPACE_ID,
    "metadata_class_name": "elyra.pipeline.component_metadata.ComponentCatalogMetadata",
    "uihints": {"icon": "", "reference_url": "https://github.com/grycap/oscar"},
    "properties": {
        "schema_name": {
            "title": "Schema Name",
            "description": "The schema associated with this instance",
            "type": "string",
            "const": CATALOG_TYPE,
        },
        "display_name": {
            "title": "Display Name",
            "description": "Display name of this Component Catalog",
            "type": "string",
            "minLength": 1,
        },
        "metadata": {
            "description": "Additional data specific to this metadata",
            "type": "object",
            "properties": {
                "description": {
                    "title": "Description",
                    "description": "Description of this Component Catalog",
                    "type": "string",
                },
                "runtime_type": {
                    "title": "Runtime",
                    "description": "The runtime the OSCAR components run on",
                    "type": "string",
                    "enum": ["KUBEFLOW_PIPELINES"],
                    "default": "KUBEFLOW_PIPELINES",
                    "uihints": {"ui:readonly": True},
                },
                "components": {
                    "title": "Components",
                    "description": "bundled: the OSCAR components of oscar-elyra; user: the "
                    "typed model components made with `oscar-elyra palette add`",
                    "type": "string",
                    "enum": ["bundled", "user"],
                    "default": "bundled",
                },
                "categories": {
                    "title": "Category Names",
                    "description": "Palette categories of the OSCAR components",
                    "type": "array",
                    "items": {"type": "string", "maxLength": 18},
                    "default": [CATEGORY],
                    "uihints": {"category": "Component Categories"},
                },
            },
            "required": ["runtime_type"],
        },
    },
    "required": ["schema_name", "display_name", "metadata"],
}


class OscarCatalogSchemas(SchemasProvider):
    """Provides the ``oscar-catalog`` schema of the ``component-catalogs`` schemaspace."""

    def get_schemas(self) -> list[dict]:
        """The schemas this provider contributes (a copy: Elyra mutates what it loads)."""
        return [copy.deepcopy(_SCHEMA)]
