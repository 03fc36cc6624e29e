"""What a pipeline holds: nodes, the OSCAR services they use, inputs and parameters."""

from __future__ import annotations

from typing import Any

from oscar_elyra.errors import ValidationError
from oscar_elyra.pipeline.kfp_spec import input_setting, load_component
from oscar_elyra.pipeline.model import load_pipeline
from oscar_elyra.pipeline.validation import services_used

__all__ = ["describe_pipeline", "format_description"]


def describe_pipeline(path: str) -> dict[str, Any]:
    """Nodes, services used, inputs and parameters of a pipeline, as a dict."""
    pl = load_pipeline(path)
    nodes = []
    for nid in pl.topological_order():
        node = pl.nodes[nid]
        entry: dict[str, Any] = {
            "id": node.id,
            "label": node.display,
            "kind": node.kind,
            "op": node.op,
            "file": node.filename or node.component_id,
            "depends_on": [pl.nodes[p].display for p in node.parents if p in pl.nodes],
            "parameters": node.parameter_refs,
        }
        if node.kind in ("notebook", "python", "r"):
            entry["dependencies"] = node.dependencies
            entry["outputs"] = node.outputs
            entry["env_vars"] = sorted(node.env)  # names only: values may be secrets
        elif node.kind == "component":
            inputs: dict[str, Any] = {}
            try:
                spec = load_component(node)
                for name in spec.inputs:
                    widget, value = input_setting(node, name)
                    if widget == "inputpath" and isinstance(value, dict):
                        up = pl.nodes.get(str(value.get("value")))
                        value = (
                            f"<{value.get('option')} of {up.display if up else value.get('value')}>"
                        )
                    elif widget == "parameter":
                        value = f"<parameter {value}>"
                    inputs[name] = value
                entry["outputs"] = list(spec.outputs)
            except ValidationError as exc:
                entry["error"] = str(exc)
            entry["inputs"] = inputs
        nodes.append(entry)
    return {
        "name": pl.name,
        "path": str(pl.path),
        "description": pl.description,
        "runtime": pl.runtime or pl.runtime_type,
        "nodes": nodes,
        "services": services_used(pl),
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "default": p.default,
                "required": p.required,
                "description": p.description,
            }
            for p in pl.parameters.values()
        ],
    }


def format_description(info: dict[str, Any]) -> str:
    """:func:`describe_pipeline`'s dict as readable text."""
    lines = [f"Pipeline: {info['name']} ({info['path']})"]
    if info["description"]:
        lines.append(f"Description: {info['description']}")
    lines.append(f"Nodes ({len(info['nodes'])}):")
    for n in info["nodes"]:
        after = f"  after: {', '.join(n['depends_on'])}" if n["depends_on"] else ""
        lines.append(f"  - {n['label']} [{n['kind']}] {n['file'] or n['op']}{after}")
        for name, value in (n.get("inputs") or {}).items():
            lines.append(f"      input {name}" + ("" if value in (None, "") else f" = {value}"))
        if n.get("dependencies"):
            lines.append(f"      dependencies: {', '.join(n['dependencies'])}")
        if n.get("env_vars"):
            lines.append(f"      env: {', '.join(n['env_vars'])}")
        if n.get("outputs"):
            lines.append(f"      outputs: {', '.join(n['outputs'])}")
        if n.get("parameters"):
            lines.append(f"      parameters: {', '.join(n['parameters'])}")
        if n.get("error"):
            lines.append(f"      error: {n['error']}")
    services = info["services"]
    used = [f"{name} ({', '.join(nodes)})" for name, nodes in sorted(services.items())]
    lines.append("Services: " + (", ".join(used) if used else "none"))
    if info["parameters"]:
        lines.append("Parameters:")
        for p in info["parameters"]:
            req = ", required" if p["required"] else ""
            lines.append(f"  - {p['name']} ({p['type']}{req}) = {p['default']!r}")
    else:
        lines.append("Parameters: none")
    return "\n".join(lines)
