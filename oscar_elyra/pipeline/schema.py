"""The shape of an Elyra 4.1 ``.pipeline`` document (pipeline-flow 3.0), checked with jsonschema.

Only what oscar-elyra reads is constrained; unknown keys are allowed (the editor adds its own).
A document that does not match gets one line naming where (``pipelines[0].nodes[2].inputs``)
and what is wrong, never a traceback.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from oscar_elyra._paths import MAX_DEPTH, nesting_depth
from oscar_elyra.errors import ValidationError

__all__ = ["check_document", "check_runtime", "RUNTIMES", "RUNTIME_TYPES"]

#: runtimes the runner executes: Generic (Elyra's local runtime) and Kubeflow Pipelines
RUNTIMES = ("Generic", "Kubeflow Pipelines")
RUNTIME_TYPES = ("LOCAL", "KUBEFLOW_PIPELINES")

_STR = {"type": "string"}
_STRINGS = {"type": "array", "items": _STR}
_ENV_VARS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "env_var": _STR,
            "value": {"type": ["string", "number", "boolean", "null"]},
        },
    },
}
_PORT = {
    "type": "object",
    "properties": {
        "id": _STR,
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": _STR, "node_id_ref": _STR, "port_id_ref": _STR},
            },
        },
    },
}
_NODE = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {
        "id": _STR,
        "type": _STR,
        "op": _STR,
        "inputs": {"type": "array", "items": _PORT},
        "outputs": {"type": "array", "items": {"type": "object"}},
        "subflow_ref": {"type": "object", "properties": {"pipeline_id_ref": _STR}},
        "app_data": {
            "type": "object",
            "properties": {
                "label": _STR,
                "component_source": {"type": ["string", "object"]},
                "ui_data": {"type": "object", "properties": {"label": _STR}},
                "component_parameters": {
                    "type": "object",
                    "properties": {
                        "filename": _STR,
                        "runtime_image": _STR,
                        "env_vars": _ENV_VARS,
                        "dependencies": _STRINGS,
                        "outputs": _STRINGS,
                        "include_subdirectories": {"type": "boolean"},
                        "pipeline_parameters": _STRINGS,
                    },
                },
            },
        },
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pipelines"],
    "properties": {
        "doc_type": _STR,
        "version": {"type": ["string", "number"]},
        "primary_pipeline": _STR,
        "pipelines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": _STR,
                    "nodes": {"type": "array", "items": _NODE},
                    "app_data": {
                        "type": "object",
                        "properties": {
                            "version": {"type": ["number", "string"]},
                            "runtime": _STR,
                            "runtime_type": _STR,
                            "properties": {
                                "type": "object",
                                "properties": {
                                    "name": _STR,
                                    "runtime": _STR,
                                    "description": _STR,
                                    "pipeline_defaults": {
                                        "type": "object",
                                        "properties": {"env_vars": _ENV_VARS},
                                    },
                                    "pipeline_parameters": {
                                        "type": "array",
                                        "items": {"type": "object"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def schema_error(schema: dict, doc: Any) -> Any:
    """The most relevant error of ``doc`` against the JSON ``schema`` (None when it is valid)."""
    import_jsonschema()
    # imported here, not at the top: see import_jsonschema
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    return best_match(Draft7Validator(schema).iter_errors(doc))


def import_jsonschema() -> None:
    """Import jsonschema, the first time without its optional rfc3987-syntax.

    With rfc3987-syntax installed, importing jsonschema compiles some forty grammars for its
    ``iri`` format checkers (about 1.2 s of CPU, several seconds of every ``oscar-elyra run``
    on a busy machine). No schema here checks formats, so a process that has imported
    neither gets jsonschema as installed without that package: the same validation, only the
    ``iri`` and ``iri-reference`` format checkers are not registered in it. A process that
    imported either one first (a Jupyter server) keeps its jsonschema as it is.
    """
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment] # "not installed"
    try:
        import jsonschema  # noqa: F401 - optional heavy dependency, imported once
    finally:
        del sys.modules["rfc3987_syntax"]


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def check_document(doc: Any, source: str) -> None:
    """ValidationError (one line) unless ``doc`` has the shape of an Elyra 4.1 pipeline."""
    if nesting_depth(doc, MAX_DEPTH) > MAX_DEPTH:
        raise ValidationError(
            f"{source} is nested more than {MAX_DEPTH} levels deep: not a pipeline"
        )
    error = schema_error(SCHEMA, doc)
    if error is not None:
        raise ValidationError(
            f"{source}: {_where(error.path)}: {error.message}; "
            "open and save it in the pipeline editor, or fix the file"
        )
    for pipeline in doc["pipelines"]:
        app = pipeline.get("app_data") or {}
        version = app.get("version")
        if isinstance(version, (int, float)) and not math.isfinite(version):
            raise ValidationError(f"{source}: pipeline version {version!r} is not a number")
        if isinstance(version, str):
            try:
                if not math.isfinite(float(version)):
                    raise ValueError
            except ValueError:
                raise ValidationError(
                    f"{source}: pipeline version {version!r} is not a number"
                ) from None


def check_runtime(runtime: str, runtime_type: str, source: str) -> None:
    """ValidationError for a runtime the runner cannot run (Airflow, unknown names)."""
    if runtime and runtime not in RUNTIMES:
        raise ValidationError(
            f"{source}: runtime {runtime!r} is not supported; oscar-elyra runs "
            f"{' and '.join(RUNTIMES)} pipelines (use `elyra-pipeline submit` for others)"
        )
    if runtime_type and runtime_type not in RUNTIME_TYPES:
        raise ValidationError(
            f"{source}: runtime type {runtime_type!r} is not supported; oscar-elyra runs "
            f"{', '.join(RUNTIME_TYPES)} pipelines (use `elyra-pipeline submit` for others)"
        )
