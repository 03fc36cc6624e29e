"""What a node notebook shows: artifact tables, inline images, JSON outputs as a table, text
as text, one-line errors. The preview helpers (:func:`preview_kind`, :func:`json_rows`) are the
ones the run report uses too."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import Artifact
from oscar_elyra.errors import OscarError
from oscar_elyra.redact import redact
from oscar_elyra.session import connect
from oscar_elyra.storage import ObjectStore

__all__ = ["cell", "json_rows", "preview_kind", "short_errors", "show", "summary"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_TEXT_SUFFIXES = (".txt", ".log", ".md", ".out", ".yaml", ".yml", ".tsv")
#: files larger than this are listed, never read for a preview
PREVIEW_BYTES = 1 << 20


def preview_kind(name: str, content_type: str | None = None) -> str:
    """How to preview a file: "image", "json", "csv", "html", "text" or "" (not at all)."""
    lower = name.lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if lower.endswith(_IMAGE_SUFFIXES) or ctype in ("image/png", "image/jpeg", "image/gif"):
        return "image"
    if lower.endswith(".json") or ctype == "application/json":
        return "json"
    if lower.endswith(".csv") or ctype == "text/csv":
        return "csv"
    if lower.endswith((".html", ".htm")) or ctype == "text/html":
        return "html"
    if lower.endswith(_TEXT_SUFFIXES) or ctype.startswith("text/"):
        return "text"
    return ""


def cell(value: Any, width: int = 60) -> Any:
    """A table cell: scalars as they are, anything else as short JSON."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def json_rows(data: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Table rows of a parsed JSON document (a list of objects: one row each; an object: one
    row; anything else: one ``value`` cell), led by ``file`` when ``name`` is given."""
    head = {"file": name} if name else {}
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return [{**head, **{k: cell(v) for k, v in r.items()}} for r in data]
    if isinstance(data, dict):
        return [{**head, **{k: cell(v) for k, v in data.items()}}]
    return [{**head, "value": cell(data)}]


def summary(artifacts: Iterable[Artifact]) -> list[Mapping[str, Any]]:
    """Short dicts (name, uri, size, sha256 prefix) for display."""
    return [
        {"name": a.name, "uri": a.uri, "size": a.size, "sha256": (a.sha256 or "")[:12]}
        for a in artifacts
    ]


def _read(art: Artifact, store: ObjectStore | None) -> tuple[bytes, ObjectStore | None]:
    """The artifact's bytes (its local copy, else from ``store``, else the cluster's)."""
    if art.path and Path(art.path).is_file():
        return Path(art.path).read_bytes(), store
    store = store if store is not None else connect().store
    return store.get_bytes(art.uri), store


def show(
    artifacts: Sequence[Artifact],
    *,
    images: int = 6,
    rows: int = 20,
    texts: int = 3,
    store: ObjectStore | None = None,
) -> Any:
    """Display what a node produced: the artifact table, then the first few images inline,
    the JSON outputs (predictions...) as one table, CSV as a table and text as text.

    Outside IPython the artifact table (a pandas DataFrame) is returned instead. Files without
    a local copy are read from ``store`` (default: the cluster's); files over 1 MiB are only
    listed.
    """
    import pandas as pd  # optional heavy dependency (elyra extra)

    table = pd.DataFrame(summary(artifacts))
    try:
        from IPython import get_ipython  # optional heavy dependency: notebook kernels only
        from IPython.display import Image, display  # optional heavy dependency (as above)
    except ImportError:  # pragma: no cover - plain Python
        return table
    if get_ipython() is None:
        return table
    display(table)
    shown = {"image": 0, "text": 0, "csv": 0}
    limits = {"image": images, "text": texts, "csv": 1, "json": rows}
    records: list[dict[str, Any]] = []
    for art in artifacts:
        kind = preview_kind(art.name, art.content_type)
        if kind not in limits or (art.size or 0) > PREVIEW_BYTES:
            continue
        if (len(records) if kind == "json" else shown[kind]) >= limits[kind]:
            continue
        try:
            data, store = _read(art, store)
            if kind == "image":
                display(Image(data=data))
            elif kind == "json":
                records.extend(json_rows(json.loads(data), art.name))
            elif kind == "csv":
                display(pd.read_csv(io.BytesIO(data), nrows=rows))
            else:
                print(f"--- {art.name}\n{data.decode('utf-8', 'replace')}")
        except (OscarError, OSError, ValueError):
            continue  # a preview never fails the node: the table above lists the file
        if kind != "json":
            shown[kind] += 1
    if records:
        display(pd.DataFrame(records[:rows]))
    return None


def short_errors() -> None:
    """In a notebook, show oscar_elyra errors as one (redacted) line instead of a traceback.

    The cell still fails, so papermill and Elyra stop the node and report the same line.
    """
    try:
        from IPython import get_ipython  # optional heavy dependency: notebook kernels only
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return

    def handler(shell, etype, evalue, tb, tb_offset=None):
        line = f"{etype.__name__}: {redact(str(evalue))}"
        shell._showtraceback(etype, evalue, [line])
        return [line]

    shell.set_custom_exc((OscarError,), handler)
