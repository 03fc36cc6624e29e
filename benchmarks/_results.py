"""Result rows shared by the benchmark scripts and ``run_all.py`` (which writes RESULTS.md).

Each script prints its figures and, when it measured them, saves rows to
``benchmarks/out/<name>.json``: what was measured, our figure, its anchor measured in the
same run, the ratio that the goal is about, the goal and whether it was met.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
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
    """Write ``rows`` (and any raw figures in ``extra``) to ``out/<name>.json``, with when
    they were measured and the machine's load average then."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    measured = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    path.write_text(json.dumps({"rows": rows, "measured": measured, **extra}, indent=2) + "\n")
    return path


def load(name: str) -> list[dict[str, Any]] | None:
    """Rows saved by a script (None when it saved none)."""
    return _read(name).get("rows")


def measured(name: str) -> dict[str, str]:
    """When a script's saved rows were measured: ``date`` and ``load`` ({} if unknown)."""
    return _read(name).get("measured") or {}


def _read(name: str) -> dict[str, Any]:
    try:
        data = json.loads((OUT / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
