"""Write Elyra 4.1 ``.pipeline`` files from code (tests, benchmarks, generated pipelines).

The JSON is what the pipeline editor saves (pipeline-flow 3.0, app_data version 8), so
``elyra-pipeline run`` accepts the generic pipelines built here.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import nbformat

from oscar_elyra.elyra import CATALOG_TYPE
from oscar_elyra.pipeline.model import GENERIC_OPS, PIPELINE_VERSION

_OPS = {kind: op for op, kind in GENERIC_OPS.items()}
_PORT_UI = {"cardinality": {"min": 0, "max": -1}}


def node(
    label: str,
    filename: str | None = None,
    *,
    kind: str | None = None,
    parents: list[dict[str, Any]] | tuple = (),
    env: dict[str, str] | None = None,
    outputs: list[str] | None = None,
    dependencies: list[str] | None = None,
    parameters: list[str] | None = None,
    component: str | None = None,
    inputs: dict[str, Any] | None = None,
    op: str | None = None,
    node_id: str | None = None,
) -> dict[str, Any]:
    """A node dict. Generic: ``filename`` (kind from its extension); palette: ``component``
    (a YAML file name in the OSCAR catalog) with ``inputs`` ({name: value} or
    ``("from", upstream_node, output)`` / ``("param", name)``)."""
    nid = node_id or str(uuid.uuid4())
    if component:
        params: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, tuple) and value[0] == "from":
                params[name] = {
                    "widget": "inputpath",
                    "value": {"value": value[1]["id"], "option": f"output_{value[2]}"},
                }
            elif isinstance(value, tuple) and value[0] == "param":
                params[name] = {"widget": "parameter", "value": value[1]}
            else:
                widget = (
                    "boolean"
                    if isinstance(value, bool)
                    else ("number" if isinstance(value, (int, float)) else "string")
                )
                params[name] = {"widget": widget, "value": value}
        source = {"catalog_type": CATALOG_TYPE, "component_ref": {"component-id": component}}
        app = {
            "label": "",
            "component_parameters": params,
            "component_source": json.dumps(source),
        }
        op = op or f"{CATALOG_TYPE}:{uuid.uuid5(uuid.NAMESPACE_URL, component).hex[:12]}"
    else:
        if kind is None and filename:
            ext = Path(filename).suffix.lower()
            kind = {".ipynb": "notebook", ".py": "python", ".r": "r"}.get(ext, "python")
        app = {
            "label": label,
            "component_parameters": {
                "filename": filename,
                "runtime_image": "continuumio/anaconda3:2024.10-1",
                "env_vars": [{"env_var": k, "value": v} for k, v in (env or {}).items()],
                "include_subdirectories": False,
                "outputs": list(outputs or []),
                "dependencies": list(dependencies or []),
                "pipeline_parameters": list(parameters or []),
            },
        }
        op = op or _OPS[kind or "python"]
    app["ui_data"] = {"label": label, "x_pos": 0, "y_pos": 0}
    links = [
        {"id": str(uuid.uuid4()), "node_id_ref": p["id"], "port_id_ref": "outPort"} for p in parents
    ]
    return {
        "id": nid,
        "type": "execution_node",
        "op": op,
        "app_data": app,
        "inputs": [
            {
                "id": "inPort",
                "app_data": {"ui_data": {**_PORT_UI, "label": "Input Port"}},
                "links": links,
            }
        ],
        "outputs": [
            {"id": "outPort", "app_data": {"ui_data": {**_PORT_UI, "label": "Output Port"}}}
        ],
    }


def pipeline(
    nodes: list[dict[str, Any]],
    *,
    name: str = "pipeline",
    parameters: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    version: int = PIPELINE_VERSION,
) -> dict[str, Any]:
    """The pipeline document. ``parameters``: ``{"name", "type", "value", "required"}`` dicts."""
    props: dict[str, Any] = {"name": name, "runtime": "Generic"}
    if env:
        props["pipeline_defaults"] = {
            "env_vars": [{"env_var": k, "value": v} for k, v in env.items()]
        }
    if parameters:
        props["pipeline_parameters"] = [
            {
                "name": p["name"],
                "description": p.get("description", ""),
                "default_value": {"type": p.get("type", "String"), "value": p.get("value", "")},
                "required": bool(p.get("required", False)),
            }
            for p in parameters
        ]
    pid = str(uuid.uuid4())
    return {
        "doc_type": "pipeline",
        "version": "3.0",
        "json_schema": "http://api.dataplatform.ibm.com/schemas/common-pipeline/pipeline-flow/"
        "pipeline-flow-v3-schema.json",
        "id": str(uuid.uuid4()),
        "primary_pipeline": pid,
        "pipelines": [
            {
                "id": pid,
                "nodes": nodes,
                "app_data": {"ui_data": {"comments": []}, "version": version, "properties": props},
                "runtime_ref": "",
            }
        ],
        "schemas": [],
    }


def write_pipeline(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as a ``.pipeline`` file."""
    p = Path(path)
    p.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return p


def write_notebook(path: str | Path, *cells: str, kernel: str = "python3") -> Path:
    """A notebook with one code cell per string in ``cells``."""

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    p = Path(path)
    nbformat.write(nb, str(p))
    return p
