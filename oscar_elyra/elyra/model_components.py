"""Typed palette components for DEEPaaS models: one KFP component YAML per model.

``oscar-elyra palette add SERVICE`` reads the model's argument list (:func:`deepaas.help`,
or a hub crate's ``FormalParameter`` inputs, :mod:`oscar_elyra.hub`) and writes a KFP
component with one typed input per model argument into the user component catalog
(:mod:`oscar_elyra.elyra.user_catalog`), which Elyra's palette shows under "OSCAR models":

* a value argument is an input of KFP type ``String``/``Integer``/``Float``/``Boolean``
  (lists and dicts are ``String``s holding a Python literal such as ``[1, 2]``), optional
  when the model does not require it, with the model's default and its help text as the
  description (choices listed there);
* a file argument is an input of type ``OscarManifest`` passed by ``inputPath``: the manifest
  an upstream OSCAR node wrote; the node makes one prediction per artifact of the (first
  required) file argument, and the other file arguments give one artifact each, or as many;
* the node settings ``service`` (default: the model's service; another deployment of the
  same model can be named), ``destination`` and ``timeout``, and the output ``predictions``
  (a manifest of the ``<input stem>.json`` predictions). A model argument with one of those
  names keeps it; the setting becomes ``oscar_<name>``.

An optional argument without a default is passed only when set (``if``/``isPresent``);
Elyra's parser then offers every widget for an optional file argument (it recognises only
top-level ``inputPath`` placeholders), so connect it to an upstream output. The command is
``python -m oscar_elyra.palette.deepaas_model --service S [--file NAME MANIFEST]...
[--arg NAME VALUE]...``; the YAML's ``metadata.annotations`` record the service, where the
arguments came from and the argument list (``palette ls`` reads them).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from oscar_elyra._paths import write_text_atomic
from oscar_elyra.deepaas import Argument
from oscar_elyra.elyra import COMPONENT_IMAGE
from oscar_elyra.elyra.user_catalog import USER_PREFIX, user_components_dir
from oscar_elyra.errors import ValidationError
from oscar_elyra.fdl import NAME_MAX

__all__ = [
    "ENTRY_POINT",
    "KFP_TYPES",
    "MANIFEST_TYPE",
    "ModelComponent",
    "component_spec",
    "list_components",
    "remove",
    "write_component",
]

#: module the generated components run
ENTRY_POINT = "oscar_elyra.palette.deepaas_model"
#: KFP type of a model argument, by DEEPaaS type
KFP_TYPES = {
    "str": "String",
    "int": "Integer",
    "float": "Float",
    "bool": "Boolean",
    "list": "String",
    "dict": "String",
}
#: KFP type of the manifests passed between OSCAR nodes
MANIFEST_TYPE = "OscarManifest"
SETTINGS = ("service", "destination", "timeout", "predictions")
_ANNOTATION = "oscar-elyra/"
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_service(service: str) -> str:
    if not isinstance(service, str) or not _SERVICE.match(service) or len(service) > NAME_MAX:
        raise ValidationError(
            f"{service!r} is not an OSCAR service name (lowercase letters, digits and '-', "
            f"at most {NAME_MAX} characters)"
        )
    return service


def _ident(name: str, taken: set[str]) -> str:
    """A KFP input name for model argument ``name`` (lowercase identifier), unique."""
    base = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "arg"
    if base[0].isdigit():
        base = f"arg_{base}"
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    taken.add(ident)
    return ident


def _text(value: Any) -> str:
    """A default as the string KFP component YAML holds (Elyra's parser needs strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict, tuple)):
        return repr(value)  # deepaas-cli reads lists and dicts with ast.literal_eval
    return str(value)


def _describe(arg: Argument) -> str:
    text = " ".join(arg.help.split())
    bits = [text if text[-1:] in ".!?" else f"{text}."] if text else []
    if arg.is_file:
        bits.append(
            "File argument: the artifact manifest of an upstream OSCAR node (one file per "
            "prediction)."
        )
    elif arg.type in ("list", "dict"):
        example = "[1, 2]" if arg.type == "list" else "{'a': 1}"
        bits.append(f"A {arg.type}, written as a Python literal such as {example}.")
    if arg.choices:
        bits.append("One of: " + ", ".join(_text(c) for c in arg.choices) + ".")
    return " ".join(bits) or f"Model argument {arg.name}."


def component_spec(
    service: str, arguments: list[Argument], *, name: str | None = None, source: str = "deepaas"
) -> dict[str, Any]:
    """The KFP component (a dict to dump as YAML) calling ``service`` with ``arguments``.

    ``source`` says where the argument list came from (``deepaas``, ``hub:<slug>``).
    """
    _check_service(service)
    seen = [a.name for a in arguments]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ValidationError(f"model {service!r} lists argument(s) {', '.join(dupes)} twice")
    taken: set[str] = set()
    idents = {a.name: _ident(a.name, taken) for a in arguments}
    setting = {s: (f"oscar_{s}" if s in taken else s) for s in SETTINGS}
    files = [a for a in arguments if a.is_file]
    primary = next((a for a in files if a.required), files[0] if files else None)
    inputs: list[dict[str, Any]] = []
    args: list[Any] = ["--service", {"inputValue": setting["service"]}]
    for arg in arguments:
        ident = idents[arg.name]
        spec: dict[str, Any] = {"name": ident}
        if arg.is_file:
            spec["type"] = MANIFEST_TYPE
            call = ["--file", arg.name, {"inputPath": ident}]
        else:
            spec["type"] = KFP_TYPES.get(arg.type, "String")
            call = ["--arg", arg.name, {"inputValue": ident}]
            if not arg.required and arg.default is not None:
                spec["default"] = _text(arg.default)
        if arg.required or "default" in spec:
            args.extend(call)
        else:
            args.append({"if": {"cond": {"isPresent": ident}, "then": call}})
        if not arg.required:
            spec["optional"] = True
        spec["description"] = _describe(arg)
        inputs.append(spec)
    inputs += [
        {
            "name": setting["service"],
            "type": "String",
            "default": service,
            "optional": True,
            "description": "The OSCAR service serving the model (another deployment of it).",
        },
        {
            "name": setting["destination"],
            "type": "String",
            "default": "",
            "optional": True,
            "description": "Object storage prefix for the predictions. "
            "Empty = the run's artifact folder.",
        },
        {
            "name": setting["timeout"],
            "type": "Integer",
            "default": "300",
            "optional": True,
            "description": "Seconds to wait for each prediction.",
        },
    ]
    args += [
        "--destination",
        {"inputValue": setting["destination"]},
        "--timeout",
        {"inputValue": setting["timeout"]},
        "--output-manifest",
        {"outputPath": setting["predictions"]},
    ]
    each = (
        f"one prediction per artifact of its file argument '{primary.name}'"
        if primary is not None
        else "one prediction (the model takes no file)"
    )
    return {
        "name": name or f"{service} (DEEPaaS)",
        "description": (
            f"DEEPaaS model '{service}' on OSCAR: {each}, through a synchronous call with the "
            "AI4EOSC request shape; each prediction is stored as <input stem>.json and passed "
            "on in a manifest. The arguments are checked against the model's own list before "
            f"any call. Made by `oscar-elyra palette add {service}` ({source}). Connection "
            "settings come from the OSCAR_* environment variables (Kubernetes secrets)."
        ),
        "metadata": {
            "annotations": {
                f"{_ANNOTATION}service": service,
                f"{_ANNOTATION}source": source,
                f"{_ANNOTATION}arguments": json.dumps([a.to_dict() for a in arguments]),
            }
        },
        "inputs": inputs,
        "outputs": [
            {
                "name": setting["predictions"],
                "type": MANIFEST_TYPE,
                "description": "Artifact manifest (JSON) of the predictions.",
            }
        ],
        "implementation": {
            "container": {
                "image": COMPONENT_IMAGE,
                "command": ["python", "-m", ENTRY_POINT],
                "args": args,
            }
        },
    }


@dataclass
class ModelComponent:
    """A typed model component of the user catalog."""

    service: str
    name: str
    path: Path
    source: str
    arguments: list[str]

    @property
    def component_id(self) -> str:
        """The id palette nodes use (``user/<service>.yaml``)."""
        return USER_PREFIX + self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "path": str(self.path),
            "component_id": self.component_id,
            "source": self.source,
            "arguments": list(self.arguments),
        }


