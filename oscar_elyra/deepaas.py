"""AI4EOSC marketplace models (DEEPaaS) on OSCAR: their request and answer shapes.

The AI4EOSC services (ai4os/ai4-papi's OSCAR template, ai4os/ai4-models-update-OSCAR, the
DEEPaaS crates of grycap/oscar-hub) run ``deepaas-cli predict`` inside the service script:

* **request**: a JSON object of model arguments, each ``key: value`` becoming
  ``--key value``; files travel in ``"oscar-files": [{"key", "file_format", "data"}]``
  (``data`` base64), decoded by the script to temporary files passed as ``--<key> <file>``.
  ``{"help": ""}`` answers the model's argument list (``deepaas-cli predict --help``).
* **sync answer** (``/run``): the DEEPaaS log text; the prediction is on its
  ``return: {...}`` line, a Python literal (``str(dict)``, single quotes), read here with
  :func:`ast.literal_eval`, never ``eval``. Some hub scripts answer JSON, a bare dict repr,
  or write a file (then OSCAR answers it base64-encoded): :func:`parse_answer` reads all.
* **async** (an object ``<id>.json`` under the input path): the script writes
  ``<id>.json`` (the prediction, only on success) and ``<id>.log`` (always) to the output
  path. A ``.log`` without its ``.json`` is a failed prediction, whatever the job status says
  (OSCAR never reads the script's exit code).

Public API: :func:`help`, :func:`predict` (sync), :func:`submit` / :func:`wait` /
:func:`map` (async), :class:`Argument`, :class:`Prediction`, :class:`DeepaasJob`, and the
codecs :class:`RequestBody`, :func:`parse_help`, :func:`parse_answer`.

Files are streamed: the request body is generated chunk by chunk (base64 of ``CHUNK``
bytes at a time) into the HTTP request or the request file, so memory is bounded by the
chunk size, never by the file size.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from oscar_elyra.artifacts import Artifact, fetch
from oscar_elyra.errors import ServiceError, ValidationError
from oscar_elyra.invoke import BatchResult
from oscar_elyra.redact import redact
from oscar_elyra.session import Session, connect
from oscar_elyra.storage import parse_uri

__all__ = [
    "Argument",
    "DeepaasJob",
    "Prediction",
    "RequestBody",
    "help",
    "log_excerpt",
    "map",
    "parse_answer",
    "parse_model_args",
    "parse_help",
    "predict",
    "predict_artifacts",
    "submit",
    "wait",
]

log = logging.getLogger(__name__)

#: raw bytes per base64 chunk (a multiple of 3, so the chunks concatenate to valid base64)
CHUNK = 3 * (1 << 16)
#: statuses answered while a service's container image is still being pulled
PULL_STATUSES = frozenset({502})
ARG_TYPES = ("str", "int", "float", "bool", "list", "dict", "file")
_ANSI = re.compile(r"\x1b\[[0-9;]*m|\[0?0m$")
_MISSING = object()


# =============================================================================== arguments


@dataclass(frozen=True)
class Argument:
    """One argument of a model's ``predict``, as DEEPaaS describes it."""

    name: str
    type: str = "str"
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    def describe(self) -> str:
        """``top_k (int, default 3)``-style summary used in messages."""
        bits = [self.type]
        if self.required:
            bits.append("required")
        elif self.default is not None:
            bits.append(f"default {self.default!r}")
        if self.choices:
            bits.append("one of " + ", ".join(repr(c) for c in self.choices))
        return f"{self.name} ({', '.join(bits)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) if self.choices is not None else None,
        }

    def coerce(self, value: Any) -> Any:
        """``value`` as this argument's type (strings from the CLI or a pipeline parameter)."""
        if not isinstance(value, str) or self.type in ("str", "file"):
            return value
        text = value.strip()
        try:
            if self.type == "int":
                return int(text)
            if self.type == "float":
                return float(text)
            if self.type == "bool":
                low = text.lower()
                if low in ("true", "1", "yes", "on", "t", "y"):
                    return True
                if low in ("false", "0", "no", "off", "f", "n"):
                    return False
                raise ValueError(text)
            parsed = ast.literal_eval(text)  # list / dict, as deepaas-cli itself reads them
            want = builtins.list if self.type == "list" else dict
            if not isinstance(parsed, want):
                raise ValueError(text)
            return parsed
        except (ValueError, SyntaxError):
            raise ValidationError(
                f"model argument {self.name!r}: {value!r} is not a valid {self.type}"
            ) from None


