"""What a node notebook shows: artifact tables, inline images, one-line errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import Artifact
from oscar_elyra.errors import OscarError
from oscar_elyra.redact import redact
from oscar_elyra.session import connect
from oscar_elyra.storage import ObjectStore

__all__ = ["short_errors", "show", "summary"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def summary(artifacts: Iterable[Artifact]) -> list[Mapping[str, Any]]:
    """Short dicts (name, uri, size, sha256 prefix) for display."""
    return [
        {"name": a.name, "uri": a.uri, "size": a.size, "sha256": (a.sha256 or "")[:12]}
        for a in artifacts
    ]


def show(
    artifacts: Sequence[Artifact], *, images: int = 6, store: ObjectStore | None = None
) -> Any:
    """Display artifacts in a notebook: a table, plus the first few PNG/JPEG images inline.

    Outside IPython the table (a pandas DataFrame) is returned instead. Images without a
    local copy are read from ``store`` (default: the cluster's).
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
    shown = 0
    for art in artifacts:
        if shown >= images or not art.name.lower().endswith(_IMAGE_SUFFIXES):
            continue
        if art.path:
            data = Path(art.path).read_bytes()
        else:
            store = store if store is not None else connect().store
            data = store.get_bytes(art.uri)
        display(Image(data=data))
        shown += 1
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
