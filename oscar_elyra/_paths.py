"""Files and names: safe joins, temp files next to a target, atomic JSON, hashing, ids.

Stdlib only. Everything that turns a remote or user-given name into a local path goes
through :func:`safe_join`; everything written in place goes through a temp file next to
its target (:func:`temp_near`) renamed when complete.

The names every layer checks alike live here too: S3 bucket names (:func:`bucket_problem`,
used by the FDL loader, the client, the object store and the embedded cluster's server),
environment variables (:func:`env_problem`) and the nesting depth of decoded JSON/YAML
documents (:func:`nesting_depth`, :data:`MAX_DEPTH`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oscar_elyra.errors import UnsafePathError

__all__ = [
    "FILE_MODE",
    "MAX_DEPTH",
    "NAME_MAX",
    "bucket_problem",
    "env_problem",
    "nesting_depth",
    "output_problem",
    "safe_join",
    "temp_near",
    "write_json_atomic",
    "write_text_atomic",
    "sha256_file",
    "slug",
]

#: longest file name (bytes) most file systems accept
NAME_MAX = 255
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_SLUG_RE = re.compile(r"[^A-Za-z0-9._-]")
#: deepest nesting accepted in a decoded document (pipelines, FDL, Service JSON stay below 15)
MAX_DEPTH = 64
_BUCKET_LABELS = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
#: prefixes and suffixes S3 reserves (AWS general purpose bucket naming rules)
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bucket_problem(name: object) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (None when it is).

    The S3 rules: 3-63 characters, lowercase letters, digits, '.' and '-', dot-separated
    labels that start and end with a letter or digit (so no '..', '.-', '-.'), not an IP
    address, none of the reserved prefixes and suffixes.
    """
    if not isinstance(name, str):
        return "a bucket name must be a string"
    if not 3 <= len(name) <= 63:
        return "a bucket name has 3 to 63 characters"
    if not _BUCKET_LABELS.fullmatch(name):
        return (
            "use lowercase letters, digits, '-' and '.', starting and ending with a letter "
            "or digit, with no '..', '.-' or '-.'"
        )
    if _IPV4.fullmatch(name):
        return "a bucket name may not look like an IP address"
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return "that prefix or suffix is reserved by S3"
    return None


def env_problem(name: object, value: object = "") -> str | None:
    """Why ``name=value`` cannot be an environment variable (None when it can)."""
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        return (
            f"environment variable name {name!r} is not valid "
            "(letters, digits and '_', not starting with a digit)"
        )
    if isinstance(value, str) and "\x00" in value:
        return f"environment variable {name!r} contains a NUL character"
    return None


def output_problem(path: str | os.PathLike[str]) -> str | None:
    """Why nothing could be written at ``path`` (None when it looks writable): a parent
    that is a file, or no permission to create it. Checked before any work is done, so a
    bad ``-o`` fails at once and changes nothing."""
    target = Path(path)
    text = os.fspath(path)
    if text.endswith(("/", os.sep)) and target.exists() and not target.is_dir():
        return f"{str(target)!r} is a file, not a directory"
    for parent in [target, *target.parents][1:]:
        try:
            if parent.exists():
                if not parent.is_dir():
                    return f"{str(parent)!r} is a file, not a directory"
                if not os.access(parent, os.W_OK | os.X_OK):
                    return f"no permission to write in {str(parent)!r}"
                return None
        except OSError as exc:  # a name too long, a loop of links...
            return f"{str(parent)!r}: {exc.strerror or exc}"
    return None


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of lists and dicts in ``value``, without recursion; stops counting
    past ``limit`` (so a hostile document costs no more than ``limit`` levels)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """``root / relative``, refusing anything that could land outside ``root``.

    Raises :class:`UnsafePathError` for absolute paths, drive letters, ``..``
    components, empty names and NUL characters (S3 keys, zip members).
    """
    rel = str(relative)
    if not rel or "\x00" in rel:
        raise UnsafePathError(f"refusing empty or NUL-containing name {relative!r}")
    norm = rel.replace("\\", "/")
    if norm.startswith("/") or _DRIVE_RE.match(norm):
        raise UnsafePathError(
            f"refusing absolute path {relative!r}: keys and archive members must be relative"
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise UnsafePathError(
            f"refusing unsafe name {relative!r}: it would write outside {str(root)!r}"
        )
    base = Path(root).resolve()
    target = base.joinpath(*parts)
    resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(
            f"refusing {relative!r}: it resolves outside {str(root)!r} (symlink?)"
        )
    return target


def safe_join_fast(root: Path, relative: str) -> Path:
    """:func:`safe_join` without resolving symlinks (callers check each directory once)."""
    rel = str(relative)
    norm = rel.replace("\\", "/")
    if (
        not rel
        or "\x00" in rel
        or norm.startswith("/")
        or _DRIVE_RE.match(norm)
        or any(p == ".." for p in norm.split("/"))
    ):
        return safe_join(root, relative)  # raises with the precise message
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts:
        return safe_join(root, relative)
    return root.joinpath(*parts)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: file mode for finished downloads (temp files are 0600 until renamed into place)
FILE_MODE = 0o666 & ~_read_umask()


def _temp_prefix(name: str) -> str:
    """``.<name>.`` cut so that prefix + mkstemp's 8 random chars + ``.part`` fit NAME_MAX."""
    room = NAME_MAX - 2 - 8 - len(".part")
    raw = name.encode("utf-8")
    if len(raw) > room:
        name = raw[:room].decode("utf-8", "ignore")
    return f".{name}."


def temp_near(path: Path, mkdir: bool = True, mode: int | None = None) -> tuple[int, Path]:
    """An open temporary file next to ``path`` (same directory, so a rename is atomic).

    Its mode is ``mode``, by default the usual ``0666 & ~umask`` (as ``open()`` would
    create ``path``). The temp name never exceeds the file-name limit.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".part")
    os.fchmod(fd, FILE_MODE if mode is None else mode)
    return fd, Path(tmp)


def write_text_atomic(
    path: str | os.PathLike[str], text: str, mode: int | None = None, fsync: bool = False
) -> None:
    """Write ``text`` to a temp file next to ``path`` (``mode``), then rename over ``path``."""
    path = Path(path)
    fd, tmp = temp_near(path, mode=mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: str | os.PathLike[str], data: Any, mode: int = 0o644, fsync: bool = True
) -> None:
    """Write JSON to a temp file next to ``path`` with ``mode``, then rename over ``path``."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode, fsync)


def sha256_file(
    path: str | os.PathLike[str],
    on_read: Callable[[int], None] | None = None,
    chunk_size: int = 4 * 1024 * 1024,
) -> str:
    """Hex sha256 of a file, read in chunks (``on_read(n)`` after each)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(chunk_size)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            if on_read:
                on_read(n)
    return h.hexdigest()


def slug(name: str, limit: int = 100) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``, cut to
    ``limit`` characters: the one way a run name or label becomes an id in a key or path."""
    return _SLUG_RE.sub("_", str(name))[:limit] or "_"
