"""The ``.pipeline`` model: Elyra pipeline-flow JSON (schema 3.0, app_data version 8).

Parsing follows Elyra 4.1 (``elyra.pipeline.parser`` / ``pipeline_definition``) without
importing it: node file paths are relative to the pipeline file, pipeline-default env vars are
merged under each generic node's own (``ElyraPropertyList.merge``: the node wins), env vars with
an empty value are dropped, and pipeline parameters come from
``app_data.properties.pipeline_parameters``.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_elyra.config import parse_bool
from oscar_elyra.elyra import CATALOG_TYPE
from oscar_elyra.errors import ValidationError
from oscar_elyra.pipeline.schema import check_document, check_runtime

NOTEBOOK_OP = "execute-notebook-node"
PYTHON_OP = "execute-python-node"
R_OP = "execute-r-node"
GENERIC_OPS = {NOTEBOOK_OP: "notebook", PYTHON_OP: "python", R_OP: "r"}
#: catalog type of this project's palette components (op prefix ``oscar-catalog:``)
#: the only ``app_data.version`` Elyra 4.1 runs
PIPELINE_VERSION = 8
PARAMETER_TYPES = ("String", "Integer", "Float", "Bool")

_MIGRATE = "open and save it in the Elyra 4.1 pipeline editor to update it to version 8"


@dataclass
class Parameter:
    """A pipeline parameter (``app_data.properties.pipeline_parameters`` entry)."""

    name: str
    type: str = "String"
    default: Any = None
    required: bool = False
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """``value`` (a str from the command line, or a JSON value) as this parameter's type."""
        return coerce_parameter(self.name, self.type, value)


def coerce_parameter(name: str, ptype: str, value: Any) -> Any:
    """``value`` as ``ptype`` (String/Integer/Float/Bool); ValidationError if it isn't one."""
    if value is None or value == "":
        return None
    bad = ValidationError(
        f"parameter '{name}' is {ptype}, got {value!r}: pass a valid {ptype} value"
    )
    if ptype == "Integer":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad from None
    if ptype == "Float":
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if ptype == "Bool":
        return parse_bool(value, f"parameter '{name}' (Bool)", error=ValidationError)
    return str(value)


def render_value(value: Any) -> str:
    """A parameter or component value as the string a process sees (Bool -> ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Node:
    """One execution node of the pipeline."""

    id: str
    label: str
    op: str
    parents: list[str] = field(default_factory=list)
    #: component_parameters as stored in the file (values are dicts for palette nodes)
    params: dict[str, Any] = field(default_factory=dict)
    #: generic nodes: pipeline-default env vars merged under the node's own, empty values dropped
    env: dict[str, str] = field(default_factory=dict)
    #: env var names as written (validation checks them)
    env_names: list[str] = field(default_factory=list)
    #: names of pipeline parameters the node uses (generic: ``pipeline_parameters`` list)
    parameter_refs: list[str] = field(default_factory=list)
    #: palette nodes: parsed ``app_data.component_source``
    component_source: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """``notebook``, ``python``, ``r``, ``component`` (oscar-catalog) or ``unknown``."""
        if self.op in GENERIC_OPS:
            return GENERIC_OPS[self.op]
        if self.catalog_type == CATALOG_TYPE:
            return "component"
        return "unknown"

    @property
    def catalog_type(self) -> str | None:
        """Catalog of a palette node (``component_source.catalog_type`` or the op prefix)."""
        if self.component_source and self.component_source.get("catalog_type"):
            return str(self.component_source["catalog_type"])
        if ":" in self.op:
            return self.op.split(":", 1)[0]
        return None

    @property
    def component_id(self) -> str | None:
        """``component_ref["component-id"]`` of a palette node (the YAML file name)."""
        ref = (self.component_source or {}).get("component_ref") or {}
        value = ref.get("component-id") if isinstance(ref, dict) else None
        return str(value) if value else None

    @property
    def filename(self) -> str | None:
        """The generic node's file, as written in the pipeline (relative to it)."""
        value = self.params.get("filename")
        return str(value) if value not in (None, "", "None") else None

    @property
    def outputs(self) -> list[str]:
        """Declared output files of a generic node (relative to its file's directory)."""
        return [str(o) for o in self.params.get("outputs") or [] if o]

    @property
    def dependencies(self) -> list[str]:
        """Declared dependency files of a generic node."""
        return [str(d) for d in self.params.get("dependencies") or [] if d]

    @property
    def display(self) -> str:
        """``label`` (or the id when there is no label), for messages."""
        return self.label or self.id


