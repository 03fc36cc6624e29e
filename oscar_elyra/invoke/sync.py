"""Sync invocation (``POST /run``): the body codec, :class:`Result` and :func:`run`.

A dict/list input is sent as JSON text (OSCAR hands a JSON body to the script as-is);
text, bytes and files are sent base64-encoded (OSCAR decodes any other body). A file is
streamed through a base64 encoder and the response through an incremental base64
decoder to disk, so memory stays bounded by the chunk size. The response is one base64
file, a base64 zip of several files (unpacked, zip-slip safe), or the script's stdout.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import html
import io
import json
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from oscar_elyra._paths import safe_join, temp_near
from oscar_elyra.client import OscarClient
from oscar_elyra.errors import OscarError, ServiceError, UnsafePathError, ValidationError
from oscar_elyra.redact import redact
from oscar_elyra.session import connect

__all__ = ["Result", "run"]

#: raw bytes read per step when streaming a file input (multiple of 3: no padding mid-stream)
ENCODE_CHUNK = 3 * 1024 * 1024
#: response bytes processed per step
DECODE_CHUNK = 1024 * 1024
#: a response is kept raw (in case it is not base64) up to this size
RAW_LIMIT = 8 * 1024 * 1024
_B64_BLOCK = re.compile(rb"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

_tmp_dirs: list[str] = []
_tmp_lock = threading.Lock()


def _tmpdir(prefix: str) -> Path:
    """A temporary directory removed at interpreter exit."""
    d = tempfile.mkdtemp(prefix=prefix)
    with _tmp_lock:
        if not _tmp_dirs:
            atexit.register(_cleanup_tmp)
        _tmp_dirs.append(d)
    return Path(d)


def _cleanup_tmp() -> None:
    with _tmp_lock:
        while _tmp_dirs:
            shutil.rmtree(_tmp_dirs.pop(), ignore_errors=True)


# ----------------------------------------------------------------------------- files


@contextmanager
def atomic_file(target: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``target`` when the block completes (dropped on error)."""
    fd, tmp = temp_near(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file next to it."""
    with atomic_file(target) as fh:
        fh.write(data)


def check_input_file(path: Path) -> None:
    """Raise :class:`ValidationError` unless ``path`` is an existing regular file."""
    if not path.is_file():
        raise ValidationError(
            f"input file {str(path)!r} does not exist"
            if not path.exists()
            else f"input {str(path)!r} is not a regular file"
        )


# ----------------------------------------------------------------------------- codec


class _B64FileBody:
    """Iterable request body: a file base64-encoded chunk by chunk, with a known length."""

    def __init__(self, path: Path, on_read: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._on_read = on_read

    def __len__(self) -> int:
        return 4 * ((self.size + 2) // 3)

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while chunk := fh.read(ENCODE_CHUNK):
                if self._on_read:
                    self._on_read(len(chunk))
                yield base64.b64encode(chunk)


class _B64Decoder:
    """Incremental strict base64 decoder writing to a file; gives up (``ok=False``) on
    the first byte that cannot be base64, so the caller can treat the body as text.

    OSCAR's base64 answers are one unwrapped line without a newline; a newline (as
    shell stdout ends with) therefore marks text, so "1234\\n" stays text.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.ok = True
        self.carry = b""
        self.ended = False
        self.head = b""

    def feed(self, chunk: bytes) -> None:
        if not self.ok or not chunk:
            return
        if self.ended:
            self.ok = False
            return
        data = self.carry + chunk
        cut = len(data) - len(data) % 4
        block, self.carry = data[:cut], data[cut:]
        if b"=" in block:
            if self.carry or b"=" in block[:-4]:
                self.ok = False
                return
            self.ended = True
        if not _B64_BLOCK.fullmatch(block):
            self.ok = False
            return
        try:
            raw = base64.b64decode(block, validate=True)
        except (binascii.Error, ValueError):
            self.ok = False
            return
        if len(self.head) < 16:
            self.head += raw[: 16 - len(self.head)]
        self.out.write(raw)

    def finish(self) -> bool:
        if self.carry:
            self.ok = False
        return self.ok


