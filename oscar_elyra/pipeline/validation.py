"""Checks run before anything executes: Elyra's that apply to a local run, and ours.

Elyra's (``elyra.pipeline.validation``): links and cycles, node files and dependencies exist,
env var names, required component properties, ``inputpath`` values name an upstream node, node
parameter references are defined, required parameters have a value, known ops. Ours: palette
components are found, ``--param`` values are typed, tools are installed (papermill for notebook
nodes, Rscript for R nodes), and with ``check_services`` the OSCAR services nodes use answer.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oscar_elyra._paths import env_problem
from oscar_elyra.errors import OscarError, ValidationError
from oscar_elyra.pipeline.kfp_spec import input_setting, load_component, upstream_ref
from oscar_elyra.pipeline.model import Pipeline, coerce_parameter
from oscar_elyra.pipeline.schema import import_jsonschema
from oscar_elyra.session import connect

#: component inputs that name an OSCAR service
SERVICE_INPUTS = ("service", "service_name")
#: env vars of generic nodes that name an OSCAR service (the project's node notebooks)
SERVICE_ENV_VARS = ("SERVICE", "OSCAR_SERVICE")


@dataclass
class Issue:
    """One validation finding."""

    severity: str  # "error" | "warning"
    message: str
    node: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_parameters(
    pipeline: Pipeline, overrides: dict[str, str] | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Parameter values: pipeline defaults < ``base`` (a resumed run's) < ``overrides`` (typed).

    ValidationError for an unknown name or a value of the wrong type.
    """
    values = {name: p.default for name, p in pipeline.parameters.items()}
    for name, value in (base or {}).items():
        if name in pipeline.parameters:
            values[name] = value
    for name, raw in (overrides or {}).items():
        if name not in pipeline.parameters:
            known = ", ".join(sorted(pipeline.parameters)) or "none"
            raise ValidationError(
                f"unknown parameter '{name}' for {pipeline.path.name} (defined: {known})"
            )
        p = pipeline.parameters[name]
        values[name] = coerce_parameter(name, p.type, raw)
    return values


