"""OSCAR Hub: curated OSCAR services packaged as RO-Crates (grycap/oscar-hub).

Layout of the hub (the grycap/oscar-hub repository): ``crates/<slug>/`` holds
``ro-crate-metadata.json`` (RO-Crate 1.1/1.2; its root data entity ``./`` is the service:
``name``, ``description``, ``version``, ``license``, ``author``, ``memoryRequirements``,
``processorRequirements``, ``serviceType``, ``isBasedOn``, ``hasPart``), the FDL (``fdl.yml``;
older crates ``<slug>.yaml``) and the script the FDL names (``script.sh``).

Where the hub is (``location``, else ``$OSCAR_HUB``, else :data:`DEFAULT_HUB`):

* a local folder of crate folders, or one holding ``crates/``;
* ``https://raw.githubusercontent.com/<owner>/<repo>/<ref>/<path>``: files are read there and
  the list of crates comes from one call to the GitHub contents API (as ``oscar-cli hub``);
* any other ``http(s)://`` folder of crates: files are read there, the list from its
  ``index.json`` (a JSON list of slugs, or of objects with a ``slug``).

Model arguments: a crate may describe its model's arguments as Workflow RO-Crate
``FormalParameter`` entities listed in the root entity's ``input`` (``name``,
``description``, ``additionalType`` File/Text/Integer/Float/Boolean/ItemList/PropertyValue,
``valueRequired``, ``defaultValue``); ``oscar-elyra palette add --crate SLUG`` types its
palette node from them without asking the running model.

:func:`deploy` sends the crate's FDL (script inlined) to the selected cluster; with
``name=`` the service and its MinIO buckets are renamed, so a second copy never shares the
first one's buckets (OSCAR refuses a new service whose input bucket exists).
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import yaml

from oscar_elyra._paths import safe_join, safe_join_fast, temp_near
from oscar_elyra.deepaas import Argument
from oscar_elyra.errors import NotFoundError, ServiceError, ValidationError
from oscar_elyra.fdl import load_fdl, validate_service
from oscar_elyra.redact import redact
from oscar_elyra.session import Session, connect

__all__ = [
    "DEFAULT_HUB",
    "HUB_ENV",
    "METADATA_FILE",
    "Crate",
    "Hub",
    "crate_arguments",
    "github_contents_url",
    "parse_crate",
    "rename_service",
]

#: the crates of grycap/oscar-hub, read from GitHub
DEFAULT_HUB = "https://raw.githubusercontent.com/grycap/oscar-hub/main/crates"
#: environment variable naming another hub (URL or folder)
HUB_ENV = "OSCAR_HUB"
METADATA_FILE = "ro-crate-metadata.json"
GITHUB_API = "https://api.github.com"
#: largest hub file read (metadata, FDL, script)
MAX_FILE = 16 << 20
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RAW = re.compile(r"^https://raw\.githubusercontent\.com/([^/]+)/([^/]+)/([^/]+)(?:/(.*))?$")
_ARG_TYPES = {
    "file": "file",
    "mediaobject": "file",
    "imageobject": "file",
    "text": "str",
    "string": "str",
    "str": "str",
    "integer": "int",
    "int": "int",
    "float": "float",
    "number": "float",
    "boolean": "bool",
    "bool": "bool",
    "itemlist": "list",
    "collection": "list",
    "list": "list",
    "array": "list",
    "propertyvalue": "dict",
    "dict": "dict",
    "object": "dict",
}


# =============================================================================== metadata


def _ids(value: Any) -> list[str]:
    """``@id`` references in a JSON-LD value (a string, an object, or a list of them)."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Mapping):
        ref = value.get("@id")
        return [ref] if isinstance(ref, str) and ref else []
    if isinstance(value, list):
        return [ref for item in value for ref in _ids(item)]
    return []


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    return [] if isinstance(value, dict) else [str(value)]


def _types(entity: Mapping[str, Any]) -> set[str]:
    return set(_strings(entity.get("@type")))


@dataclass
class Crate:
    """What a crate's ``ro-crate-metadata.json`` says about its service."""

    slug: str
    name: str
    description: str = ""
    version: str | None = None
    license: str | None = None
    author: str | None = None
    memory: str | None = None
    processors: list[str] = field(default_factory=list)
    service_types: list[str] = field(default_factory=list)
    based_on: list[str] = field(default_factory=list)
    url: str | None = None
    files: list[str] = field(default_factory=list)
    #: the model's arguments (``FormalParameter`` inputs); None when the crate has none
    arguments: list[Argument] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "license": self.license,
            "author": self.author,
            "memory": self.memory,
            "processors": list(self.processors),
            "service_types": list(self.service_types),
            "based_on": list(self.based_on),
            "url": self.url,
            "files": list(self.files),
            "arguments": (
                None if self.arguments is None else [a.to_dict() for a in self.arguments]
            ),
        }


