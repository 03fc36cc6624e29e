"""Artifact manifests passed between pipeline nodes.

Files stay in object storage; a node passes its successors a small JSON *manifest*: for each
artifact its URI, size, sha256, content type, and the node/service/job that produced it, plus
the run name. Never pickles, never credentials.

A generic (notebook) node writes its manifest to ``runs/<node>.manifest.json`` relative to its
working directory and declares that path in the node's ``outputs``. On Elyra's local runtime every
node runs in the notebook's folder, so later nodes find it there; on Kubeflow Pipelines Elyra's
bootstrapper uploads declared outputs and downloads them into every descendant's working
directory. :func:`inputs` reads the manifests of the current run (``ELYRA_RUN_NAME``): manifests
left in the folder by older runs are ignored. Palette components pass the same manifest through
KFP ``outputPath``/``inputPath`` files instead (:func:`read_manifest`, :func:`write_manifest`).

Opt-in: ``publish(..., presign=SECONDS)`` adds to each artifact a presigned download URL
(``url``) and its expiry (``url_expires``), made by the cluster (``POST
/system/buckets/{bucket}/presign``), so that a consumer without the cluster's S3 keys can
:func:`fetch` it until then. Such a URL grants reading that one object to whoever holds
the manifest: use it only for manifests you mean to share.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from oscar_elyra._paths import safe_join, sha256_file, slug, temp_near, write_json_atomic
from oscar_elyra.errors import IntegrityError, StorageError, ValidationError
from oscar_elyra.session import connect
from oscar_elyra.storage import parse_uri

__all__ = [
    "INTERACTIVE_RUN",
    "MANIFEST_KIND",
    "MANIFEST_SUFFIX",
    "MANIFEST_VERSION",
    "RUNS_DIR",
    "Artifact",
    "Manifest",
    "check_node_name",
    "fetch",
    "inputs",
    "local_dir",
    "manifest_path",
    "manifests",
    "presign_urls",
    "publish",
    "read_manifest",
    "run_name",
    "runtime_env",
    "write_manifest",
]

#: folder (relative to the node's working directory) holding manifests and local outputs
RUNS_DIR = "runs"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "oscar-elyra/manifest"
MANIFEST_VERSION = 1
#: run name used outside a pipeline (no ELYRA_RUN_NAME)
INTERACTIVE_RUN = "interactive"

_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Artifact:
    """One object in object storage (and optionally its local copy)."""

    uri: str
    size: int
    sha256: str | None = None
    content_type: str = "application/octet-stream"
    name: str = ""
    node: str | None = None
    service: str | None = None
    job: str | None = None
    run: str | None = None
    source: str | None = None  # URI of the artifact this one was computed from
    path: str | None = None  # local copy, when a node downloaded it
    url: str | None = None  # presigned download URL (opt-in, see publish(presign=...))
    url_expires: str | None = None  # when ``url`` stops working (RFC 3339, UTC)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.uri.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Artifact:
        """Build from a manifest entry (unknown keys ignored; ``uri`` and ``size`` required)."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"malformed artifact entry {data!r}: not an object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        problem = None
        if not isinstance(values.get("uri"), str) or not values.get("uri"):
            problem = "'uri' must be a non-empty string"
        elif isinstance(values.get("size"), bool) or not isinstance(values.get("size"), int):
            problem = "'size' must be an integer"
        elif any(
            v is not None and not isinstance(v, str)
            for k, v in values.items()
            if k not in ("uri", "size")
        ):
            problem = "its fields other than 'size' must be strings"
        if problem is not None:
            raise ValidationError(f"malformed artifact entry: {problem}")
        values.setdefault("sha256", None)
        return cls(**values)

    @classmethod
    def from_object(cls, info: Any, **extra: Any) -> Artifact:
        """Build from a :class:`oscar_elyra.storage.ObjectInfo` plus provenance fields."""
        return cls(
            uri=info.uri,
            size=int(info.size),
            sha256=getattr(info, "sha256", None),
            content_type=getattr(info, "content_type", None) or "application/octet-stream",
            **extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (None values dropped)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Manifest:
    """What one node produced in one run."""

    node: str
    run: str
    artifacts: list[Artifact] = field(default_factory=list)
    runtime: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": MANIFEST_KIND,
            "version": MANIFEST_VERSION,
            "node": self.node,
            "run": self.run,
            "runtime": self.runtime,
            "created": self.created,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "manifest") -> Manifest:
        if not isinstance(data, Mapping) or data.get("kind") != MANIFEST_KIND:
            raise ValidationError(f"{source} is not an oscar-elyra artifact manifest")
        arts = data.get("artifacts")
        if not isinstance(arts, list):
            raise ValidationError(f"{source}: 'artifacts' must be a list")
        return cls(
            node=str(data.get("node", "")),
            run=str(data.get("run", "")),
            artifacts=[Artifact.from_dict(a) for a in arts],
            runtime=str(data.get("runtime", "")),
            created=str(data.get("created", "")),
            extra=_extra(data.get("extra"), source),
        )


