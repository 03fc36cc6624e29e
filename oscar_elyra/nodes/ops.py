"""The operations of the OSCAR pipeline nodes, one implementation each.

Used by the notebooks in ``notebooks/`` (generic Elyra nodes) and by the palette entry points
(``python -m oscar_elyra.palette.<name>``). Every operation takes and returns
:class:`~oscar_elyra.artifacts.Artifact` lists; data stays in object storage. Connections come
from :func:`oscar_elyra.session.connect` (the OSCAR_* environment variables or the oscar-cli
config), never from node parameters.
"""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra import invoke
from oscar_elyra._paths import slug
from oscar_elyra.artifacts import Artifact, check_node_name, fetch, read_manifest, run_name
from oscar_elyra.client import OscarClient
from oscar_elyra.errors import NotFoundError, OscarError, ServiceError, ValidationError
from oscar_elyra.invoke.jobs import async_paths
from oscar_elyra.session import connect
from oscar_elyra.storage import ObjectStore, parse_uri

__all__ = [
    "DEFAULT_ARTIFACTS_URI",
    "artifacts_prefix",
    "deploy",
    "download",
    "invoke_async",
    "invoke_sync",
    "load_manifest_artifacts",
    "output_prefix",
    "require_service",
    "store_file",
    "upload",
]

#: object storage prefix for node outputs (overridable with OSCAR_ARTIFACTS_URI)
DEFAULT_ARTIFACTS_URI = "s3://oscar-elyra/runs"


# --------------------------------------------------------------------------- where outputs go


def artifacts_prefix(node: str, destination: str | None = None) -> str:
    """Object storage prefix (ending in ``/``) where ``node`` stores its outputs.

    ``destination`` if given, else ``$OSCAR_ARTIFACTS_URI/<run>/<node>/`` (default base
    ``s3://oscar-elyra/runs``): every run writes to a fresh prefix, so nothing is overwritten.
    """
    if destination and destination.strip():
        prefix = destination.strip()
    else:
        base = os.environ.get("OSCAR_ARTIFACTS_URI", "").strip() or DEFAULT_ARTIFACTS_URI
        prefix = f"{base.rstrip('/')}/{slug(run_name())}/{check_node_name(node)}"
    return prefix if prefix.endswith("/") else prefix + "/"


def output_prefix(store: ObjectStore, node: str, destination: str | None = None) -> str:
    """:func:`artifacts_prefix`, with its bucket created when missing."""
    prefix = artifacts_prefix(node, destination)
    store.ensure_bucket(parse_uri(prefix)[0])
    return prefix


def _artifact(store: ObjectStore, info: Any, **provenance: Any) -> Artifact:
    """Artifact for a stored object, computing its sha256 (streamed) when it was not stored."""
    if getattr(info, "sha256", None) is None or getattr(info, "size", None) is None:
        info = store.stat(info.uri)
    art = Artifact.from_object(info, **provenance)
    if not art.sha256:
        art.sha256 = store.sha256(art.uri)
    return art


def store_file(
    store: ObjectStore,
    file: str | os.PathLike[str],
    prefix: str,
    name: str,
    /,
    *,
    content_type: str | None = None,
    **provenance: Any,
) -> Artifact:
    """Upload ``file`` as ``<prefix><name>``; its artifact, with ``name`` and ``provenance``
    (Artifact fields such as node, service, run, source, path)."""
    info = store.put_file(file, prefix + name.lstrip("/"), content_type=content_type)
    return _artifact(store, info, name=name, **provenance)


# --------------------------------------------------------------------------- upload / download


def upload(
    source: str | os.PathLike[str],
    *,
    destination: str | None = None,
    pattern: str = "*",
    node: str = "upload",
    store: ObjectStore | None = None,
) -> list[Artifact]:
    """Upload a local file, or a folder's files matching ``pattern``, to object storage."""
    src = Path(source)
    if not src.exists():
        raise ValidationError(f"input folder or file {str(src)!r} does not exist")
    if src.is_dir():
        files = sorted(p for p in src.rglob(pattern or "*") if p.is_file())
        if not files:
            raise ValidationError(f"no files matching {pattern!r} in input folder {str(src)!r}")
        names = [p.relative_to(src).as_posix() for p in files]
    else:
        files, names = [src], [src.name]
    store = store if store is not None else connect().store
    prefix = output_prefix(store, node, destination)
    return [
        store_file(store, path, prefix, name, node=node, run=run_name(), source=str(path))
        for path, name in zip(files, names, strict=True)
    ]