def _strip_ansi(text: str) -> str:
    return "\n".join(_ANSI.sub("", line).rstrip() for line in text.splitlines())


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _MISSING


_TYPE_WORDS = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "boolean": "bool",
    "list": "list",
    "array": "list",
    "dict": "dict",
    "object": "dict",
    "str": "str",
    "string": "str",
    "file": "file",
}


def _typed_default(kind: str, raw: str) -> Any:
    value = _literal(raw)
    if value is _MISSING:
        if kind == "bool":
            return raw.strip().lower() in ("true", "yes", "1", "t")
        return raw.strip()
    if value is None or kind in ("str", "file"):
        return None if value is None else (value if isinstance(value, str) else raw.strip())
    return value


_OPTION = re.compile(r"^  (?:-\w, )?--([A-Za-z0-9][\w.-]*)(?: [A-Z0-9_]+)?(?:\s{2,}(\S.*))?$")


def parse_help(text: str) -> list[Argument]:
    """The argument list in a DEEPaaS ``help`` answer.

    Reads the argparse help of ``deepaas-cli predict`` (each ``--name NAME`` followed by
    its help lines, ending with ``Type: ...``, ``Default: ...`` or ``*Required*``, and
    ``Choices: [...]``), wherever it sits in the answer (the service's own log lines
    around it are skipped); also a JSON/literal object ``{name: {type, required, default,
    help, choices}}`` or list of such objects. Raises ServiceError if no list is found.
    """
    clean = _strip_ansi(text)
    structured = _literal(clean)
    if isinstance(structured, (dict, builtins.list)) and structured:
        items = structured.items() if isinstance(structured, dict) else None
        if items is None:
            items = [(d.get("name"), d) for d in structured if isinstance(d, dict)]
        args = []
        for name, spec in items:
            if not name or not isinstance(spec, dict):
                continue
            kind = _TYPE_WORDS.get(str(spec.get("type", "str")).lower(), "str")
            choices = spec.get("choices") or spec.get("enum")
            args.append(
                Argument(
                    name=str(name),
                    type=kind,
                    required=bool(spec.get("required", False)),
                    default=spec.get("default"),
                    help=str(spec.get("help") or spec.get("description") or ""),
                    choices=tuple(choices) if choices else None,
                )
            )
        if args:
            return args
    lines = clean.splitlines()
    start = next((i for i, ln in enumerate(lines) if "usage:" in ln and "predict" in ln), None)
    if start is None:
        raise ServiceError(
            "the service's answer to {'help': ''} holds no DEEPaaS argument list "
            f"(is it a DEEPaaS service?): {log_excerpt(text, 300)}"
        )
    args: list[Argument] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is None or current["name"] == "help":
            return
        body: list[str] = []
        kind, required, default, choices = "str", False, None, None
        raw_default = None
        for ln in current["help"]:
            s = ln.strip()
            if s.startswith("Type:"):
                word = s[5:].strip()
                kind = "file" if "(filepath)" in word else word.split()[0].rstrip(",")
                kind = _TYPE_WORDS.get(kind.lower(), "str")
            elif s.startswith("Default:"):
                raw_default = s[8:]
            elif s == "*Required*":
                required = True
            elif s.startswith("Choices:"):
                parsed = _literal(s[8:])
                choices = tuple(parsed) if isinstance(parsed, (builtins.list, tuple)) else None
            elif s:
                body.append(s)
        if raw_default is not None:
            default = _typed_default(kind, raw_default)
        args.append(Argument(current["name"], kind, required, default, "\n".join(body), choices))

    for ln in lines[start + 1 :]:
        if ln and not ln.startswith(" "):
            if ln.rstrip().endswith(":") and not ln.startswith(("[", "20", "usage")):
                continue  # a section header ("options:", "optional arguments:")
            close()
            current = None
            if ln.startswith("[") or re.match(r"^\d{4}-\d\d-\d\d", ln):
                break  # the service's own log lines after the help
            continue
        m = _OPTION.match(ln)
        if m:
            close()
            current = {"name": m.group(1), "help": [m.group(2)] if m.group(2) else []}
        elif current is not None and ln.startswith("    "):
            current["help"].append(ln)
    close()
    return args