def parse_param_options(options: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (ValidationError for a malformed one)."""
    out: dict[str, str] = {}
    for opt in options:
        name, sep, value = opt.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--param {opt!r} is not NAME=VALUE")
        out[name.strip()] = value
    return out


def services_used(pipeline: Pipeline) -> dict[str, list[str]]:
    """OSCAR service name -> labels of the nodes using it (``service`` inputs, SERVICE env)."""
    found: dict[str, list[str]] = {}
    for node in pipeline.nodes.values():
        if node.kind != "component":
            for key in SERVICE_ENV_VARS:  # generic nodes (this project's notebooks) name it so
                if node.env.get(key):
                    found.setdefault(node.env[key], []).append(node.display)
            continue
        for key in SERVICE_INPUTS:
            raw = node.params.get(key)
            value = raw.get("value") if isinstance(raw, dict) else raw
            if isinstance(raw, dict) and raw.get("widget") == "parameter":
                p = pipeline.parameters.get(str(value))
                value = p.default if p else None
            if value:
                found.setdefault(str(value), []).append(node.display)
    return found


def validate_pipeline(
    pipeline: Pipeline,
    parameters: dict[str, Any] | None = None,
    *,
    check_services: bool = False,
    client: Any = None,
) -> list[Issue]:
    """Every problem found in ``pipeline`` (errors and warnings); nothing is executed.

    ``parameters`` are the resolved values (see :func:`resolve_parameters`); by default the
    pipeline's own. ``client`` (an OscarClient) is used when ``check_services``.
    """
    issues: list[Issue] = []

    def err(message: str, node=None) -> None:
        issues.append(Issue("error", message, node.id if node else None))

    def warn(message: str, node=None) -> None:
        issues.append(Issue("warning", message, node.id if node else None))

    values = parameters if parameters is not None else resolve_parameters(pipeline)
    nodes = pipeline.nodes

    for node_id, message in pipeline.problems:
        err(f"node '{nodes[node_id].display}' {message}", nodes.get(node_id))
    cycle = pipeline.find_cycle()
    if cycle:
        path = " -> ".join(nodes[n].display for n in cycle)
        err(f"the pipeline has a cycle ({path}): remove one of its links")
    if len(nodes) > 1:
        for node in nodes.values():
            if not node.parents and not pipeline.children(node.id):
                warn(f"node '{node.display}' is not connected to any other node", node)

    kinds = {n.kind for n in nodes.values()}
    if "notebook" in kinds and importlib.util.find_spec("papermill") is None:
        err("notebook nodes need papermill: pip install 'oscar-elyra[elyra]'")
    if "r" in kinds and shutil.which("Rscript") is None:
        err("R script nodes need Rscript on the PATH: install R")

    referenced: set[str] = set()
    for node in nodes.values():
        referenced.update(node.parameter_refs)
        for name in node.parameter_refs:
            if name not in pipeline.parameters:
                err(
                    f"node '{node.display}' uses pipeline parameter '{name}', "
                    "which the pipeline does not define",
                    node,
                )
        if node.kind in ("notebook", "python", "r"):
            _check_generic(pipeline, node, err, warn)
        elif node.kind == "component":
            _check_component(pipeline, node, values, err)
        else:
            catalog = node.catalog_type
            if catalog:
                err(
                    f"node '{node.display}' uses op '{node.op}' from catalog '{catalog}', "
                    "which oscar-elyra cannot run: only generic nodes and oscar-catalog "
                    "palette components run locally",
                    node,
                )
            else:
                err(f"node '{node.display}' has unknown op '{node.op}'", node)

    for name, p in pipeline.parameters.items():
        if p.required and values.get(name) is None:
            err(f"pipeline parameter '{name}' is required: pass --param {name}=VALUE")
        elif name not in referenced and values.get(name) is not None:
            warn(f"pipeline parameter '{name}' is not used by any node")

    if check_services and not any(i.severity == "error" for i in issues):
        _check_services(pipeline, client, err)
    return issues


_SUFFIXES = {"notebook": (".ipynb",), "python": (".py",), "r": (".r", ".R")}


def _file_problem(path: Path, kind: str) -> str | None:
    """Why the runner could not run ``path`` as a ``kind`` node (None when it can)."""
    import_jsonschema()  # nbformat imports it: without rfc3987-syntax, as for the schema checks
    # imported here: nbformat imports jsonschema, which every CLI call would pay without validating
    import nbformat

    if path.suffix not in _SUFFIXES.get(kind, (path.suffix,)):
        return f"is not a {kind} file (expected {' or '.join(_SUFFIXES[kind])})"
    try:
        if kind != "notebook":
            path.read_text(encoding="utf-8")
            return None
        nbformat.validate(nbformat.read(path, as_version=4))
    except (OSError, UnicodeDecodeError):
        return "is not a readable text file"
    except (ValueError, KeyError, AttributeError, RecursionError, nbformat.ValidationError):
        return "is not a valid notebook: open and save it in JupyterLab"
    return None


def _check_generic(pipeline: Pipeline, node, err, warn) -> None:
    if not node.filename:
        err(f"node '{node.display}' has no file: set its 'filename' property", node)
        return
    path = pipeline.resolve(node.filename)
    if not path.is_file():
        err(f"node '{node.display}': file '{node.filename}' not found ({path})", node)
        return
    for dep in node.dependencies:
        dep_path = pipeline.resolve(dep, path.parent)
        if "*" in dep:
            if not glob.glob(str(dep_path)):
                err(f"node '{node.display}': dependency '{dep}' matches no file", node)
        elif not dep_path.exists():
            err(f"node '{node.display}': dependency '{dep}' not found ({dep_path})", node)
    problem = _file_problem(path, node.kind)
    if problem:
        err(f"node '{node.display}': file '{node.filename}' {problem}", node)
    for name in node.env_names:
        problem = env_problem(name, node.env.get(name, ""))
        if problem:
            err(f"node '{node.display}': {problem}", node)
        elif name not in node.env and name not in os.environ:
            warn(
                f"node '{node.display}': environment variable '{name}' has no value in the "
                "pipeline and is not set in this environment",
                node,
            )


def _check_component(pipeline: Pipeline, node, values: dict[str, Any], err) -> None:
    try:
        spec = load_component(node)
    except ValidationError as exc:
        err(str(exc), node)
        return
    ancestors = pipeline.ancestors(node.id)
    for name in spec.inputs:
        widget, value = input_setting(node, name)
        if widget == "inputpath" or name in spec.path_inputs:
            ref = upstream_ref(node, spec, name)
            if ref is None:
                optional = spec.inputs.get(name, {}).get("optional") is True
                if name in spec.required_inputs() or (name in spec.path_inputs and not optional):
                    err(
                        f"node '{node.display}': input '{name}' must take an output of an "
                        "upstream node: select one in the node properties",
                        node,
                    )
                continue
            up_id, option = ref
            if up_id not in ancestors:
                err(
                    f"node '{node.display}': input '{name}' takes an output of node "
                    f"'{up_id}', which is not upstream of it: check the links",
                    node,
                )
                continue
            up = pipeline.nodes[up_id]
            if up.kind == "component":
                try:
                    up_spec = load_component(up)
                except ValidationError:
                    continue  # reported on the upstream node itself
                if up_spec.output_for_option(option) is None:
                    err(
                        f"node '{node.display}': input '{name}' takes output '{option}' of "
                        f"node '{up.display}', which has no such output",
                        node,
                    )
            else:
                err(
                    f"node '{node.display}': input '{name}' takes an output of "
                    f"'{up.display}', which is not a palette component",
                    node,
                )
        elif widget == "parameter":
            if values.get(str(value)) is None and name in spec.required_inputs():
                err(
                    f"node '{node.display}': input '{name}' takes pipeline parameter "
                    f"'{value}', which has no value: pass --param {value}=VALUE",
                    node,
                )
        elif widget == "file" and value:
            if not pipeline.resolve(str(value)).is_file():
                err(f"node '{node.display}': input '{name}' file '{value}' not found", node)
        elif value is None and name in spec.required_inputs():
            err(f"node '{node.display}' is missing a value for required input '{name}'", node)


def _check_services(pipeline: Pipeline, client: Any, err) -> None:
    used = services_used(pipeline)
    if not used:
        return
    if client is None:
        client = connect().client
    for service, labels in sorted(used.items()):
        try:
            client.get_service(service)
        except OscarError as exc:
            err(f"service '{service}' (used by {', '.join(labels)}) does not answer: {exc}")


def first_error(issues: list[Issue], pipeline: Pipeline) -> ValidationError | None:
    """One ValidationError summarizing the errors of ``issues`` (None when there are none)."""
    errors = [i for i in issues if i.severity == "error"]
    if not errors:
        return None
    more = ""
    if len(errors) > 1:
        more = (
            f" (and {len(errors) - 1} more problem(s): "
            f"run `oscar-elyra validate {pipeline.path.name}`)"
        )
    return ValidationError(f"invalid pipeline {pipeline.path.name}: {errors[0].message}{more}")