@dataclass
class Pipeline:
    """A parsed ``.pipeline`` file."""

    path: Path
    name: str
    nodes: dict[str, Node]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    description: str = ""
    runtime: str = ""
    runtime_type: str = ""
    #: structural problems found while parsing that validation reports (links to unknown nodes)
    problems: list[tuple[str | None, str]] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        """Directory of the pipeline file: node file paths are relative to it."""
        return self.path.parent

    def resolve(self, relative: str, base: Path | None = None) -> Path:
        """Absolute path of a file named in the pipeline (relative to ``base`` or the pipeline)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else ((base or self.dir) / p).resolve()

    def children(self, node_id: str) -> list[str]:
        """Ids of the nodes that depend directly on ``node_id``."""
        return [n.id for n in self.nodes.values() if node_id in n.parents]

    def descendants(self, node_ids: list[str] | set[str]) -> set[str]:
        """Every node reachable from ``node_ids`` (excluded)."""
        seen: set[str] = set()
        stack = list(node_ids)
        while stack:
            for child in self.children(stack.pop()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def ancestors(self, node_id: str) -> set[str]:
        """Every node ``node_id`` depends on, directly or not."""
        seen: set[str] = set()
        stack = [node_id]
        while stack:
            for parent in self.nodes[stack.pop()].parents:
                if parent in self.nodes and parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def find_cycle(self) -> list[str] | None:
        """One cycle as a list of node ids (first repeated at the end), or None."""
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(nid: str) -> list[str] | None:
            state[nid] = 1
            stack.append(nid)
            for parent in self.nodes[nid].parents:
                if parent not in self.nodes:
                    continue
                if state.get(parent) == 1:
                    return stack[stack.index(parent) :] + [parent]
                if parent not in state:
                    found = visit(parent)
                    if found:
                        return found
            stack.pop()
            state[nid] = 2
            return None

        for nid in self.nodes:
            if nid not in state:
                found = visit(nid)
                if found:
                    return list(reversed(found))
        return None

    def topological_order(self) -> list[str]:
        """Node ids, every node after its parents (file order among independent nodes)."""
        order: list[str] = []
        done: set[str] = set()
        remaining = list(self.nodes)
        while remaining:
            progressed = False
            for nid in list(remaining):
                if all(p in done or p not in self.nodes for p in self.nodes[nid].parents):
                    order.append(nid)
                    done.add(nid)
                    remaining.remove(nid)
                    progressed = True
            if not progressed:
                raise ValidationError(f"pipeline {self.path.name} has a cycle")
        return order

    def find(self, ref: str) -> Node:
        """The node whose id or label is ``ref`` (ValidationError if none or ambiguous)."""
        if ref in self.nodes:
            return self.nodes[ref]
        matches = [n for n in self.nodes.values() if n.label == ref]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            ids = ", ".join(n.id for n in matches)
            raise ValidationError(f"node label '{ref}' is ambiguous (ids {ids}): pass the node id")
        labels = ", ".join(sorted(repr(n.display) for n in self.nodes.values()))
        raise ValidationError(f"no node '{ref}' in {self.path.name}: nodes are {labels}")


def _env_list(value: Any) -> tuple[dict[str, str], list[str]]:
    """Elyra env_vars list -> ({name: value} without empty values, names as written)."""
    env: dict[str, str] = {}
    names: list[str] = []
    if not isinstance(value, list):
        return env, names
    for item in value:
        if not isinstance(item, dict):
            continue
        name = str(item.get("env_var") or "").strip()
        val = item.get("value")
        val = val.strip() if isinstance(val, str) else val
        if not name:
            continue
        names.append(name)
        if val in (None, ""):  # Elyra silently discards env vars without a value
            continue
        env[name] = str(val)
    return env, names


def _parents(node: dict) -> list[str]:
    """Parent node ids from a node's input links (as Elyra's parser reads them)."""
    parents: list[str] = []
    for port in node.get("inputs") or []:
        for link in port.get("links") or []:
            ref = link.get("port_id_ref")
            nid = None
            if ref == "outPort" or ref is None:
                nid = link.get("node_id_ref")
            elif isinstance(ref, str) and ref.endswith("_outPort"):
                nid = ref[: -len("_outPort")]
            if nid and nid not in parents:
                parents.append(nid)
    return parents


def _parse_parameters(raw: Any, source: str) -> dict[str, Parameter]:
    params: dict[str, Parameter] = {}
    if raw in (None, ""):
        return params
    if not isinstance(raw, list):
        raise ValidationError(f"{source}: 'pipeline_parameters' must be a list")
    for item in raw:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or "").strip()
        if not name:
            raise ValidationError(f"{source}: a pipeline parameter has no name")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValidationError(
                f"{source}: '{name}' is not a valid parameter name (use a Python identifier)"
            )
        default = item.get("default_value")
        ptype, value = "String", None
        if isinstance(default, dict):
            ptype = str(default.get("type") or "String")
            value = default.get("value")
        if ptype == "CustomString":
            ptype = "String"
        if ptype not in PARAMETER_TYPES:
            raise ValidationError(
                f"{source}: parameter '{name}' has type '{ptype}'; "
                f"supported types are {', '.join(PARAMETER_TYPES)}"
            )
        if item.get("value") not in (None, ""):
            value = item["value"]
        params[name] = Parameter(
            name=name,
            type=ptype,
            default=coerce_parameter(name, ptype, value),
            required=bool(item.get("required")),
            description=str(item.get("description") or ""),
        )
    return params


def _make_node(raw: dict, nid: str, src: str, default_env: dict[str, str]) -> Node:
    """One execution node (generic or palette) from its JSON."""
    napp = raw.get("app_data") if isinstance(raw.get("app_data"), dict) else {}
    ui = napp.get("ui_data") if isinstance(napp.get("ui_data"), dict) else {}
    label = str(ui.get("label") or napp.get("label") or "")
    cparams = napp.get("component_parameters")
    if not isinstance(cparams, dict):
        raise ValidationError(
            f"{src}: node '{label or nid}' has no 'component_parameters': "
            "open and save the pipeline in the pipeline editor"
        )
    op = str(raw.get("op") or "")
    source = napp.get("component_source")
    if isinstance(source, str) and source.strip():
        try:
            source = json.loads(source)
        except ValueError:
            source = {"component_ref": {"component-id": source}}
    if not isinstance(source, dict):
        source = None
    node = Node(
        id=nid,
        label=label,
        op=op,
        parents=_parents(raw),
        params=dict(cparams),
        component_source=source,
    )
    if op in GENERIC_OPS:
        own_env, names = _env_list(cparams.get("env_vars"))
        node.env = {**default_env, **own_env}
        node.env_names = names
        refs = cparams.get("pipeline_parameters") or []
        node.parameter_refs = [str(r) for r in refs if r] if isinstance(refs, list) else []
    else:
        for value in cparams.values():
            if (
                isinstance(value, dict)
                and value.get("widget") == "parameter"
                and value.get("value")
            ):
                node.parameter_refs.append(str(value["value"]))
    return node


def parse_pipeline(doc: Any, path: Path) -> Pipeline:
    """Build a :class:`Pipeline` from the decoded JSON ``doc`` of the file at ``path``.

    Raises ValidationError (one line naming the file and the problem) when the document is not
    an Elyra 4.1 pipeline.
    """
    src = path.name
    if not isinstance(doc, dict) or doc.get("doc_type", "pipeline") != "pipeline":
        raise ValidationError(
            f"{src} is not an Elyra pipeline (a JSON object with doc_type 'pipeline')"
        )
    check_document(doc, src)
    pipelines = doc.get("pipelines")
    if not isinstance(pipelines, list) or not pipelines:
        raise ValidationError(f"{src} has no 'pipelines' list: is it an Elyra .pipeline file?")
    primary_id = doc.get("primary_pipeline")
    primary = next(
        (p for p in pipelines if isinstance(p, dict) and p.get("id") == primary_id), None
    )
    if primary is None:
        raise ValidationError(f"{src}: primary pipeline '{primary_id}' not found in 'pipelines'")
    app = primary.get("app_data")
    if not isinstance(app, dict):
        raise ValidationError(f"{src}: the primary pipeline has no 'app_data'")
    version = app.get("version")
    if version is None:
        raise ValidationError(f"{src} has no pipeline version: {_MIGRATE}")
    try:
        version_num = float(version)
    except (TypeError, ValueError):
        raise ValidationError(f"{src}: pipeline version {version!r} is not a number") from None
    if version_num < PIPELINE_VERSION:
        raise ValidationError(f"{src} is a version {version} pipeline: {_MIGRATE}")
    if version_num > PIPELINE_VERSION:
        raise ValidationError(
            f"{src} is a version {version} pipeline, newer than Elyra 4.1's version 8: "
            "save it with Elyra 4.1 or update oscar-elyra"
        )
    schema = str(doc.get("version", "3.0"))
    if schema not in ("3.0", "3"):
        raise ValidationError(f"{src} uses pipeline-flow schema {schema}; Elyra 4.1 needs 3.0")
    props = app.get("properties") if isinstance(app.get("properties"), dict) else {}
    defaults = (
        props.get("pipeline_defaults") if isinstance(props.get("pipeline_defaults"), dict) else {}
    )
    default_env, _ = _env_list(defaults.get("env_vars"))

    nodes: dict[str, Node] = {}
    bindings: set[str] = set()
    by_id = {p.get("id"): p for p in pipelines if isinstance(p, dict)}

    def add_nodes(raw_list: list, extra_parents: dict[str, list[str]], depth: int) -> None:
        """Execution nodes of a pipeline; super nodes are flattened as Elyra's parser does."""
        for raw in raw_list:
            if not isinstance(raw, dict):
                raise ValidationError(f"{src}: a node is not a JSON object")
            ntype = raw.get("type")
            nid = str(raw.get("id") or "")
            if ntype == "binding":
                bindings.add(nid)
                continue
            if ntype == "super_node":
                sub_id = (raw.get("subflow_ref") or {}).get("pipeline_id_ref")
                sub = by_id.get(sub_id)
                if sub is None or depth > 20:
                    raise ValidationError(
                        f"{src}: super node '{nid}' refers to a missing pipeline '{sub_id}'"
                    )
                inner: dict[str, list[str]] = {}
                for port in raw.get("inputs") or []:
                    pid = str(port.get("id") or "")
                    if pid.endswith("_inPort"):  # "<embedded node id>_inPort"
                        inner[pid[: -len("_inPort")]] = _parents({"inputs": [port]})
                add_nodes(sub.get("nodes") or [], inner, depth + 1)
                continue
            if ntype != "execution_node":
                raise ValidationError(f"{src}: node '{nid}' has unsupported type '{ntype}'")
            if not nid:
                raise ValidationError(f"{src}: a node has no id")
            if nid in nodes:
                raise ValidationError(f"{src}: two nodes have the id '{nid}'")
            nodes[nid] = _make_node(raw, nid, src, default_env)
            for parent in extra_parents.get(nid, []):
                if parent not in nodes[nid].parents:
                    nodes[nid].parents.append(parent)

    raw_nodes = primary.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ValidationError(f"{src} has no nodes: add at least one node in the pipeline editor")
    add_nodes(raw_nodes, {}, 0)
    if not nodes:
        raise ValidationError(f"{src} has no nodes: add at least one node in the pipeline editor")
    for node in nodes.values():  # links from a super node's entry bindings are not dependencies
        node.parents = [p for p in node.parents if p not in bindings]

    problems: list[tuple[str | None, str]] = []
    for node in nodes.values():
        for parent in node.parents:
            if parent not in nodes:
                problems.append((node.id, f"is linked to a node '{parent}' that does not exist"))
    name = path.stem
    check_runtime(str(props.get("runtime") or ""), str(app.get("runtime_type") or ""), src)
    return Pipeline(
        path=path,
        name=name,
        nodes=nodes,
        parameters=_parse_parameters(props.get("pipeline_parameters"), src),
        description=str(props.get("description") or ""),
        runtime=str(props.get("runtime") or app.get("runtime") or ""),
        runtime_type=str(app.get("runtime_type") or ""),
        problems=problems,
    )


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and parse a ``.pipeline`` file (ValidationError with one clear line if it isn't one)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValidationError(f"pipeline file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{p.name} is not a text file: is it a .pipeline file?") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ValidationError(f"{p.name} is nested too deeply to be a .pipeline file") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{p.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it or save it again from the pipeline editor"
        ) from None
    return parse_pipeline(doc, p.resolve())


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(node: Node) -> str:
    """A filesystem-safe, stable directory name for a node (label + short id)."""
    base = _SAFE.sub("_", node.label or node.op or "node").strip("._") or "node"
    return f"{base[:40]}-{_SAFE.sub('', node.id)[:8]}"