def _root(graph: list[Any]) -> dict[str, Any] | None:
    by_id = {e.get("@id"): e for e in graph if isinstance(e, dict)}
    descriptor = by_id.get(METADATA_FILE) or {}
    for ref in _ids(descriptor.get("about")) + ["./"]:
        if isinstance(by_id.get(ref), dict):
            return by_id[ref]
    return None


def _label(value: Any, by_id: Mapping[str, Any]) -> str | None:
    """A person, organisation or license as text: its name (resolved through ``@id``)."""
    if isinstance(value, list):
        names = [n for n in (_label(v, by_id) for v in value) if n]
        return ", ".join(names) or None
    if isinstance(value, Mapping):
        if value.get("name"):
            return str(value["name"])
        ref = value.get("@id")
        if isinstance(ref, str):
            entity = by_id.get(ref)
            if isinstance(entity, Mapping) and entity is not value:
                return _label(entity, by_id) or ref
            return ref
        return None
    if isinstance(value, str):
        entity = by_id.get(value)
        return _label(entity, by_id) if isinstance(entity, Mapping) else value
    return None


def crate_arguments(slug: str, graph: list[Any]) -> list[Argument] | None:
    """The model arguments a crate declares (``FormalParameter`` entities in the root's
    ``input``), or None when it declares none. ValidationError on a malformed one."""
    root = _root(graph)
    refs = _ids((root or {}).get("input"))
    if not refs:
        return None
    by_id = {e.get("@id"): e for e in graph if isinstance(e, dict)}
    args: list[Argument] = []
    for ref in refs:
        entity = by_id.get(ref)
        where = f"crate {slug!r}: input {ref!r}"
        if not isinstance(entity, dict) or "FormalParameter" not in _types(entity):
            raise ValidationError(f"{where} is not a FormalParameter entity of the crate")
        name = entity.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"{where} has no name")
        words = [
            w.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for w in _strings(entity.get("additionalType"))
        ]
        kind = next((_ARG_TYPES[w.lower()] for w in words if w.lower() in _ARG_TYPES), "str")
        if "encodingFormat" in entity and kind == "str" and not words:
            kind = "file"  # a parameter with a media type and no other type is a file
        arg = Argument(
            name=name.strip(),
            type=kind,
            required=entity.get("valueRequired") in (True, "true", "True"),
            help=str(entity.get("description") or ""),
        )
        default = entity.get("defaultValue")
        if default is not None and kind != "file":
            arg = replace(arg, default=arg.coerce(default))
        args.append(arg)
    return args


def parse_crate(slug: str, data: Any) -> Crate:
    """The :class:`Crate` described by the parsed ``ro-crate-metadata.json`` ``data``."""
    graph = data.get("@graph") if isinstance(data, dict) else None
    if not isinstance(graph, list) or not graph:
        raise ValidationError(f"crate {slug!r}: {METADATA_FILE} has no '@graph' list")
    root = _root(graph)
    if root is None:
        raise ValidationError(f"crate {slug!r}: {METADATA_FILE} has no root data entity './'")
    by_id = {e.get("@id"): e for e in graph if isinstance(e, dict)}
    files = [
        ref
        for ref in _ids(root.get("hasPart"))
        if not ref.startswith(("#", "http:", "https:")) and "File" in _types(by_id.get(ref, {}))
    ]
    based = [str((by_id.get(ref) or {}).get("url") or ref) for ref in _ids(root.get("isBasedOn"))]
    return Crate(
        slug=slug,
        name=str(root.get("name") or slug),
        description=" ".join(str(root.get("description") or "").split()),
        version=None if root.get("version") is None else str(root["version"]),
        license=_label(root.get("license"), by_id),
        author=_label(root.get("author") or root.get("creator"), by_id),
        memory=None if root.get("memoryRequirements") is None else str(root["memoryRequirements"]),
        processors=_strings(root.get("processorRequirements")),
        service_types=_strings(root.get("serviceType")),
        based_on=based,
        url=None if root.get("url") is None else str(root["url"]),
        files=files,
        arguments=crate_arguments(slug, graph),
    )


