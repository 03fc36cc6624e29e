"""The one redaction of secrets: client, CLI, server logs, runner output.

:func:`register_secret` records a secret (with its URL-quoted and base64 forms);
:func:`redact` replaces every recorded secret, and any ``Bearer``/``Basic`` credential,
by ``***``; :func:`install_log_redaction` applies :func:`redact` to every log record
(message, arguments and formatted traceback).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from oscar_elyra._paths import temp_near

__all__ = [
    "MIN_SECRET_LENGTH",
    "redact_data",
    "scrub_file",
    "register_secret",
    "registered_secrets",
    "redact",
    "RedactingFilter",
    "install_log_redaction",
]

#: secrets shorter than this are not registered (replacing 1-3 characters everywhere
#: would mangle every message; such secrets are not secret anyway)
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# "Authorization: Bearer xyz" / "Basic xyz" style strings are redacted even when unregistered.
_HEADER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*")


def register_secret(value: str | None) -> None:
    """Remember ``value`` (and its URL-quoted/base64 forms) so :func:`redact` hides it."""
    global _pattern
    if not value or not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), base64.b64encode(value.encode()).decode()}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET_LENGTH)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: Any) -> str:
    """``text`` as a string with every registered secret replaced by ``***``."""
    if not isinstance(text, str):
        text = str(text)
    # credentials first: a registered secret inside one would cut it short of the pattern
    text = _HEADER_RE.sub(lambda m: f"{m.group(1)} ***", text)
    pattern = _pattern
    return text if pattern is None else pattern.sub("***", text)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts a record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_oscar_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep the raw pieces, redacted
        message = f"{record.msg} {record.args}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._oscar_redacted = True
    return record


_installed = False


def install_log_redaction() -> None:
    """Redact secrets in every log record from now on (idempotent).

    Wraps the log-record factory (so handlers added later, e.g. pytest's, see redacted
    records) and adds a :class:`RedactingFilter` to the root logger's handlers.
    """
    global _installed
    with _lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return _redact_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _installed = True
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def registered_secrets() -> list[str]:
    """Every registered secret form, longest first (to hand to a child process' redaction)."""
    with _lock:
        return sorted(_secrets, key=len, reverse=True)


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value


_SCRUB_CHUNK = 1 << 20


def _scrub_stream(src, dst, pattern: re.Pattern[bytes], keep: int) -> int:
    """Copy ``src`` to ``dst`` (None: count only) with matches replaced; the match count.

    Streams in chunks, holding back ``keep`` bytes so a secret split across two chunks is
    still found (``keep`` >= the longest secret - 1).
    """
    buf, found = b"", 0
    while True:
        chunk = src.read(_SCRUB_CHUNK)
        buf += chunk
        cut = len(buf) if not chunk else max(0, len(buf) - keep)
        out, pos = [], 0
        for m in pattern.finditer(buf):
            if m.start() >= cut:
                break
            found += 1
            out += [buf[pos : m.start()], b"***"]
            pos = m.end()
        cut = max(cut, pos)
        out.append(buf[pos:cut])
        if dst is not None:
            dst.write(b"".join(out))
        buf = buf[cut:]
        if not chunk:
            return found


def scrub_file(path: str | os.PathLike[str]) -> bool:
    """Replace every registered secret in the file at ``path`` by ``***`` (in place, through
    a temp file renamed over it, mode kept); True when something was replaced.

    For what other processes wrote (a node's log, its executed notebook): they could not
    use this process' :func:`redact`. Streams, so memory stays bounded by the chunk size.
    """
    forms = [s.encode() for s in registered_secrets()]
    if not forms:
        return False
    pattern = re.compile(b"|".join(re.escape(f) for f in forms))
    keep = max(len(f) for f in forms) - 1
    path = Path(path)
    with open(path, "rb") as src:
        if not _scrub_stream(src, None, pattern, keep):
            return False
        src.seek(0)
        fd, tmp = temp_near(path, mkdir=False, mode=path.stat().st_mode & 0o777)
        try:
            with os.fdopen(fd, "wb") as dst:
                _scrub_stream(src, dst, pattern, keep)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return True