def download(
    inputs: Iterable[Artifact],
    destination: str | os.PathLike[str],
    *,
    node: str = "download",
    store: ObjectStore | None = None,
) -> list[Artifact]:
    """Download artifacts (sha256 checked) into ``destination``; returns them with ``path``."""
    arts = list(inputs)
    if not arts:
        raise ValidationError("nothing to download: the upstream node produced no artifacts")
    store = store if store is not None else connect().store
    paths = fetch(arts, destination, store=store)
    result = []
    for art, path in zip(arts, paths, strict=True):
        copy = Artifact.from_dict(art.to_dict())
        copy.path = str(Path(path).resolve())
        copy.node, copy.run = node, run_name()
        copy.source = art.uri
        result.append(copy)
    return result


def load_manifest_artifacts(paths: Iterable[str | os.PathLike[str]]) -> list[Artifact]:
    """Artifacts of the manifest files at ``paths`` (KFP ``inputPath`` files)."""
    arts: list[Artifact] = []
    for path in paths:
        arts.extend(read_manifest(path).artifacts)
    return arts


# --------------------------------------------------------------------------- services


def require_service(client: OscarClient, service: str) -> dict:
    """The service definition, or a NotFoundError saying the service is not deployed."""
    try:
        return client.get_service(service)
    except NotFoundError:
        raise NotFoundError(
            f"service {service!r} is not deployed on {client.endpoint}: "
            "deploy it first (deploy_service node or `oscar-elyra services apply FDL`)"
        ) from None


