"""Result rows shared by the benchmark scripts and ``run_all.py`` (which writes RESULTS.md).

Each script prints its figures and, when it measured them, saves rows to
``benchmarks/out/<name>.json``: what was measured, our figure, its anchor measured in the
same run, the ratio that the goal is about, the goal and whether it was met.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def row(
    what: str,
    ours: str,
    anchor: str,
    ratio: float | None,
    goal: str,
    met: bool | None,
    note: str = "",
) -> dict[str, Any]:
    """One line of the results table (``met`` None: information only, no goal)."""
    return {
        "what": what,
        "ours": ours,
        "anchor": anchor,
        "ratio": None if ratio is None else round(ratio, 3),
        "goal": goal,
        "met": met,
        "note": note,
    }


def save(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``rows`` (and any raw figures in ``extra``) to ``out/<name>.json``."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"rows": rows, **extra}, indent=2) + "\n")
    return path


def load(name: str) -> list[dict[str, Any]] | None:
    """Rows saved by a script (None when it saved none)."""
    path = OUT / f"{name}.json"
    try:
        return json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return None