# =============================================================================== answers


def parse_answer(text: str | bytes) -> Any:
    """The prediction in a DEEPaaS service's answer, or :data:`None` if there is none.

    In order: the whole answer as JSON; the last ``return:`` line of a DEEPaaS log whose
    rest is JSON or a Python literal (:func:`ast.literal_eval`); the whole answer as a
    Python literal (hub scripts printing ``{'status': ...}``); the last line that is one;
    and, for a script that wrote one output file (answered base64-encoded by OSCAR), the
    same on the decoded text.
    """
    value = _parse_answer(text, decode=True)
    return None if value is _MISSING else value


def _parse_answer(text: str | bytes, decode: bool) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    clean = _strip_ansi(text).strip()
    if not clean:
        return _MISSING
    try:
        return json.loads(clean)
    except ValueError:
        pass
    lines = clean.splitlines()
    for ln in reversed(lines):
        idx = ln.find("return: ")
        if idx >= 0:
            value = _literal(ln[idx + len("return: ") :])
            if value is not _MISSING:
                return value
    value = _literal(clean)
    if value is not _MISSING and not isinstance(value, (int, float)):
        return value
    for ln in reversed(lines):
        s = ln.strip()
        if s[:1] in ("{", "[") and (value := _literal(s)) is not _MISSING:
            return value
    if decode and re.fullmatch(r"[A-Za-z0-9+/=\s]+", clean) and len(clean) >= 8:
        try:
            raw = base64.b64decode("".join(clean.split()), validate=True)
            return _parse_answer(raw.decode("utf-8"), decode=False)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            pass
    return _MISSING


_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.,]+ \d+ ([A-Z]+) \S+(?: \[[^\]]*\])? ?")


def log_excerpt(text: str | None, limit: int = 1200) -> str:
    """The telling part of a DEEPaaS log, at most about ``limit`` characters.

    Log prefixes (date, pid, logger) are shortened to the level; the excerpt starts at the
    first error line (DEEPaaS' ``Unhandled error: ...`` summary) and keeps the end of the
    traceback that follows; without an error line, the last lines.
    """
    if not text:
        return "(empty log)"
    lines = [_LOG_PREFIX.sub(r"\1 ", ln) for ln in _strip_ansi(text).splitlines()]
    lines = [ln for ln in lines if ln.strip() and ln.strip() not in ("ERROR", "CRITICAL")]
    first = next(
        (i for i, ln in enumerate(lines) if re.search(r"Traceback|CRITICAL|ERROR|Error\b", ln)),
        None,
    )
    if first is None:
        picked = lines[-12:]
    else:
        head, tail = lines[first], lines[first + 1 :]
        picked = [head]
        budget = limit - len(head)
        kept: list[str] = []
        for ln in reversed(tail):
            if budget - len(ln) - 1 < 0:
                kept.append("…")
                break
            kept.append(ln)
            budget -= len(ln) + 1
        picked += list(reversed(kept))
    return redact("\n".join(picked)[: limit + 200])


class Prediction:
    """A DEEPaaS answer: ``.json()`` (the prediction), ``.log`` and ``.text`` (raw answer)."""

    def __init__(self, service: str, text: str, *, log_text: str | None = None, value=_MISSING):
        self.service = service
        self.text = text
        self.log = text if log_text is None else log_text
        self._value = _parse_answer(text, decode=True) if value is _MISSING else value

    @property
    def ok(self) -> bool:
        """True when the answer holds a prediction."""
        return self._value is not _MISSING

    def json(self) -> Any:
        """The prediction (a dict for most models); ServiceError when there is none."""
        if self._value is _MISSING:
            raise ServiceError(
                f"service {self.service!r} returned no prediction; its log says:\n"
                f"{log_excerpt(self.log)}",
                log=self.log,
            )
        return self._value

    def __repr__(self) -> str:
        shown = repr(self._value) if self.ok else "no prediction"
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return f"Prediction(service={self.service!r}, {shown})"