def write_component(
    service: str,
    arguments: list[Argument],
    *,
    name: str | None = None,
    source: str = "deepaas",
    directory: str | os.PathLike[str] | None = None,
) -> ModelComponent:
    """Write the component of ``service`` as ``<service>.yaml`` in the user catalog
    (``directory``, default :func:`user_components_dir`), atomically; replaces an older one."""
    spec = component_spec(service, arguments, name=name, source=source)
    folder = Path(directory) if directory is not None else user_components_dir()
    path = folder / f"{service}.yaml"
    text = (
        f"# Generated by `oscar-elyra palette add {service}`; edit with care.\n"
        + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    )
    write_text_atomic(path, text)
    return _read(path)


def _read(path: Path) -> ModelComponent:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    notes = ((doc.get("metadata") or {}).get("annotations") or {}) if isinstance(doc, dict) else {}
    try:
        args = [a["name"] for a in json.loads(notes.get(f"{_ANNOTATION}arguments") or "[]")]
    except (ValueError, TypeError, KeyError):
        args = []
    return ModelComponent(
        service=str(notes.get(f"{_ANNOTATION}service") or path.stem),
        name=str(doc.get("name") or path.stem),
        path=path,
        source=str(notes.get(f"{_ANNOTATION}source") or "?"),
        arguments=args,
    )


def list_components(directory: str | os.PathLike[str] | None = None) -> list[ModelComponent]:
    """The model components of the user catalog, by service (unreadable files skipped)."""
    folder = Path(directory) if directory is not None else user_components_dir()
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            found.append(_read(path))
        except (OSError, yaml.YAMLError, AttributeError):
            continue
    return found


def remove(service: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Delete the component of ``service``; ValidationError (naming those there are) if none."""
    _check_service(service)
    folder = Path(directory) if directory is not None else user_components_dir()
    path = folder / f"{service}.yaml"
    if not path.is_file():
        have = ", ".join(c.service for c in list_components(folder)) or "none"
        raise ValidationError(
            f"no palette component for service {service!r} in {folder} (there are: {have})"
        )
    path.unlink()
    return path