def _guess_suffix(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(512)
    if head.startswith(b"\x89PNG"):
        return ".png"
    if head.startswith(b"\xff\xd8"):
        return ".jpg"
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return ".json"
    except (UnicodeDecodeError, ValueError):
        pass
    try:
        path.read_text(encoding="utf-8")
        return ".txt"
    except UnicodeDecodeError:
        return ".bin"


def _result_files(result: Any) -> list[Path]:
    """Local files of an :class:`oscar_elyra.invoke.Result` written into the output folder."""
    paths = [Path(p) for p in result.paths if Path(p).is_file()]
    if not paths:
        raise ServiceError(f"service {result.service!r} answered nothing to store")
    return paths


def invoke_sync(
    service: str,
    inputs: Sequence[Artifact] | Sequence[str | os.PathLike[str]] | str,
    *,
    destination: str | None = None,
    node: str | None = None,
    timeout: float = 300,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
) -> list[Artifact]:
    """Call ``service`` synchronously once per input and store each result.

    ``inputs``: artifacts from upstream nodes, local file paths, or a text (one call).
    A single output is stored as ``<input stem><suffix>``; several as ``<input stem>/<name>``.
    """
    node = node or service
    client, store = connect(client=client, store=store)
    require_service(client, service)
    prefix = output_prefix(store, node, destination)
    results: list[Artifact] = []
    with tempfile.TemporaryDirectory(prefix="oscar-sync-") as tmp:
        work = Path(tmp)
        # (stem, artifact or local path or text, source); artifacts are fetched one at a time
        items: list[tuple[str, Any, str | None]] = []
        if isinstance(inputs, str):
            items.append(("text", inputs, None))
        else:
            for item in inputs:
                if isinstance(item, Artifact):
                    stem = str(PurePosixPath(item.name).with_suffix(""))
                    items.append((stem, item, item.uri))
                else:
                    path = Path(item)
                    if not path.is_file():
                        raise ValidationError(f"input file {str(path)!r} does not exist")
                    items.append((path.stem, path, str(path)))
        if not items:
            raise ValidationError(f"nothing to send to {service!r}: no inputs")
        used: set[str] = set()
        for n, (stem, item, source) in enumerate(items):
            payload = item
            if isinstance(item, Artifact):
                payload = fetch([item], work / f"in-{n}", store=store)[0]
            out_dir = work / f"out-{n}"
            out_dir.mkdir()
            result = invoke.run(service, payload, out_dir, client=client, timeout=timeout)
            files = _result_files(result)
            if stem in used:  # two inputs with the same stem: keep both results
                stem = f"{stem}-{n}"
            used.add(stem)
            for path in files:
                if len(files) == 1:
                    name = stem + (path.suffix or _guess_suffix(path))
                else:
                    name = f"{stem}/{path.relative_to(out_dir).as_posix()}"
                art = store_file(
                    store,
                    path,
                    prefix,
                    name,
                    content_type=mimetypes.guess_type(name)[0],
                    node=node,
                    service=service,
                    run=run_name(),
                    source=source,
                )
                results.append(art)
            if isinstance(item, Artifact):
                Path(payload).unlink(missing_ok=True)
            for path in files:
                Path(path).unlink(missing_ok=True)
    return results


def invoke_async(
    service: str,
    inputs: Sequence[Artifact] | Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 600,
    node: str | None = None,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
) -> list[Artifact]:
    """Put each input in ``service``'s input path, wait for exactly their outputs, list them."""
    node = node or service
    client, store = connect(client=client, store=store)
    svc = require_service(client, service)
    async_paths(service, svc)  # the one rule for bucket-triggered jobs, before any download
    arts = list(inputs)
    if not arts:
        raise ValidationError(f"nothing to send to {service!r}: no inputs")
    with tempfile.TemporaryDirectory(prefix="oscar-async-") as tmp:
        files, sources = [], []
        for n, item in enumerate(arts):
            if isinstance(item, Artifact):
                files.append(fetch([item], Path(tmp) / f"in-{n}", store=store)[0])
                sources.append(item.uri)
            else:
                path = Path(item)
                if not path.is_file():
                    raise ValidationError(f"input file {str(path)!r} does not exist")
                files.append(path)
                sources.append(str(path))
        jobs = invoke.submit(
            service, files, client=client, store=store, run_id=run_name(), service_def=svc
        )
        jobs = invoke.wait(jobs, timeout=timeout)  # ServiceError/TimeoutError on failure
    results = []
    source_by_file = {str(f): s for f, s in zip(files, sources, strict=True)}
    for job in jobs:
        source = source_by_file.get(str(job.input), job.input_uri)
        for uri in job.outputs:
            results.append(
                _artifact(
                    store,
                    store.stat(uri),
                    name=job.output_name(uri),
                    node=node,
                    service=service,
                    job=job.job_name,
                    run=run_name(),
                    source=source,
                )
            )
    if not results:
        raise ServiceError(f"the {service!r} jobs succeeded but wrote no outputs")
    return results


def deploy(
    fdl: str | os.PathLike[str], *, timeout: float = 120, client: OscarClient | None = None
) -> list[dict]:
    """Create or update the services of an FDL file (a path or the YAML text) and wait for them.

    Script paths in inline YAML text are relative to the working directory.

    Returns ``[{"service": name, "action": "created"|"updated"}, ...]``.
    """
    client = connect(client=client).client
    text = str(fdl)
    if "\n" in text or text.lstrip().startswith("functions:"):
        # inline FDL: its script paths are relative to the working directory
        fd, name = tempfile.mkstemp(prefix=".oscar-fdl-", suffix=".yaml", dir=Path.cwd())
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            applied = client.apply_fdl(name)
        finally:
            Path(name).unlink(missing_ok=True)
    else:
        path = Path(text)
        if not path.is_file():
            raise ValidationError(f"FDL file {text!r} does not exist")
        applied = client.apply_fdl(path)
    deadline = time.monotonic() + timeout
    for name, _action in applied:
        while True:
            try:
                client.get_service(name)
                break
            except OscarError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    return [{"service": name, "action": action} for name, action in applied]
