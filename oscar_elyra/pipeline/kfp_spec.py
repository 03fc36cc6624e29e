"""Palette component nodes (``oscar-catalog:*`` ops) run locally from their KFP component YAML.

The YAML is the bundled component's, or the user catalog's for ``user/<file>.yaml`` ids
(typed model components, ``oscar-elyra palette add``).

The container ``command + args`` of the component spec is the argv (``python`` becomes
``sys.executable``) with the KFP placeholders substituted: ``{inputValue: X}`` (the node's
value, a pipeline parameter, a file's text or the input default), ``{inputPath: X}`` (the file an
upstream node wrote for the output the Elyra ``inputpath`` widget names), ``{outputPath: X}`` (a
file in the run directory), plus ``concat``, ``if``/``isPresent``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_elyra.config import load_yaml
from oscar_elyra.elyra.user_catalog import component_path
from oscar_elyra.errors import ValidationError
from oscar_elyra.pipeline.model import Node, Pipeline, render_value


def ref_name(name: str) -> str:
    """Elyra's property id of a component input (``name.lower().replace(" ", "_")``)."""
    return str(name).lower().replace(" ", "_")


@dataclass
class ComponentSpec:
    """The parts of a KFP component YAML the runner uses."""

    path: Path
    name: str
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    argv: list[Any] = field(default_factory=list)
    path_inputs: set[str] = field(default_factory=set)

    def required_inputs(self) -> list[str]:
        """Inputs without a default that are not optional (as Elyra decides 'required')."""
        return [
            n
            for n, spec in self.inputs.items()
            if spec.get("optional") is not True and spec.get("default") is None
        ]

    def output_for_option(self, option: str) -> str | None:
        """The output name an Elyra ``inputpath`` option (``output_<ref>``) designates."""
        for name in self.outputs:
            if option in (f"output_{ref_name(name)}", name):
                return name
        return None


def _walk(items: list[Any], found: dict[str, set[str]]) -> None:
    for item in items:
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("inputValue", "inputPath", "outputPath") and isinstance(value, str):
                    found.setdefault(key, set()).add(value)
                elif isinstance(value, list):
                    _walk(value, found)
                elif isinstance(value, dict):
                    _walk([value], found)


def load_component(node: Node) -> ComponentSpec:
    """The component spec of palette node ``node`` (ValidationError naming node and file)."""
    cid = node.component_id
    if not cid:
        raise ValidationError(
            f"node '{node.display}' (op '{node.op}') has no component_source: "
            "re-add it from the OSCAR palette"
        )
    path = component_path(cid)
    if path is None:
        hint = (
            f"add it with `oscar-elyra palette add {Path(cid).stem}`"
            if cid.startswith("user/")
            else "re-add it from the OSCAR palette"
        )
        raise ValidationError(f"node '{node.display}': component '{cid}' not found: {hint}")
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"), f"component {path.name}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read component {path.name}: {exc}") from None
    if doc is not None and not isinstance(doc, dict):
        raise ValidationError(f"component {path.name} is not a component spec (a mapping)")
    container = ((doc or {}).get("implementation") or {}).get("container") or {}
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    if not argv:
        raise ValidationError(f"component {path.name} has no container command to run")
    found: dict[str, set[str]] = {}
    _walk(argv, found)
    return ComponentSpec(
        path=path,
        name=str(doc.get("name") or path.stem),
        inputs={str(i["name"]): i for i in doc.get("inputs") or [] if isinstance(i, dict)},
        outputs={str(o["name"]): o for o in doc.get("outputs") or [] if isinstance(o, dict)},
        argv=argv,
        path_inputs=found.get("inputPath", set()),
    )


def input_setting(node: Node, name: str) -> tuple[str | None, Any]:
    """(widget, value) the node sets for input ``name``; (None, None) when unset."""
    raw = node.params.get(ref_name(name), node.params.get(name))
    if isinstance(raw, dict):
        value = raw.get("value")
        if value in (None, "") or value == {}:
            return raw.get("widget"), None
        return raw.get("widget"), value
    if raw in (None, ""):
        return None, None
    return None, raw


def upstream_ref(node: Node, spec: ComponentSpec, name: str) -> tuple[str, str] | None:
    """(upstream node id, option) of an ``inputpath`` input, or None when not set."""
    widget, value = input_setting(node, name)
    if widget == "inputpath" and isinstance(value, dict) and value.get("value"):
        return str(value["value"]), str(value.get("option") or "")
    return None


@dataclass
class Invocation:
    """A resolved component call."""

    argv: list[str]
    outputs: dict[str, Path]


def build_invocation(
    node: Node,
    spec: ComponentSpec,
    pipeline: Pipeline,
    parameters: dict[str, Any],
    output_path_of: Any,
    node_out_dir: Path,
) -> Invocation:
    """Resolve placeholders of ``spec`` for ``node``.

    ``output_path_of(upstream_node_id, output_name) -> Path`` gives the file an upstream node
    wrote; outputs of this node go under ``node_out_dir``.
    """
    outputs: dict[str, Path] = {}

    def value_of(name: str) -> str | None:
        widget, value = input_setting(node, name)
        if widget == "parameter":
            pvalue = parameters.get(str(value))
            return None if pvalue is None else render_value(pvalue)
        if widget == "file" and value:
            return pipeline.resolve(str(value)).read_text(encoding="utf-8")
        if widget == "inputpath":
            raise ValidationError(
                f"node '{node.display}': input '{name}' takes an upstream output, "
                "but the component reads it as a value"
            )
        if value is None:
            default = spec.inputs.get(name, {}).get("default")
            return None if default is None else render_value(default)
        return render_value(value)

    def path_of(name: str) -> str:
        ref = upstream_ref(node, spec, name)
        if ref is None:
            raise ValidationError(
                f"node '{node.display}': input '{name}' must be connected to an upstream output"
            )
        return str(output_path_of(ref[0], ref[1]))

    def resolve(item: Any) -> list[str]:
        if isinstance(item, (str, int, float, bool)):
            return [render_value(item)]
        if not isinstance(item, dict) or len(item) != 1:
            raise ValidationError(f"component {spec.path.name}: unsupported argument {item!r}")
        key, arg = next(iter(item.items()))
        if key == "inputValue":
            value = value_of(arg)
            if value is None:
                raise ValidationError(f"node '{node.display}' has no value for input '{arg}'")
            return [value]
        if key == "inputPath":
            return [path_of(arg)]
        if key == "outputPath":
            out = node_out_dir / ref_name(arg)
            out.parent.mkdir(parents=True, exist_ok=True)
            outputs[arg] = out
            return [str(out)]
        if key == "concat":
            return ["".join(s for part in arg for s in resolve(part))]
        if key == "isPresent":
            return ["true" if present(arg) else "false"]
        if key == "if":
            cond = arg.get("cond")
            truth = (
                present(cond["isPresent"])
                if isinstance(cond, dict) and "isPresent" in cond
                else str(cond).lower() == "true"
            )
            branch = arg.get("then" if truth else "else") or []
            return [s for part in branch for s in resolve(part)]
        raise ValidationError(f"component {spec.path.name}: unsupported placeholder '{key}'")

    def present(name: str) -> bool:
        if name in spec.path_inputs:
            return upstream_ref(node, spec, name) is not None
        return input_setting(node, name)[1] is not None

    argv: list[str] = []
    for item in spec.argv:
        argv.extend(resolve(item))
    if argv and Path(argv[0]).name in ("python", "python3"):
        argv[0] = sys.executable
    return Invocation(argv=argv, outputs=outputs)