def rename_service(svc: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``svc`` named ``name``, its MinIO buckets too; returns it and ``{old path: new path}``.

    Every MinIO ``input``/``output``/``mount`` path ``<bucket>/<dir>`` becomes
    ``<name>/<dir>``, so the copy never watches nor writes the original's buckets.
    """
    out = copy.deepcopy(svc)
    moved: dict[str, str] = {}

    def move(item: dict[str, Any]) -> None:
        provider = str(item.get("storage_provider") or "minio")
        path = str(item.get("path") or "").strip("/")
        if not path or provider.split(".", 1)[0] != "minio":
            return
        bucket, _, rest = path.partition("/")
        if bucket != name:
            new = f"{name}/{rest}" if rest else name
            moved[path] = new
            item["path"] = new

    for key in ("input", "output"):
        for item in out.get(key) or []:
            if isinstance(item, dict):
                move(item)
    if isinstance(out.get("mount"), dict):
        move(out["mount"])
    out["name"] = name
    return validate_service(out), moved


# =============================================================================== the hub


def _check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not _SLUG.match(slug) or ".." in slug:
        raise ValidationError(
            f"{slug!r} is not a crate name: use letters, digits, '.', '_' and '-' "
            "(see `oscar-elyra hub ls`)"
        )
    return slug


class Hub:
    """An OSCAR Hub: a local folder or a URL of crate folders (see the module docstring)."""

    def __init__(self, location: str | os.PathLike[str] | None = None, *, timeout: float = 30.0):
        raw = location if location is not None else os.environ.get(HUB_ENV, "").strip()
        text = str(raw or DEFAULT_HUB)
        self.timeout = timeout
        self.folder: Path | None = None
        self.url: str | None = None
        if re.match(r"^https?://", text):
            self.url = text.rstrip("/")
        else:
            folder = Path(text).expanduser()
            if not folder.is_dir():
                raise ValidationError(
                    f"OSCAR Hub {text!r} is neither an http(s) URL nor an existing folder"
                )
            self.folder = folder / "crates" if (folder / "crates").is_dir() else folder
        self.location = str(self.folder) if self.folder is not None else str(self.url)

    def __repr__(self) -> str:
        return f"Hub({self.location!r})"

    # -- reading ------------------------------------------------------------------------
    def _get(self, url: str, what: str, *, accept: str | None = None) -> bytes:
        headers = {"User-Agent": "oscar-elyra"}
        if accept:
            headers["Accept"] = accept
        try:
            with requests.get(url, headers=headers, stream=True, timeout=(10, self.timeout)) as r:
                if r.status_code == 404:
                    raise NotFoundError(f"OSCAR Hub: {what} not found ({url})")
                if r.status_code >= 400:
                    raise ServiceError(
                        f"OSCAR Hub answered {r.status_code} for {what} ({url}): "
                        f"{redact(r.text[:200])}",
                        status=r.status_code,
                    )
                data = bytearray()
                for chunk in r.iter_content(1 << 16):
                    data += chunk
                    if len(data) > MAX_FILE:
                        raise ValidationError(
                            f"OSCAR Hub: {what} is larger than {MAX_FILE >> 20} MB ({url})"
                        )
                return bytes(data)
        except requests.RequestException as exc:
            raise ServiceError(
                f"cannot reach the OSCAR Hub at {self.location} ({exc.__class__.__name__}); "
                f"use --hub URL|DIR or {HUB_ENV} to name a reachable hub or a local folder"
            ) from None

    def read(self, slug: str, name: str) -> bytes:
        """The bytes of file ``name`` (a relative path) of crate ``slug``."""
        _check_slug(slug)
        if self.folder is not None:
            path = safe_join_fast(self.folder / slug, name)  # the folder's own symlinks are fine
            if not path.is_file():
                raise NotFoundError(f"OSCAR Hub: crate {slug!r} has no file {name!r}")
            if path.stat().st_size > MAX_FILE:
                raise ValidationError(f"OSCAR Hub: {slug}/{name} is larger than 16 MB")
            return path.read_bytes()
        rel = safe_join("/", name).relative_to("/")  # refuses absolute paths and '..'
        url = f"{self.url}/{quote(slug)}/{quote(rel.as_posix())}"
        return self._get(url, f"{slug}/{name}")

    def slugs(self) -> list[str]:
        """The crate names of the hub, sorted."""
        if self.folder is not None:
            return sorted(
                p.name
                for p in self.folder.iterdir()
                if p.is_dir() and _SLUG.match(p.name) and (p / METADATA_FILE).is_file()
            )
        api = github_contents_url(str(self.url))
        if api is not None:
            listing = self._json(
                self._get(api, "the crate list", accept="application/vnd.github+json"), api
            )
            names = [
                e.get("name") for e in listing if isinstance(e, dict) and e.get("type") == "dir"
            ]
        else:
            url = f"{self.url}/index.json"
            listing = self._json(self._get(url, "index.json"), url)
            names = [e.get("slug") if isinstance(e, dict) else e for e in listing]
        if not isinstance(listing, list):
            raise ServiceError(f"OSCAR Hub: the crate list at {self.location} is not a JSON list")
        return sorted({str(n) for n in names if isinstance(n, str) and _SLUG.match(n)})

    @staticmethod
    def _json(data: bytes, where: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ServiceError(f"OSCAR Hub: {where} is not JSON: {exc}") from None

    def crate(self, slug: str) -> Crate:
        """The metadata of crate ``slug`` (ValidationError naming the hub if it has none)."""
        try:
            raw = self.read(slug, METADATA_FILE)
        except NotFoundError:
            raise ValidationError(
                f"OSCAR Hub {self.location} has no crate {slug!r} (see `oscar-elyra hub ls`)"
            ) from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"crate {slug!r}: {METADATA_FILE} is not JSON: {exc}") from None
        return parse_crate(slug, data)

    def crates(self) -> tuple[list[Crate], dict[str, str]]:
        """Every readable crate, and ``{slug: error}`` for those that could not be read."""
        found, broken = [], {}
        for slug in self.slugs():
            try:
                found.append(self.crate(slug))
            except (ValidationError, NotFoundError, ServiceError) as exc:
                broken[slug] = str(exc)
        return found, broken

    def fdl_name(self, slug: str, crate: Crate | None = None) -> str:
        """The crate's FDL file: a YAML part of the crate, ``fdl.yml``, or ``<slug>.yaml``."""
        crate = crate or self.crate(slug)
        parts = [f for f in crate.files if f.lower().endswith((".yml", ".yaml"))]
        for name in parts + ["fdl.yml", "fdl.yaml", f"{slug}.yaml", f"{slug}.yml"]:
            try:
                self.read(slug, name)
                return name
            except NotFoundError:
                continue
        raise NotFoundError(f"crate {slug!r} has no FDL file (fdl.yml)")

    def download(self, slug: str, dest: str | os.PathLike[str]) -> Path:
        """Write the crate's FDL and the scripts it names into ``dest``; returns the FDL path."""
        crate = self.crate(slug)
        fdl = self.fdl_name(slug, crate)
        text = self.read(slug, fdl)
        target = _write(dest, fdl, text)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ValidationError(f"crate {slug!r}: {fdl} is not valid YAML") from None
        for script in _scripts(doc):
            _write(dest, script, self.read(slug, script))
        return target

    def services(self, slug: str) -> list[dict[str, Any]]:
        """The crate's services as OSCAR Service JSON (script inlined, validated)."""
        with tempfile.TemporaryDirectory(prefix="oscar-hub-") as tmp:
            return load_fdl(self.download(slug, tmp))

    def deploy(
        self, slug: str, *, name: str | None = None, session: Session | None = None
    ) -> list[dict[str, Any]]:
        """Create or update the crate's service(s) on the cluster (``name`` renames, with
        its buckets). Returns ``[{"name", "action", "image", "moved"}]``; everything is
        read and validated before anything is sent."""
        services = self.services(slug)
        if name:
            if len(services) != 1:
                raise ValidationError(
                    f"crate {slug!r} defines {len(services)} services; --name renames only one"
                )
            renamed = [rename_service(services[0], name)]
        else:
            renamed = [(svc, {}) for svc in services]
        sess = session if session is not None else connect()
        done = []
        for svc, moved in renamed:
            action = sess.client.apply_service(svc)
            done.append(
                {"name": svc["name"], "action": action, "image": svc.get("image"), "moved": moved}
            )
        return done


def _scripts(doc: Any) -> Iterator[str]:
    funcs = doc.get("functions") if isinstance(doc, dict) else None
    entries = funcs.get("oscar") if isinstance(funcs, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        for svc in entry.values() if isinstance(entry, dict) else []:
            script = svc.get("script") if isinstance(svc, dict) else None
            if isinstance(script, str) and script:
                yield script


def _write(dest: str | os.PathLike[str], name: str, data: bytes) -> Path:
    target = safe_join(dest, name)
    fd, tmp = temp_near(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def github_contents_url(raw_url: str) -> str | None:
    """The GitHub contents API URL listing the folder of a ``raw.githubusercontent.com`` URL."""
    m = _RAW.match(raw_url.rstrip("/"))
    if m is None:
        return None
    owner, repo, ref, path = m.groups()
    tail = f"/{path.strip('/')}" if path and path.strip("/") else ""
    return f"{GITHUB_API}/repos/{owner}/{repo}/contents{tail}?ref={quote(ref)}"