# =============================================================================== requests


def _file_format(path: Path) -> str:
    return path.suffix.lstrip(".").lower() or "bin"


class RequestBody:
    """The JSON request of a DEEPaaS call, generated chunk by chunk (``oscar-files`` streamed).

    Iterating yields bytes; ``len()`` is the exact size (so a ``Content-Length`` is sent);
    :meth:`write_to` writes it to a binary file. Nothing larger than :data:`CHUNK` bytes of
    a file is held in memory at once.
    """

    def __init__(self, args: Mapping[str, Any], files: Mapping[str, str | os.PathLike[str]]):
        self.args = dict(args)
        self.files = {k: Path(v) for k, v in files.items()}
        if "oscar-files" in self.args:
            raise ValidationError("'oscar-files' is built from files=...; do not pass it")

    def _parts(self) -> Iterator[tuple[str, Path | None]]:
        head = json.dumps(self.args)
        if not self.files:
            yield head, None
            return
        yield (head[:-1] + ", " if self.args else "{") + '"oscar-files": [', None
        for i, (key, path) in enumerate(self.files.items()):
            meta = json.dumps({"key": key, "file_format": _file_format(path)})
            yield ("" if i == 0 else ", ") + meta[:-1] + ', "data": "', path
            yield '"}', None
        yield "]}", None

    def __len__(self) -> int:
        total = 0
        for text, path in self._parts():
            total += len(text.encode("utf-8"))
            if path is not None:
                total += 4 * ((path.stat().st_size + 2) // 3)
        return total

    def __iter__(self) -> Iterator[bytes]:
        for text, path in self._parts():
            yield text.encode("utf-8")
            if path is not None:
                with open(path, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield base64.b64encode(chunk)

    def write_to(self, fh: IO[bytes]) -> int:
        n = 0
        for chunk in self:
            fh.write(chunk)
            n += len(chunk)
        return n


# =============================================================================== model help

_HELP: dict[tuple[str, str], list[Argument]] = {}
_HELP_LOCK = threading.Lock()


def _session(session: Session | None) -> Session:
    return session if session is not None else connect()


def _post(
    sess: Session,
    service: str,
    make_body,
    *,
    timeout: float | tuple[float, float] | None,
    pull_wait: float,
) -> str:
    """``POST /run`` with a fresh body per attempt; a 502 (image still pulled) is retried."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            resp = sess.client.post_run(
                service, make_body(), timeout=timeout, headers={"Content-Type": "application/json"}
            )
        except ServiceError as exc:
            waited = time.monotonic() - started
            if exc.status not in PULL_STATUSES or waited >= pull_wait:
                if exc.status in PULL_STATUSES:
                    raise ServiceError(
                        f"{exc} — still 502 after {waited:.0f} s: the service's image may "
                        "not exist or its container does not start (see `oscar-elyra logs`)",
                        status=exc.status,
                        body=exc.body,
                    ) from None
                raise
            delay = min(30.0, 2.0**attempt, max(0.5, pull_wait - waited))
            log.warning(
                "service %r answered 502 Bad Gateway: its container image is probably still "
                "being pulled; retrying in %.0f s (attempt %d, waiting up to %.0f s)",
                service,
                delay,
                attempt + 1,
                pull_wait,
            )
            time.sleep(delay)
            continue
        try:
            return resp.content.decode("utf-8", "replace")
        finally:
            resp.close()


def help(  # noqa: A001 - the DEEPaaS name
    service: str,
    *,
    session: Session | None = None,
    refresh: bool = False,
    timeout: float | tuple[float, float] | None = None,
    pull_wait: float = 300.0,
) -> list[Argument]:
    """The model's ``predict`` arguments (``{"help": ""}`` sent to ``/run``), cached per cluster."""
    sess = _session(session)
    key = (sess.client.endpoint, service)
    with _HELP_LOCK:
        cached = _HELP.get(key)
    if cached is not None and not refresh:
        return builtins.list(cached)
    text = _post(sess, service, lambda: b'{"help": ""}', timeout=timeout, pull_wait=pull_wait)
    args = parse_help(text)
    with _HELP_LOCK:
        _HELP[key] = args
    return builtins.list(args)


def parse_model_args(text: str | None) -> dict[str, str]:
    """Model arguments from a node parameter: a JSON object, or ``name=value`` pairs
    separated by commas or new lines (values are converted by the model's argument types)."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"model arguments: not a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError("model arguments: give a JSON object or name=value pairs")
        return data
    out = {}
    for item in re.split(r"[,\n]", text):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"model argument {item.strip()!r}: write it as name=value")
        out[key.strip()] = value.strip()
    return out


def _check(
    service: str, spec: list[Argument], args: dict[str, Any], files: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Arguments checked against the model's list (before anything is sent)."""
    by_name = {a.name: a for a in spec}
    valid = ", ".join(a.describe() for a in spec) or "none"
    unknown = [k for k in builtins.list(args) + builtins.list(files) if k not in by_name]
    if unknown:
        raise ValidationError(
            f"service {service!r}: no model argument named "
            f"{', '.join(repr(u) for u in unknown)}; valid arguments: {valid}"
        )
    args, files = dict(args), dict(files)
    for name in builtins.list(args):
        if by_name[name].is_file:  # a path given as a plain argument: send the file
            files[name] = args.pop(name)
    for name in files:
        if not by_name[name].is_file:
            raise ValidationError(
                f"service {service!r}: argument {name!r} is a {by_name[name].type}, not a file; "
                f"pass it as {name}=value (file arguments: "
                f"{', '.join(a.name for a in spec if a.is_file) or 'none'})"
            )
    missing = [a.name for a in spec if a.required and a.name not in args and a.name not in files]
    if missing:
        raise ValidationError(
            f"service {service!r}: required model argument(s) {', '.join(missing)} missing; "
            f"valid arguments: {valid}"
        )
    out = {}
    for name, value in args.items():
        arg = by_name[name]
        value = arg.coerce(value)
        if arg.choices and value not in arg.choices:
            raise ValidationError(
                f"service {service!r}: argument {name!r} is {value!r}; choose one of "
                f"{', '.join(repr(c) for c in arg.choices)}"
            )
        out[name] = value
    return out, _check_files(files)


def _check_files(files: Mapping[str, Any]) -> dict[str, Path]:
    out = {}
    for key, value in files.items():
        p = Path(value)
        if not p.is_file():
            raise ValidationError(f"file for argument {key!r} does not exist: {str(p)!r}")
        out[key] = p
    return out


def _prepare(
    sess: Session,
    service: str,
    files: Mapping[str, Any] | None,
    args: dict[str, Any],
    validate: bool,
    timeout: Any,
    pull_wait: float,
) -> RequestBody:
    files = dict(files or {})
    if validate:
        spec = help(service, session=sess, timeout=timeout, pull_wait=pull_wait)
        clean_args, paths = _check(service, spec, args, files)
    else:
        clean_args, paths = args, _check_files(files)
    return RequestBody(clean_args, paths)


# =============================================================================== sync


def predict(
    service: str,
    *,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    session: Session | None = None,
    validate: bool = True,
    timeout: float | tuple[float, float] | None = None,
    pull_wait: float = 300.0,
    args: Mapping[str, Any] | None = None,
    **model_args: Any,
) -> Prediction:
    """Call a DEEPaaS model synchronously (``/run``) and return its :class:`Prediction`.

    ``files`` maps file arguments to local paths (sent base64-streamed in ``oscar-files``);
    other keyword arguments (or ``args=``, for names that clash with these parameters) are
    model arguments. With ``validate`` (default) they are first checked against the model's
    argument list (:func:`help`, one call per cluster and service): an unknown or missing
    argument is refused before anything is sent. A 502 (the container image is still
    being pulled) is retried for up to ``pull_wait`` seconds. Raises ServiceError, with
    the log's telling lines, when the answer holds no prediction.
    """
    sess = _session(session)
    merged = {**dict(args or {}), **model_args}
    body = _prepare(sess, service, files, merged, validate, timeout, pull_wait)
    text = _post(
        sess,
        service,
        lambda: RequestBody(body.args, body.files),
        timeout=timeout,
        pull_wait=pull_wait,
    )
    pred = Prediction(service, text)
    pred.json()  # raise, with the log excerpt, when there is no prediction
    return pred


# =============================================================================== async


def _minio_path(svc: dict, field_name: str) -> str:
    for io in svc.get(field_name) or []:
        provider = str(io.get("storage_provider") or "minio")
        if provider.split(".", 1)[0] in ("minio", "s3") and io.get("path"):
            return str(io["path"]).strip("/")
    raise ValidationError(
        f"service {svc.get('name')!r} has no MinIO {field_name} path; a DEEPaaS service is "
        f"invoked asynchronously through its input bucket (add {field_name}: to its FDL)"
    )


@dataclass
class DeepaasJob:
    """One async DEEPaaS request (``<id>.json`` in the input path) and what became of it."""

    service: str
    id: str
    input_uri: str
    output_prefix: str
    source: str | None = None
    status: str = "pending"  # pending | succeeded | failed
    prediction: Any = None
    log: str | None = None
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    _log_seen: float | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def json(self) -> Any:
        """The prediction; ServiceError (with the log excerpt) if the job failed or is pending."""
        if self.status != "succeeded":
            raise ServiceError(
                f"DEEPaaS job {self.id} of service {self.service!r} {self.status}: "
                f"{self.error or 'no prediction yet'}",
                log=self.log,
            )
        return self.prediction


def _safe_id(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60]
    return stem or "input"


def _paths_of(sess: Session, service: str) -> tuple[str, str]:
    svc = sess.client.get_service(service)
    return _minio_path(svc, "input"), _minio_path(svc, "output")


def submit(
    service: str,
    *,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    session: Session | None = None,
    id: str | None = None,  # noqa: A002 - the request's id
    validate: bool = True,
    args: Mapping[str, Any] | None = None,
    _paths: tuple[str, str] | None = None,
    **model_args: Any,
) -> DeepaasJob:
    """Upload one request ``<id>.json`` to the service's input path; returns its job.

    Arguments as for :func:`predict` (checked before anything is uploaded). ``id``
    defaults to the first file's stem plus a random suffix (no dots: the AI4EOSC script
    names outputs by the part before the first dot). Wait for it with :func:`wait`.
    """
    sess = _session(session)
    merged = {**dict(args or {}), **model_args}
    body = _prepare(sess, service, files, merged, validate, None, 300.0)
    in_path, out_path = _paths if _paths is not None else _paths_of(sess, service)
    first = next(iter(body.files.values()), None)
    job_id = (
        _safe_id(id)
        if id
        else f"{_safe_id(first.stem if first else 'request')}-{secrets.token_hex(4)}"
    )
    fd, tmp = tempfile.mkstemp(prefix="deepaas-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            body.write_to(fh)
        uri = f"s3://{in_path}/{job_id}.json"
        sess.store.put_file(tmp, uri, content_type="application/json")
    finally:
        os.unlink(tmp)
    return DeepaasJob(
        service=service,
        id=job_id,
        input_uri=uri,
        output_prefix=f"s3://{out_path}/",
        source=str(first) if first else None,
    )


def wait(
    jobs: DeepaasJob | Iterable[DeepaasJob],
    *,
    session: Session | None = None,
    timeout: float = 600.0,
    poll: float = 0.5,
    grace: float = 2.0,
) -> list[DeepaasJob]:
    """Wait until each job has its ``<id>.json`` (succeeded) or only its ``<id>.log`` (failed).

    A ``.log`` with no ``.json`` ``grace`` seconds later is a failed prediction, whatever
    the cluster's job status says. Jobs still pending after ``timeout`` seconds fail with
    a timeout message. Returns the jobs (updated in place).
    """
    sess = _session(session)
    todo = [jobs] if isinstance(jobs, DeepaasJob) else builtins.list(jobs)
    deadline = time.monotonic() + timeout
    while True:
        pending = [j for j in todo if not j.done]
        if not pending:
            return todo
        prefixes = sorted({j.output_prefix for j in pending})
        names: dict[str, set[str]] = {}
        for prefix in prefixes:
            names[prefix] = {o.uri[len(prefix) :] for o in sess.store.list(prefix) if not o.is_dir}
        now = time.monotonic()
        for job in pending:
            seen = names[job.output_prefix]
            if f"{job.id}.json" in seen:
                _settle(sess, job, seen)
            elif f"{job.id}.log" in seen:
                if job._log_seen is None:
                    job._log_seen = now
                elif now - job._log_seen >= grace:
                    _settle(sess, job, seen)
        if now >= deadline:
            for job in todo:
                if not job.done:
                    job.status = "failed"
                    job.error = (
                        f"no {job.id}.json nor {job.id}.log in {job.output_prefix} after "
                        f"{timeout:g} s (is the service's input path watched?)"
                    )
            return todo
        time.sleep(poll)


def _settle(sess: Session, job: DeepaasJob, seen: set[str]) -> None:
    base = job.output_prefix
    if f"{job.id}.log" in seen:
        job.log = sess.store.get_bytes(f"{base}{job.id}.log").decode("utf-8", "replace")
    if f"{job.id}.json" in seen:
        text = sess.store.get_bytes(f"{base}{job.id}.json").decode("utf-8", "replace")
        value = _parse_answer(text, decode=False)
        if value is not _MISSING:
            job.status, job.prediction = "succeeded", value
            return
        job.error = f"{job.id}.json is not JSON: {text[:200]!r}"
    else:
        job.error = f"prediction failed (only {job.id}.log): {log_excerpt(job.log)}"
    job.status = "failed"


def _expand(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            return sorted(x for x in p.iterdir() if x.is_file() and not x.name.startswith("."))
        return [p]
    return [Path(x) for x in inputs]


def map(  # noqa: A001 - the documented name
    service: str,
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    file_arg: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    session: Session | None = None,
    concurrency: int = 4,
    timeout: float = 600.0,
    args: Mapping[str, Any] | None = None,
    **model_args: Any,
) -> BatchResult:
    """Predict on every input file asynchronously (one ``<id>.json`` request each).

    ``file_arg`` is the model's file argument the inputs go to (default: its only one).
    The other arguments are checked once, before any upload. With ``output_dir``, each
    input's prediction is written to ``<stem>.json`` and its log to ``<stem>.log``.
    Returns a :class:`~oscar_elyra.invoke.BatchResult` of records (``input``, ``status``
    ok/failed, ``outputs``, ``error``, ``seconds``, ``prediction``); one failure never
    stops the others.
    """
    sess = _session(session)
    paths = _expand(inputs)
    if not paths:
        raise ValidationError("no input files to predict on")
    spec = help(service, session=sess)
    if file_arg is None:
        file_arg = _only_file_arg(
            service, spec, "say which one the inputs go to with file_arg= (--file-arg)"
        )
    merged = {**dict(args or {}), **model_args}
    clean, _ = _check(service, spec, merged, {file_arg: paths[0]})
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValidationError(f"input file(s) do not exist: {', '.join(missing[:5])}")
    out_dir = Path(output_dir) if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    route = _paths_of(sess, service)
    records: list[dict[str, Any]] = []
    started = time.monotonic()

    def one(p: Path) -> DeepaasJob:
        return submit(
            service, files={file_arg: p}, session=sess, validate=False, args=clean, _paths=route
        )

    jobs: list[DeepaasJob | None] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(one, p) for p in paths]
        for p, fut in zip(paths, futures, strict=True):
            rec: dict[str, Any] = {
                "input": str(p),
                "status": "pending",
                "outputs": [],
                "error": None,
                "seconds": 0.0,
                "prediction": None,
            }
            try:
                jobs.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - one failure never stops the others
                jobs.append(None)
                rec.update(status="failed", error=f"upload failed: {exc}")
            records.append(rec)
    wait([j for j in jobs if j is not None], session=sess, timeout=timeout)
    for rec, job, p in zip(records, jobs, paths, strict=True):
        if job is None:
            continue
        rec["seconds"] = round(time.monotonic() - started, 3)
        if job.status == "succeeded":
            rec.update(status="ok", prediction=job.prediction)
        else:
            rec.update(status="failed", error=job.error)
        if out_dir is not None:
            if job.status == "succeeded":
                target = out_dir / f"{p.stem}.json"
                target.write_text(json.dumps(job.prediction, indent=2), encoding="utf-8")
                rec["outputs"].append(str(target))
            if job.log is not None:
                target = out_dir / f"{p.stem}.log"
                target.write_text(job.log, encoding="utf-8")
                rec["outputs"].append(str(target))
    return BatchResult(records)


# =============================================================================== pipeline nodes


def predict_artifacts(
    service: str,
    inputs: Iterable[Artifact],
    *,
    prefix: str,
    file_arg: str | None = None,
    node: str | None = None,
    run: str | None = None,
    session: Session | None = None,
    timeout: float | tuple[float, float] | None = None,
    args: Mapping[str, Any] | None = None,
) -> list[Artifact]:
    """A pipeline node's work: one sync prediction per input artifact, stored as JSON.

    Each input is downloaded (checksum verified), sent as the model's ``file_arg`` (default:
    its only file argument) with ``args``, and its prediction stored at
    ``<prefix><input stem>.json``. Arguments are checked once, before any call. Returns the
    prediction artifacts (provenance: node, service, run, source URI).
    """
    sess = _session(session)
    arts = builtins.list(inputs)
    if not arts:
        raise ValidationError(f"nothing to send to {service!r}: no input artifacts")
    spec = help(service, session=sess, timeout=timeout)
    if file_arg is None:
        file_arg = _only_file_arg(service, spec, "name the one the inputs go to (FILE_ARG)")
    clean, _ = _check(service, spec, dict(args or {}), {file_arg: __file__})
    if not prefix.endswith("/"):
        prefix += "/"
    sess.store.ensure_bucket(parse_uri(prefix)[0])
    out: list[Artifact] = []
    used: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="oscar-deepaas-") as tmp:
        for n, art in enumerate(arts):
            (path,) = fetch([art], Path(tmp) / f"in-{n}", store=sess.store)
            pred = predict(
                service,
                files={file_arg: path},
                session=sess,
                validate=False,
                timeout=timeout,
                args=clean,
            )
            path.unlink(missing_ok=True)
            stem = _safe_id(Path(art.name).stem)
            out.append(
                store_prediction(
                    sess,
                    pred,
                    prefix,
                    stem,
                    used,
                    n,
                    node=node or service,
                    service=service,
                    run=run,
                    source=art.uri,
                )
            )
    return out


def _only_file_arg(service: str, spec: Any, hint: str) -> str:
    """The model's one file argument (ValidationError naming them, with ``hint``, otherwise)."""
    file_args = [a.name for a in spec if a.is_file]
    if len(file_args) != 1:
        raise ValidationError(
            f"service {service!r} has file arguments {file_args or 'none'}; {hint}"
        )
    return file_args[0]


def store_prediction(
    sess: Session,
    pred: Any,
    prefix: str,
    stem: str,
    used: set[str],
    n: int,
    **provenance: Any,
) -> Artifact:
    """Store ``pred.json()`` as ``<prefix><stem>.json`` (``<stem>-<n>`` if ``stem`` is in
    ``used``, which it joins) and return its artifact with ``provenance``."""
    if stem in used:
        stem = f"{stem}-{n}"
    used.add(stem)
    data = json.dumps(pred.json(), indent=2).encode("utf-8")
    info = sess.store.put_bytes(data, f"{prefix}{stem}.json", content_type="application/json")
    return Artifact.from_object(info, name=f"{stem}.json", **provenance)
