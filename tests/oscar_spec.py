"""OSCAR REST API spec (Swagger 2.0 of OSCAR v4.1.2), the contract the embedded cluster follows.

The spec is OSCAR's own file, vendored in ``tests/reference/oscar-api-v4.1.2.yaml``
(``$OSCAR_API_SPEC`` points elsewhere).

``validator(ref)`` builds a jsonschema validator for a definition (``"types.Service"``) or
any schema (``{"type": "array", "items": {"$ref": "#/definitions/types.Service"}}``).
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["SPEC_PATH", "load_spec", "validator"]

SPEC_PATH = Path(
    os.environ.get("OSCAR_API_SPEC")
    or Path(__file__).resolve().parent / "reference" / "oscar-api-v4.1.2.yaml"
)


@lru_cache(maxsize=1)
def load_spec() -> dict:
    """The parsed Swagger document."""
    import yaml

    if not SPEC_PATH.is_file():
        raise FileNotFoundError(
            f"OSCAR API spec not found at {SPEC_PATH}: set OSCAR_API_SPEC to oscar-api-v4.1.2.yaml"
        )
    with open(SPEC_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _close(schema: Any) -> Any:
    """Forbid properties a definition doesn't declare (Swagger leaves objects open)."""
    if isinstance(schema, dict):
        schema = {k: _close(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_close(v) for v in schema]
    return schema


def validator(ref: str | dict, strict: bool = True):
    """A ``jsonschema.Draft4Validator`` for a definition or schema (``strict``: closed objects)."""
    import jsonschema

    definitions = copy.deepcopy(load_spec()["definitions"])
    if strict:
        definitions = _close(definitions)
    schema = {"$ref": f"#/definitions/{ref}"} if isinstance(ref, str) else dict(ref)
    schema["definitions"] = definitions
    return jsonschema.Draft4Validator(schema)
