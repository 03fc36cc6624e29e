"""The digits demo: sample handwritten digit PNGs and a report of the classifier's answers.

Needs the ``local`` extra (numpy, Pillow, scikit-learn) for the samples and the ``elyra``
extra (pandas, matplotlib) for the report; they are imported only when called.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import Artifact, fetch, run_name
from oscar_elyra.errors import ValidationError
from oscar_elyra.nodes.ops import output_prefix, store_file
from oscar_elyra.session import connect
from oscar_elyra.storage import ObjectStore

__all__ = ["digits_report", "digits_table", "sample_digits"]

#: the true digit in a sample's name: ``digit-<label>-<index>.png``
_LABEL_RE = re.compile(r"digit-(\d)-")


def sample_digits(directory: str | os.PathLike[str], count: int = 40, size: int = 32) -> list[Path]:
    """Write ``count`` handwritten digits from scikit-learn's bundled 8x8 data set as PNGs.

    Files are named ``digit-<label>-<index>.png`` (the label is the true digit), grayscale,
    upscaled to ``size`` x ``size``, dark ink on white; the choice is deterministic.
    """
    import numpy as np  # optional heavy dependency (local extra)
    from PIL import Image  # optional heavy dependency (local extra)
    from sklearn.datasets import load_digits  # optional heavy dependency (local extra)

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


def digits_table(inputs: Iterable[Artifact], *, store: ObjectStore | None = None) -> Any:
    """A pandas DataFrame of the digits classifier's outputs (one row per JSON artifact).

    Columns: input, predicted, confidence, expected (from ``digit-<label>-...`` names, else
    None), correct, uri.
    """
    import pandas as pd  # optional heavy dependency (elyra extra)

    arts = [a for a in inputs if a.name.endswith(".json")]
    if not arts:
        raise ValidationError("no digits outputs (.json) among the upstream artifacts")
    store = store if store is not None else connect().store
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


def _plot(table: Any, known: Any, accuracy: float | None, path: Path) -> None:
    """Confusion matrix (when labels are known) or counts per predicted digit, as a PNG."""
    import matplotlib  # optional heavy dependency (elyra extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional heavy dependency (elyra extra)
    import numpy as np  # optional heavy dependency (local extra)

    fig, ax = plt.subplots(figsize=(6, 4))
    if len(known):
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
    fig.savefig(path, dpi=100)
    plt.close(fig)


def digits_report(
    inputs: Iterable[Artifact],
    out_dir: str | os.PathLike[str],
    *,
    destination: str | None = None,
    node: str = "report",
    store: ObjectStore | None = None,
) -> dict[str, Any]:
    """Table, count/confusion plot and an HTML report of the digits outputs.

    Writes ``predictions.csv``, ``report.png`` and ``report.html`` into ``out_dir``, uploads
    them to object storage and returns ``{"table", "accuracy", "files", "artifacts"}``.
    """
    store = store if store is not None else connect().store
    table = digits_table(inputs, store=store)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = table[table["expected"].notna()]
    accuracy = float(known["correct"].mean()) if len(known) else None
    files = {
        "csv": out / "predictions.csv",
        "png": out / "report.png",
        "html": out / "report.html",
    }
    _plot(table, known, accuracy, files["png"])
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
    prefix = output_prefix(store, node, destination)
    arts = [
        store_file(
            store,
            path,
            prefix,
            path.name,
            node=node,
            run=run_name(),
            path=str(path.resolve()),
        )
        for path in files.values()
    ]
    return {"table": table, "accuracy": accuracy, "files": files, "artifacts": arts}
