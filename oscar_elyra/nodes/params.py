"""Node parameters: environment variables checked, with errors naming the variable.

Every helper raises :class:`~oscar_elyra.errors.ParameterError` with one line that names the
variable and says what it expects (in a notebook that line is the whole traceback).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import check_node_name
from oscar_elyra.errors import ParameterError, ValidationError

__all__ = ["as_int", "as_node", "check_source", "local_files", "require", "split_list"]


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
