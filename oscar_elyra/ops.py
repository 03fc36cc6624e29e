"""The operations of the OSCAR pipeline nodes, one implementation each.

Used by the notebooks in ``notebooks/`` (generic Elyra nodes) and by the palette components'
entry points (``python -m oscar_elyra.components.<name>``). Every operation takes and returns
:class:`~oscar_elyra.artifacts.Artifact` lists; data stays in object storage. Connection
settings come from the OSCAR_* environment variables or the oscar-cli config
(:func:`oscar_elyra.config.resolve_cluster`), never from node parameters.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra.artifacts import Artifact, check_node_name, fetch, run_name
from oscar_elyra.errors import NotFoundError, OscarError, ServiceError, ValidationError

#: object storage prefix for node outputs (overridable with OSCAR_ARTIFACTS_URI)
DEFAULT_ARTIFACTS_URI = "s3://oscar-elyra/runs"


class ParameterError(ValidationError):
    """A node parameter (environment variable) is missing or wrong.

    The message is one line naming the variable and what it expects; in a notebook the
    traceback is just that line (IPython's ``_render_traceback_`` hook).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


# --------------------------------------------------------------------------- parameters


def require(name: str, value: Any, expects: str) -> str:
    """``value`` as a stripped non-empty string, or ParameterError naming ``name``."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ParameterError(f"{name} is not set: expected {expects}")
    return text


def as_int(name: str, value: Any, *, minimum: int = 0, default: int | None = None) -> int:
    """``value`` as an integer >= ``minimum`` (empty -> ``default``), else ParameterError."""
    text = "" if value is None else str(value).strip()
    if not text and default is not None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise ParameterError(
            f"{name}={text!r} is not a whole number: expected an integer >= {minimum}"
        ) from None
    if number < minimum:
        raise ParameterError(f"{name}={number} is too small: expected an integer >= {minimum}")
    return number


def as_node(name: str, value: Any) -> str:
    """A node name (letters, digits, '.', '_', '-') or ParameterError naming the variable."""
    text = require(name, value, "a node name made of letters, digits, '.', '_' or '-'")
    try:
        return check_node_name(text)
    except ValidationError:
        raise ParameterError(
            f"{name}={text!r} is not a valid node name: use letters, digits, '.', '_' or '-'"
        ) from None


def split_list(value: Any) -> list[str]:
    """Comma- or newline-separated text -> list of non-empty stripped items."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in re.split(r"[,\n]", str(value)) if v.strip()]


def check_source(name: str, value: str, *, want_file: bool = False) -> Path:
    """The existing local folder/file named by variable ``name``, else ParameterError."""
    path = Path(value).expanduser()
    if not path.exists() or (want_file and not path.is_file()):
        what = "file" if want_file else "folder or file"
        raise ParameterError(
            f"{name}={value!r}: no such {what} (relative paths start at {Path.cwd()})"
        )
    return path


def local_files(name: str, value: Any) -> list[Path]:
    """Files named by a comma-separated variable (folders expand to their files, sorted)."""
    files: list[Path] = []
    for item in split_list(value):
        path = check_source(name, item)
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    if not files:
        raise ParameterError(f"{name}={value!r} names no files: expected files or folders")
    return files


def show(artifacts: Sequence[Artifact], *, images: int = 6) -> Any:
    """Display artifacts in a notebook: a table, plus the first few PNG/JPEG images inline."""
    import pandas as pd

    table = pd.DataFrame(summary(artifacts))
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - plain Python
        return table
    if get_ipython() is None:
        return table
    display(table)
    shown = 0
    for art in artifacts:
        if shown >= images or not art.name.lower().endswith((".png", ".jpg", ".jpeg")):
            continue
        data = Path(art.path).read_bytes() if art.path else get_store().get_bytes(art.uri)
        display(Image(data=data))
        shown += 1
    return None


def short_errors() -> None:
    """In a notebook, show oscar_elyra errors as one (redacted) line instead of a traceback.

    The cell still fails, so papermill and Elyra stop the node and report the same line.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return
    from oscar_elyra.redact import redact

    def handler(shell, etype, evalue, tb, tb_offset=None):
        line = f"{etype.__name__}: {redact(str(evalue))}"
        shell._showtraceback(etype, evalue, [line])
        return [line]

    shell.set_custom_exc((OscarError,), handler)


# --------------------------------------------------------------------------- connections


def get_client(client: Any = None) -> Any:
    """``client``, or an OscarClient for the cluster resolved from the environment/config."""
    if client is not None:
        return client
    from oscar_elyra.client import OscarClient
    from oscar_elyra.config import resolve_cluster

    return OscarClient(resolve_cluster())


def get_store(store: Any = None, client: Any = None) -> Any:
    """``store``, or the cluster's ObjectStore (keys from ``/system/config``)."""
    if store is not None:
        return store
    from oscar_elyra.session import store_for

    return store_for(get_client(client), progress=False)


def connect(client: Any = None, store: Any = None) -> tuple[Any, Any]:
    """The OscarClient and ObjectStore to use (built from the environment when not given)."""
    client = get_client(client)
    return client, get_store(store, client)


def artifacts_prefix(node: str, destination: str | None = None) -> str:
    """Object storage prefix (ending in ``/``) where ``node`` stores its outputs.

    ``destination`` if given, else ``$OSCAR_ARTIFACTS_URI/<run>/<node>/`` (default base
    ``s3://oscar-elyra/runs``): every run writes to a fresh prefix, so nothing is overwritten.
    """
    if destination and destination.strip():
        prefix = destination.strip()
    else:
        base = os.environ.get("OSCAR_ARTIFACTS_URI", "").strip() or DEFAULT_ARTIFACTS_URI
        run = re.sub(r"[^A-Za-z0-9._-]", "_", run_name())
        prefix = f"{base.rstrip('/')}/{run}/{check_node_name(node)}"
    return prefix if prefix.endswith("/") else prefix + "/"


def _join(prefix: str, name: str) -> str:
    return prefix + name.lstrip("/")


def _ensure_bucket(store: Any, uri: str) -> None:
    from oscar_elyra.storage import parse_uri

    store.ensure_bucket(parse_uri(uri)[0])


def _artifact(store: Any, info: Any, **provenance: Any) -> Artifact:
    """Artifact for a stored object, computing its sha256 (streamed) when it was not stored."""
    if getattr(info, "sha256", None) is None or getattr(info, "size", None) is None:
        info = store.stat(info.uri)
    art = Artifact.from_object(info, **provenance)
    if not art.sha256:
        import hashlib

        digest = hashlib.sha256()
        with store.open(art.uri) as body:
            while chunk := body.read(1 << 20):
                digest.update(chunk)
        art.sha256 = digest.hexdigest()
    return art


# --------------------------------------------------------------------------- sample data


def sample_digits(directory: str | os.PathLike[str], count: int = 40, size: int = 32) -> list[Path]:
    """Write ``count`` handwritten digits from scikit-learn's bundled 8x8 data set as PNGs.

    Files are named ``digit-<label>-<index>.png`` (the label is the true digit), grayscale,
    upscaled to ``size`` x ``size``, dark ink on white; the choice is deterministic.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    if count < 1:
        raise ValidationError("count must be at least 1")
    data = load_digits()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    # balanced over the ten classes: the i-th sample of each class in turn
    by_label = [np.flatnonzero(data.target == d) for d in range(10)]
    paths = []
    for n in range(count):
        label, rank = n % 10, n // 10
        index = int(by_label[label][rank % len(by_label[label])])
        pixels = (255 - data.images[index] * (255 / 16)).clip(0, 255).astype("uint8")
        image = Image.fromarray(pixels).resize((size, size), Image.NEAREST)
        path = out / f"digit-{label}-{index:04d}.png"
        tmp = path.with_name(path.name + ".tmp")
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- upload / download


def upload(
    source: str | os.PathLike[str],
    *,
    destination: str | None = None,
    pattern: str = "*",
    node: str = "upload",
    store: Any = None,
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
    store = get_store(store)
    prefix = artifacts_prefix(node, destination)
    _ensure_bucket(store, prefix)
    arts = []
    for path, name in zip(files, names, strict=True):
        info = store.put_file(path, _join(prefix, name))
        arts.append(_artifact(store, info, name=name, node=node, run=run_name(), source=str(path)))
    return arts


def download(
    inputs: Iterable[Artifact],
    destination: str | os.PathLike[str],
    *,
    node: str = "download",
    store: Any = None,
) -> list[Artifact]:
    """Download artifacts (sha256 checked) into ``destination``; returns them with ``path``."""
    arts = list(inputs)
    if not arts:
        raise ValidationError("nothing to download: the upstream node produced no artifacts")
    store = get_store(store)
    paths = fetch(arts, destination, store=store)
    result = []
    for art, path in zip(arts, paths, strict=True):
        copy = Artifact.from_dict(art.to_dict())
        copy.path = str(Path(path).resolve())
        copy.node, copy.run = node, run_name()
        copy.source = art.uri
        result.append(copy)
    return result


# --------------------------------------------------------------------------- services


def require_service(client: Any, service: str) -> dict:
    """The service definition, or a NotFoundError saying the service is not deployed."""
    try:
        return client.get_service(service)
    except NotFoundError:
        raise NotFoundError(
            f"service {service!r} is not deployed on {client.endpoint}: "
            "deploy it first (deploy_service node or `oscar-elyra services apply FDL`)"
        ) from None


def _guess_suffix(path: Path) -> str:
    head = path.open("rb").read(512)
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
    client: Any = None,
    store: Any = None,
) -> list[Artifact]:
    """Call ``service`` synchronously once per input and store each result.

    ``inputs``: artifacts from upstream nodes, local file paths, or a text (one call).
    A single output is stored as ``<input stem><suffix>``; several as ``<input stem>/<name>``.
    """
    from oscar_elyra import invoke

    node = node or service
    client, store = connect(client, store)
    require_service(client, service)
    prefix = artifacts_prefix(node, destination)
    _ensure_bucket(store, prefix)
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
                ctype = mimetypes.guess_type(name)[0]
                info = store.put_file(path, _join(prefix, name), content_type=ctype)
                results.append(
                    _artifact(
                        store,
                        info,
                        name=name,
                        node=node,
                        service=service,
                        run=run_name(),
                        source=source,
                    )
                )
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
    client: Any = None,
    store: Any = None,
) -> list[Artifact]:
    """Put each input in ``service``'s input path, wait for exactly their outputs, list them."""
    from oscar_elyra import invoke

    node = node or service
    client, store = connect(client, store)
    svc = require_service(client, service)
    if not svc.get("input") or not svc.get("output"):
        raise ValidationError(
            f"service {service!r} has no input or output storage path, so it cannot run "
            "bucket-triggered jobs; use a sync node instead"
        )
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
        run_id = re.sub(r"[^A-Za-z0-9_.]", "_", run_name())[:48]
        jobs = invoke.submit(service, files, client=client, store=store, run_id=run_id)
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


def deploy(fdl: str | os.PathLike[str], *, timeout: float = 120, client: Any = None) -> list[dict]:
    """Create or update the services of an FDL file (a path or the YAML text) and wait for them.

    Script paths in inline YAML text are relative to the working directory.

    Returns ``[{"service": name, "action": "created"|"updated"}, ...]``.
    """
    client = get_client(client)
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


# --------------------------------------------------------------------------- digits report

_LABEL_RE = re.compile(r"digit-(\d)-")


def digits_table(inputs: Iterable[Artifact], *, store: Any = None) -> Any:
    """A pandas DataFrame of the digits classifier's outputs (one row per JSON artifact).

    Columns: input, predicted, confidence, expected (from ``digit-<label>-...`` names, else
    None), correct, uri.
    """
    import pandas as pd

    arts = [a for a in inputs if a.name.endswith(".json")]
    if not arts:
        raise ValidationError("no digits outputs (.json) among the upstream artifacts")
    store = get_store(store)
    rows = []
    with tempfile.TemporaryDirectory(prefix="oscar-report-") as tmp:
        for art, path in zip(arts, fetch(arts, tmp, store=store), strict=True):
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            probs = data.get("probabilities") or []
            name = Path(art.name).stem
            match = _LABEL_RE.search(name) or _LABEL_RE.search(str(data.get("input", "")))
            expected = int(match.group(1)) if match else None
            predicted = int(data["digit"])
            rows.append(
                {
                    "input": name,
                    "predicted": predicted,
                    "confidence": round(float(max(probs)), 4) if probs else None,
                    "expected": expected,
                    "correct": None if expected is None else predicted == expected,
                    "uri": art.uri,
                }
            )
    return pd.DataFrame(rows).sort_values("input").reset_index(drop=True)


def digits_report(
    inputs: Iterable[Artifact],
    out_dir: str | os.PathLike[str],
    *,
    destination: str | None = None,
    node: str = "report",
    store: Any = None,
) -> dict[str, Any]:
    """Table, count/confusion plot and an HTML report of the digits outputs.

    Writes ``predictions.csv``, ``report.png`` and ``report.html`` into ``out_dir``, uploads
    them to object storage and returns ``{"table", "accuracy", "files", "artifacts"}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = get_store(store)
    table = digits_table(inputs, store=store)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = table[table["expected"].notna()]
    accuracy = float(known["correct"].mean()) if len(known) else None

    fig, ax = plt.subplots(figsize=(6, 4))
    if len(known):
        import numpy as np

        matrix = np.zeros((10, 10), dtype=int)
        for exp, pred in zip(known["expected"], known["predicted"], strict=True):
            matrix[int(exp), int(pred)] += 1
        ax.imshow(matrix, cmap="Blues")
        for i in range(10):
            for j in range(10):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8)
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_title(f"Digits: {len(table)} images, accuracy {accuracy:.0%}")
    else:
        counts = table["predicted"].value_counts().reindex(range(10), fill_value=0)
        ax.bar(counts.index, counts.values)
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("images")
        ax.set_title(f"Digits: {len(table)} images")
    fig.tight_layout()
    files = {
        "csv": out / "predictions.csv",
        "png": out / "report.png",
        "html": out / "report.html",
    }
    fig.savefig(files["png"], dpi=100)
    plt.close(fig)
    table.to_csv(files["csv"], index=False)
    summary = (
        f"<p>{len(table)} images; accuracy {accuracy:.1%} "
        f"on the {len(known)} with a known label.</p>"
        if accuracy is not None
        else f"<p>{len(table)} images.</p>"
    )
    html = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Digits report</title></head>"
        f"<body><h1>Digits report</h1><p>Run: {run_name()}</p>{summary}"
        "<img src='report.png' alt='confusion matrix'>"
        f"{table.drop(columns=['uri']).to_html(index=False)}</body></html>\n"
    )
    files["html"].write_text(html, encoding="utf-8")
    prefix = artifacts_prefix(node, destination)
    _ensure_bucket(store, prefix)
    arts = [
        _artifact(
            store,
            store.put_file(path, _join(prefix, path.name)),
            name=path.name,
            node=node,
            run=run_name(),
            path=str(path.resolve()),
        )
        for path in files.values()
    ]
    return {"table": table, "accuracy": accuracy, "files": files, "artifacts": arts}


def load_manifest_artifacts(paths: Iterable[str | os.PathLike[str]]) -> list[Artifact]:
    """Artifacts of the manifest files at ``paths`` (KFP ``inputPath`` files)."""
    from oscar_elyra.artifacts import read_manifest

    arts: list[Artifact] = []
    for path in paths:
        arts.extend(read_manifest(path).artifacts)
    return arts


def summary(artifacts: Iterable[Artifact]) -> list[Mapping[str, Any]]:
    """Short dicts (name, uri, size, sha256 prefix) for display."""
    return [
        {"name": a.name, "uri": a.uri, "size": a.size, "sha256": (a.sha256 or "")[:12]}
        for a in artifacts
    ]