def _sniff_ext(head: bytes, content: Path | bytes | None = None) -> str:
    """A file suffix for decoded output starting with ``head`` (``content``: the whole
    output, in a file or in memory)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head.startswith(b"%PDF"):
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        return ".zip"
    if content is None:
        return ".bin"
    in_memory = isinstance(content, bytes)
    size = len(content) if in_memory else content.stat().st_size
    if head.lstrip()[:1] in (b"{", b"[") and size < 64 << 20:
        try:
            json.loads(content if in_memory else content.read_bytes())
            return ".json"
        except (ValueError, UnicodeDecodeError):
            pass
    if in_memory:
        start = content[:65536]
    else:
        with open(content, "rb") as fh:
            start = fh.read(65536)
    try:
        start.decode("utf-8")
        return ".txt"
    except UnicodeDecodeError:
        return ".bin"


class _Spool:
    """Where a decoded answer goes: memory up to ``limit`` bytes, past that a temporary file
    in ``folder()`` (where the answer will end up, so placing it is a rename), made only then:
    a small answer touches the disk once (its file) or never (text)."""

    def __init__(self, folder: Callable[[], Path], limit: int = DECODE_CHUNK) -> None:
        self._folder = folder
        self._limit = limit
        self._buf = bytearray()
        self._fh: IO[bytes] | None = None
        self.path: Path | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._fh is None:
            self._buf += data
            if len(self._buf) <= self._limit:
                return
            fd, self.path = temp_near(self._folder() / "oscar-out")
            self._fh = os.fdopen(fd, "wb")
            data, self._buf = bytes(self._buf), bytearray()
        self._fh.write(data)

    def tell(self) -> int:
        return self.size

    def content(self) -> Path | bytes:
        """The answer: its temporary file (closed) or its bytes."""
        if self._fh is None:
            return bytes(self._buf)
        self._fh.close()
        assert self.path is not None
        return self.path

    def place(self, target: Path) -> None:
        """Make the answer the file ``target`` (atomically)."""
        content = self.content()
        if isinstance(content, bytes):
            write_atomic(target, content)
        else:
            os.replace(content, target)

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._buf = bytearray()


def _zip_clash(names: list[str], dest: Path) -> str | None:
    """Why the members ``names`` cannot all be files under ``dest`` (None if they can)."""
    files: dict[str, str] = {}
    for name in names:
        key = "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
        if key in files:
            return f"member {name!r} appears twice"
        files[key] = name
    for key, name in files.items():
        parts = key.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                return f"{files[parent]!r} is a file and also the folder of {name!r}"
            if (dest / parent).exists() and not (dest / parent).is_dir():
                return f"{parent!r} already exists in {str(dest)!r} as a file"
        if (dest / key).is_dir():
            return f"{key!r} already exists in {str(dest)!r} as a folder"
    return None


def _extract_zip(zpath: Path | IO[bytes], dest: Path, service: str = "") -> list[Path]:
    """Unpack ``zpath`` (a path or a file object) into ``dest``; every member checked before
    anything is written (unsafe paths, symlinks, members that clash as file and folder)."""
    try:
        zf = zipfile.ZipFile(zpath)
    except zipfile.BadZipFile as exc:
        raise ServiceError(f"the service answered a corrupt zip archive: {exc}") from None
    with zf:
        plan = []
        for info in zf.infolist():
            if info.is_dir():
                safe_join(dest, info.filename)
                continue
            # symlink members (unix mode S_IFLNK) are refused too
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafePathError(
                    f"refusing symlink member {info.filename!r} in the output zip"
                )
            plan.append((info, safe_join(dest, info.filename)))
        clash = _zip_clash([info.filename for info, _ in plan], dest)
        if clash:
            who = f"service {service!r}" if service else "the service"
            raise ServiceError(f"{who} answered a zip whose members clash: {clash}")
        written: list[Path] = []
        try:
            for info, target in plan:
                with zf.open(info) as src, atomic_file(target) as dst:
                    shutil.copyfileobj(src, dst, DECODE_CHUNK)
                written.append(target)
        except BaseException as exc:
            for target in written:
                target.unlink(missing_ok=True)
            if isinstance(exc, (OSError, zipfile.BadZipFile, EOFError)):
                raise ServiceError(
                    f"cannot unpack the output zip into {str(dest)!r}: {exc}"
                ) from None
            raise
    return [target for _, target in plan]


def _prepare_body(input: Any) -> tuple[Any, dict[str, str], str | None]:
    """(body, headers, input file stem) for a sync request."""
    if isinstance(input, (dict, list)):
        text = json.dumps(input, ensure_ascii=False)
        return text.encode("utf-8"), {"Content-Type": "application/json"}, None
    if isinstance(input, os.PathLike):
        p = Path(input)
        check_input_file(p)
        if p.stat().st_size == 0:
            raise ValidationError(f"input file {str(p)!r} is empty; give a file with content")
        return _B64FileBody(p), {"Content-Type": "text/plain"}, p.stem
    if isinstance(input, str):
        if not input:
            raise ValidationError("input text is empty; give some text, a file or a dict")
        data = input.encode("utf-8")
    elif isinstance(input, (bytes, bytearray, memoryview)):
        data = bytes(input)
        if not data:
            raise ValidationError("input bytes are empty; give some content")
    elif hasattr(input, "read"):
        # a file object: spool through a temporary file so the body is streamed with a length
        tmpd = _tmpdir("oscar-elyra-in-")
        p = tmpd / (Path(getattr(input, "name", "input") or "input").name or "input")
        with open(p, "wb") as fh:
            shutil.copyfileobj(input, fh, DECODE_CHUNK)
        return _prepare_body(p)
    else:
        raise ValidationError(
            f"unsupported input type {type(input).__name__}: give a Path, str, bytes or dict"
        )
    return base64.b64encode(data), {"Content-Type": "text/plain"}, None


def _receive(resp: Any, service: str, decoded: IO[bytes], raw: IO[bytes]) -> tuple[bool, bytes]:
    """Stream ``resp`` through the base64 decoder into ``decoded``, keeping a raw copy in
    ``raw`` while the body may still be text. Returns (was base64, first decoded bytes)."""
    dec = _B64Decoder(decoded)
    keep_raw = True
    try:
        for chunk in resp.iter_content(DECODE_CHUNK):
            if not chunk:
                continue
            if dec.ok:
                dec.feed(chunk)
            if keep_raw:
                raw.write(chunk)
                if dec.ok and raw.tell() > RAW_LIMIT:
                    keep_raw = False  # valid base64 so far: stop keeping a raw copy
    except OscarError:
        raise
    except Exception as exc:  # noqa: BLE001 - connection dropped mid-response
        raise ServiceError(
            f"service {service!r}: the response was cut off ({redact(str(exc))[:200]})"
        ) from None
    finally:
        resp.close()
    is_b64 = dec.finish() and decoded.tell() > 0
    if not is_b64 and not keep_raw:
        raise ServiceError(f"service {service!r}: a large response looked like base64 but was not")
    return is_b64, dec.head


# ----------------------------------------------------------------------------- Result


@dataclass
class Result:
    """The answer of a sync invocation.

    ``kind`` is ``"file"`` (one output file), ``"files"`` (a zip, unpacked) or
    ``"text"`` (the script's stdout). Files live in ``output`` or, when none was
    given, in a temporary directory removed at interpreter exit.
    """

    service: str
    kind: str
    paths: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    _text: str | None = field(default=None, repr=False)

    @property
    def path(self) -> Path | None:
        """The output file (None for text or several files)."""
        return self.paths[0] if self.kind == "file" else None

    @property
    def bytes(self) -> bytes:
        """The output as bytes (a single file or the text)."""
        if self.kind == "file":
            return self.paths[0].read_bytes()
        if self.kind == "text":
            return (self._text or "").encode("utf-8")
        raise ValidationError(
            f"service {self.service!r} answered {len(self.paths)} files; use .paths"
        )

    @property
    def text(self) -> str:
        """The output as text (UTF-8; invalid bytes replaced)."""
        if self.kind == "text":
            return self._text or ""
        return self.bytes.decode("utf-8", "replace")

    def json(self) -> Any:
        """The output parsed as JSON."""
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise ValidationError(
                f"output of service {self.service!r} is not JSON ({exc}): {self.text[:80]!r}"
            ) from None

    def _repr_png_(self) -> bytes | None:
        if self.kind == "file" and self.paths[0].suffix.lower() == ".png":
            return self.paths[0].read_bytes()
        return None

    def _repr_html_(self) -> str | None:
        if self.kind == "files":
            items = "".join(f"<li>{html.escape(str(p))}</li>" for p in self.paths)
            return f"<b>{html.escape(self.service)}</b>: {len(self.paths)} files<ul>{items}</ul>"
        if self.kind == "file" and self.paths[0].suffix.lower() != ".json":
            return None
        try:
            data = self.json()
        except (ValidationError, OSError):
            return None
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            cols = list(dict.fromkeys(k for r in data for k in r))
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
            rows = "".join(
                "<tr>"
                + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols)
                + "</tr>"
                for r in data
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        if isinstance(data, dict):
            rows = "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                for k, v in data.items()
            )
            return f"<table>{rows}</table>"
        return f"<pre>{html.escape(json.dumps(data, indent=2))}</pre>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        # IPython's text/plain: a text answer (a cow, a log) shows as the text itself
        text_file = self.kind == "file" and self.paths[0].suffix.lower() in (".txt", ".log", ".md")
        if not cycle and (self.kind == "text" or text_file):
            p.text(self.text)
        else:
            p.text(repr(self))

    def __str__(self) -> str:
        if self.kind == "text":
            return self.text
        return "\n".join(str(p) for p in self.paths)


# ----------------------------------------------------------------------------- run


def run(
    service: str,
    input: Any,  # noqa: A002 - the documented name
    output: str | os.PathLike[str] | None = None,
    *,
    client: OscarClient | None = None,
    timeout: float = 300,
) -> Result:
    """Invoke ``service`` synchronously (``POST /run``) and return its :class:`Result`.

    ``input``: a :class:`~pathlib.Path` (streamed), ``str`` text, ``bytes``, a binary
    file object, or a ``dict``/``list`` (sent as JSON). ``output``: a file path for a
    single output, a directory (existing, or ending in ``/``) for files named after the
    input, a path ending in ``.zip`` to keep a multi-file answer zipped.
    """
    cl = connect(client=client).client
    body, headers, stem = _prepare_body(input)
    started = time.monotonic()
    try:
        resp = cl.post_run(service, body, timeout=timeout, headers=headers)
    except ServiceError as exc:
        # a failing script (the embedded cluster answers 500 with its output's tail)
        if exc.log is None and exc.status is not None and exc.status >= 500:
            exc.log = exc.body
        raise
    out = Path(output) if output is not None else None
    out_is_dir = out is not None and (out.is_dir() or str(output).endswith(("/", os.sep)))
    work: list[Path] = []  # a temporary folder for the answer's files, made when needed

    def folder() -> Path:
        """Where the answer's file(s) go when no file name is given."""
        if out is not None:
            return out if out_is_dir else out.parent
        if not work:
            work.append(_tmpdir("oscar-elyra-run-"))
        return work[0]

    decoded = _Spool(folder)
    raw = tempfile.SpooledTemporaryFile(max_size=RAW_LIMIT)
    try:
        is_b64, head = _receive(resp, service, decoded, raw)
        seconds = time.monotonic() - started
        if not is_b64:
            decoded.discard()
            raw.seek(0)
            text = raw.read().decode("utf-8", "replace")
            paths = []
            if out is not None:
                target = (out / f"{stem or 'output'}.txt") if out_is_dir else out
                write_atomic(target, text.encode("utf-8"))
                paths = [target]
            return Result(service, "text", paths, seconds, _text=text)
        if head.startswith(b"PK\x03\x04") and not (out is not None and out.suffix == ".zip"):
            content = decoded.content()
            try:
                zipped = io.BytesIO(content) if isinstance(content, bytes) else content
                files = _extract_zip(zipped, out if out is not None else folder(), service)
            finally:
                decoded.discard()
            return Result(service, "files", files, seconds)
        if out is not None and not out_is_dir:
            target = out
        else:
            target = folder() / f"{stem or 'output'}{_sniff_ext(head, decoded.content())}"
        decoded.place(target)
        return Result(service, "file", [target], seconds)
    except BaseException:
        decoded.discard()
        raise
    finally:
        raw.close()