def _extra(value: Any, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{source}: 'extra' must be an object")
    return dict(value)


def run_name(env: Mapping[str, str] | None = None) -> str:
    """The current run's name: ``ELYRA_RUN_NAME`` (set by Elyra) or ``"interactive"``."""
    env = os.environ if env is None else env
    return env.get("ELYRA_RUN_NAME") or INTERACTIVE_RUN


def runtime_env(env: Mapping[str, str] | None = None) -> str:
    """``ELYRA_RUNTIME_ENV`` as Elyra sets it ("local", "kfp", ...) or "" outside Elyra."""
    env = os.environ if env is None else env
    return env.get("ELYRA_RUNTIME_ENV", "")


def check_node_name(node: str) -> str:
    """Validate a node name used in file names and object keys."""
    if not isinstance(node, str) or not _NODE_RE.match(node):
        raise ValidationError(
            f"invalid node name {node!r}: use 1-100 letters, digits, '.', '_' or '-' "
            "(it names the manifest file)"
        )
    return node


def manifest_path(node: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Where node ``node`` writes its manifest: ``<directory>/runs/<node>.manifest.json``.

    Declare ``runs/<node>.manifest.json`` in the node's ``outputs`` so Kubeflow Pipelines
    passes it on.
    """
    base = Path(directory) if directory is not None else Path.cwd()
    return base / RUNS_DIR / f"{check_node_name(node)}{MANIFEST_SUFFIX}"


def local_dir(node: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Folder for a node's local files in this run: ``<directory>/runs/<run>/<node>``."""
    base = Path(directory) if directory is not None else Path.cwd()
    return base / RUNS_DIR / slug(run_name()) / check_node_name(node)


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> Path:
    """Write ``manifest`` as JSON atomically (temp file then rename)."""
    path = Path(path)
    write_json_atomic(path, manifest.to_dict())
    return path


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read one manifest file (ValidationError naming the file when it is not one)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"manifest file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read manifest {path}: {exc}") from exc
    return Manifest.from_dict(data, source=str(path))


def _as_artifact(item: Any, **provenance: Any) -> Artifact:
    if isinstance(item, Artifact):
        art = Artifact.from_dict(item.to_dict())
    elif isinstance(item, Mapping):
        art = Artifact.from_dict(item)
    elif hasattr(item, "uri") and hasattr(item, "size"):
        art = Artifact.from_object(item)
    else:
        raise ValidationError(f"cannot publish {item!r}: expected an Artifact, dict or ObjectInfo")
    for key, value in provenance.items():
        if value is not None and getattr(art, key) is None:
            setattr(art, key, value)
    return art


def publish(
    artifacts: Iterable[Any],
    node: str,
    *,
    service: str | None = None,
    directory: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    presign: int | None = None,
    client: Any = None,
) -> Path:
    """Write this node's manifest for the current run and return its path.

    ``artifacts`` are :class:`Artifact`, manifest dicts or ``ObjectInfo``; the node, run and
    (when given) service are filled in where missing. ``path`` overrides the default location
    (:func:`manifest_path`), e.g. a KFP ``outputPath``. ``presign``: seconds for which each
    artifact also gets a presigned download URL (``url``, ``url_expires``) from the cluster
    (``client``, default: :func:`~oscar_elyra.session.connect`'s).
    """
    run = run_name()
    arts = [
        _as_artifact(a, node=check_node_name(node), service=service, run=run) for a in artifacts
    ]
    if presign is not None:
        presign_urls(arts, presign, client=client)
    manifest = Manifest(
        node=node,
        run=run,
        artifacts=arts,
        runtime=runtime_env(),
        created=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        extra=dict(extra or {}),
    )
    return write_manifest(manifest, path if path is not None else manifest_path(node, directory))


def manifests(
    directory: str | os.PathLike[str] | None = None, *, run: str | None = None
) -> list[Manifest]:
    """Every manifest of run ``run`` (default: the current run) in ``directory``, oldest first."""
    base = Path(directory) if directory is not None else Path.cwd()
    run = run or run_name()
    found = []
    for path in sorted((base / RUNS_DIR).glob(f"*{MANIFEST_SUFFIX}")):
        try:
            manifest = read_manifest(path)
        except ValidationError:
            continue  # not ours, or half-written by something else
        if manifest.run == run:
            found.append(manifest)
    return sorted(found, key=lambda m: m.created)


def inputs(
    from_nodes: str | Iterable[str] | None = None,
    *,
    exclude: str | None = None,
    directory: str | os.PathLike[str] | None = None,
) -> list[Artifact]:
    """What upstream nodes produced in this run.

    ``from_nodes`` names the producing node(s) (a name, a comma-separated string or a list);
    without it, the artifacts of the most recent non-empty manifest of this run (other than
    ``exclude``, usually the calling node) are returned: the direct predecessor in a chain.
    Raises ValidationError naming the available nodes when nothing matches.
    """
    found = [m for m in manifests(directory) if m.node != exclude]
    available = ", ".join(sorted({m.node for m in found if m.artifacts})) or "none"
    if from_nodes:
        names = (
            [n.strip() for n in from_nodes.split(",")]
            if isinstance(from_nodes, str)
            else list(from_nodes)
        )
        names = [n for n in names if n]
        result: list[Artifact] = []
        for name in names:
            chosen = [m for m in found if m.node == name]
            if not chosen:
                raise ValidationError(
                    f"no artifacts from node {name!r} in run {run_name()!r} "
                    f"(nodes with artifacts: {available}); "
                    "connect that node upstream or fix the name"
                )
            result.extend(chosen[-1].artifacts)
        return result
    found = [m for m in found if m.artifacts]  # e.g. a deploy node passes no files
    if not found:
        raise ValidationError(
            f"no upstream artifacts in run {run_name()!r}: connect an upload or OSCAR node before "
            "this one, or give input files directly"
        )
    return list(found[-1].artifacts)


def presign_urls(arts: list[Artifact], seconds: int, *, client: Any = None) -> list[Artifact]:
    """Give each artifact a presigned download URL valid ``seconds`` (and its expiry)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ValidationError(f"presign={seconds!r}: give the URL lifetime in whole seconds >= 1")
    if client is None and arts:
        client = connect().client
    for art in arts:
        bucket, key = parse_uri(art.uri)
        data = client.presign(bucket, key, "download", expires_in=seconds)
        art.url, art.url_expires = data.get("url"), data.get("expires_at")
    return arts


def _expired(art: Artifact) -> bool:
    try:
        when = datetime.fromisoformat(str(art.url_expires).replace("Z", "+00:00"))
    except ValueError:
        return False  # unknown expiry: let the server decide
    return when <= datetime.now(timezone.utc)


def _get_url(art: Artifact, target: Path) -> None:
    """Download ``art`` through its presigned URL into ``target`` (streamed, atomic)."""
    if _expired(art):
        raise ValidationError(
            f"{art.uri}: its presigned URL expired at {art.url_expires}; fetch it with the "
            "cluster's keys (an OSCAR_* setting) or publish it again"
        )
    fd, tmp = temp_near(target)
    try:
        with os.fdopen(fd, "wb") as fh, requests.get(art.url, stream=True, timeout=(10, 300)) as r:
            if r.status_code != 200:
                raise StorageError(
                    f"{art.uri}: the presigned URL was refused ({r.status_code}); it may have "
                    f"expired ({art.url_expires}) or the object is gone"
                )
            for chunk in r.iter_content(1 << 20):
                fh.write(chunk)
        os.replace(tmp, target)
    except requests.RequestException as exc:
        raise StorageError(f"{art.uri}: download through its presigned URL failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    artifacts: Iterable[Artifact | Mapping[str, Any]],
    dest_dir: str | os.PathLike[str],
    *,
    store: Any = None,
) -> list[Path]:
    """Download artifacts into ``dest_dir`` (by name) and check their size and sha256.

    Returns the local paths in the same order. ``store`` is an ObjectStore (default: the
    cluster's, from the OSCAR_* environment / oscar-cli config). Without ``store``, an
    artifact with a presigned ``url`` is downloaded through it (no S3 keys needed).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    arts = [a if isinstance(a, Artifact) else Artifact.from_dict(a) for a in artifacts]
    use_urls = store is None
    if store is None and any(not a.url for a in arts):
        store = connect().store
    paths = []
    for art in arts:
        target = safe_join(dest, art.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if use_urls and art.url:
            _get_url(art, target)
        else:
            store.get_file(art.uri, target)
        size = target.stat().st_size
        if size != art.size:
            target.unlink(missing_ok=True)
            raise IntegrityError(f"{art.uri}: downloaded {size} bytes, manifest says {art.size}")
        if art.sha256 and sha256_file(target) != art.sha256:
            target.unlink(missing_ok=True)
            raise IntegrityError(f"{art.uri}: sha256 differs from the manifest")
        paths.append(target)
    return paths
