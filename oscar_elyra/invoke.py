"""Invoking OSCAR services: sync ``run``, async ``submit``/``wait``, batch ``map``.

Sync (``/run``): a dict/list input is sent as JSON text (OSCAR hands a JSON body to
the script as-is); text, bytes and files are sent base64-encoded (OSCAR decodes
any other body). A file is streamed through a base64 encoder and the response
through an incremental base64 decoder to disk, so memory stays bounded by the
chunk size. The response is one base64 file, a base64 zip of several files
(unpacked, zip-slip safe), or the script's plain stdout.

Async: each input is uploaded under a run-unique key ``<input path>/<run_id>-<n>-<name>``
in the service's input path. OSCAR scripts name outputs after the input basename,
so the outputs of input ``n`` are exactly the objects under
``<output path>/<run_id>-<n>-``; the job list (and job logs) tell failures apart.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import builtins
import html
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from oscar_elyra.errors import (
    NotFoundError,
    OscarError,
    ServiceError,
    TimeoutError,
    UnsafePathError,
    ValidationError,
)
from oscar_elyra._paths import safe_join, temp_near
from oscar_elyra.session import store_for
from oscar_elyra.storage import ObjectStore, format_uri, parse_uri

if TYPE_CHECKING:
    from oscar_elyra.client import OscarClient

__all__ = ["BatchResult", "Job", "Result", "map", "run", "submit", "wait"]

#: raw bytes read per step when streaming a file input (multiple of 3: no padding mid-stream)
ENCODE_CHUNK = 3 * 1024 * 1024
#: response bytes processed per step
DECODE_CHUNK = 1024 * 1024
LOG_EXCERPT = 2000
#: seconds between output polls of map() while few jobs are in flight
MAP_POLL = float(os.environ.get("OSCAR_ELYRA_MAP_POLL", "0.03"))
#: least seconds between job-list polls made because a job's outputs just appeared
JOBS_POLL_MIN = 0.1
#: a response is kept raw (in case it is not base64) up to this size
RAW_LIMIT = 8 * 1024 * 1024
_B64_BLOCK = re.compile(rb"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_TERMINAL = ("Succeeded", "Failed")

_tmp_dirs: list[str] = []
_tmp_lock = threading.Lock()


def _tmpdir(prefix: str) -> Path:
    d = tempfile.mkdtemp(prefix=prefix)
    with _tmp_lock:
        if not _tmp_dirs:
            atexit.register(_cleanup_tmp)
        _tmp_dirs.append(d)
    return Path(d)


def _cleanup_tmp() -> None:
    for d in _tmp_dirs:
        shutil.rmtree(d, ignore_errors=True)


def _client(client: OscarClient | None) -> OscarClient:
    if client is not None:
        return client
    from oscar_elyra.client import OscarClient

    return OscarClient()


# =============================================================================== sync


class _B64FileBody:
    """Iterable request body: a file base64-encoded chunk by chunk, with a known length."""

    def __init__(self, path: Path, on_read=None) -> None:
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
    shell stdout ends with) therefore marks text, so "1234\n" stays text.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.ok = True
        self.carry = b""
        self.ended = False
        self.head = b""

    def feed(self, chunk: bytes) -> None:
        if not self.ok:
            return
        if not chunk:
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


def _sniff_ext(head: bytes, path: Path | None = None) -> str:
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
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"[") and path is not None and path.stat().st_size < 64 << 20:
        try:
            json.loads(path.read_bytes())
            return ".json"
        except (ValueError, UnicodeDecodeError):
            pass
    if path is not None:
        try:
            with open(path, "rb") as fh:
                fh.read(65536).decode("utf-8")
            return ".txt"
        except UnicodeDecodeError:
            pass
    return ".bin"


def _extract_zip(zpath: Path, dest: Path) -> list[Path]:
    """Unpack ``zpath`` into ``dest``; every member checked before anything is written."""
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
        out = []
        for info, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temp_near(target, mkdir=False)
            try:
                with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, DECODE_CHUNK)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            out.append(target)
    return out


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

    def __str__(self) -> str:
        if self.kind == "text":
            return self.text
        return "\n".join(str(p) for p in self.paths)


def _prepare_body(input: Any) -> tuple[Any, dict[str, str], str | None]:
    """(body, headers, input file stem) for a sync request."""
    if isinstance(input, (dict, list)):
        text = json.dumps(input, ensure_ascii=False)
        return text.encode("utf-8"), {"Content-Type": "application/json"}, None
    if isinstance(input, os.PathLike):
        p = Path(input)
        if not p.is_file():
            raise ValidationError(
                f"input file {str(p)!r} does not exist"
                if not p.exists()
                else f"input {str(p)!r} is not a regular file"
            )
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
    cl = _client(client)
    body, headers, stem = _prepare_body(input)
    started = time.monotonic()
    resp = cl.post_run(service, body, timeout=timeout, headers=headers)
    work = _tmpdir("oscar-elyra-run-") if output is None else None
    out = Path(output) if output is not None else None
    out_is_dir = out is not None and (out.is_dir() or str(output).endswith(("/", os.sep)))
    stage_dir = (out if out_is_dir else out.parent) if out is not None else work
    assert stage_dir is not None
    stage_dir.mkdir(parents=True, exist_ok=True)
    fd, decoded = temp_near(stage_dir / "oscar-out", mkdir=False)
    raw = tempfile.SpooledTemporaryFile(max_size=RAW_LIMIT)
    try:
        with os.fdopen(fd, "wb") as dec_fh:
            dec = _B64Decoder(dec_fh)
            keep_raw, raw_truncated = True, False
            try:
                for chunk in resp.iter_content(DECODE_CHUNK):
                    if not chunk:
                        continue
                    if dec.ok:
                        dec.feed(chunk)
                    if keep_raw:
                        raw.write(chunk)
                        if dec.ok and raw.tell() > RAW_LIMIT:
                            # valid base64 so far: stop keeping a raw copy (bounded memory/disk)
                            keep_raw, raw_truncated = False, True
            except OscarError:
                raise
            except Exception as exc:  # noqa: BLE001 - connection dropped mid-response
                from oscar_elyra.redact import redact

                raise ServiceError(
                    f"service {service!r}: the response was cut off ({redact(str(exc))[:200]})"
                ) from None
            finally:
                resp.close()
            is_b64 = dec.finish() and dec_fh.tell() > 0
            if not is_b64 and raw_truncated:
                raise ServiceError(
                    f"service {service!r}: a large response looked like base64 but was not"
                )
        seconds = time.monotonic() - started
        if not is_b64:
            decoded.unlink(missing_ok=True)
            raw.seek(0)
            text = raw.read().decode("utf-8", "replace")
            paths = []
            if out is not None:
                target = (out / f"{stem or 'output'}.txt") if out_is_dir else out
                _write_atomic(target, text.encode("utf-8"))
                paths = [target]
            return Result(service, "text", paths, seconds, _text=text)
        head = dec.head
        if head.startswith(b"PK\x03\x04") and not (out is not None and out.suffix == ".zip"):
            dest = out if out is not None else work
            assert dest is not None
            try:
                files = _extract_zip(decoded, dest)
            finally:
                decoded.unlink(missing_ok=True)
            return Result(service, "files", files, seconds)
        if out is not None and not out_is_dir:
            target = out
        else:
            target = (
                out if out_is_dir else work
            ) / f"{stem or 'output'}{_sniff_ext(head, decoded)}"  # type: ignore[operator]
        os.replace(decoded, target)
        return Result(service, "file", [target], seconds)
    except BaseException:
        decoded.unlink(missing_ok=True)
        raise
    finally:
        raw.close()


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_near(target, mkdir=False)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# =============================================================================== async


def _minio_paths(svc: dict, field_name: str) -> list[str]:
    out = []
    for io in svc.get(field_name) or []:
        provider = str(io.get("storage_provider") or "minio")
        if provider.split(".", 1)[0] in ("minio", "s3") and io.get("path"):
            out.append(str(io["path"]).strip("/"))
    return out


def _service_paths(cl: OscarClient, service: str) -> tuple[str, list[str]]:
    svc = cl.get_service(service)
    inputs = _minio_paths(svc, "input")
    if not inputs:
        raise ValidationError(
            f"service {service!r} has no MinIO input path; it cannot be invoked asynchronously "
            "through storage (add an input path to its definition)"
        )
    return inputs[0], _minio_paths(svc, "output")


@dataclass
class Job:
    """An input submitted to an async service and what became of it.

    ``status``: Pending, Running, Succeeded, Failed (or TimedOut after :func:`wait`).
    ``outputs``: ``s3://`` URIs of this input's outputs.
    """

    service: str
    input: str
    input_uri: str
    job_name: str | None = None
    status: str = "Pending"
    outputs: list[str] = field(default_factory=list)
    log: str | None = None
    run_id: str = ""
    index: int = 0
    output_paths: list[str] = field(default_factory=list, repr=False)
    submitted_at: float = 0.0
    downloaded: list[Path] = field(default_factory=list, repr=False)
    _client: Any = field(default=None, repr=False, compare=False)
    _store: Any = field(default=None, repr=False, compare=False)
    _seen: tuple = field(default=(), repr=False, compare=False)
    _since: float = field(default=0.0, repr=False, compare=False)

    @property
    def stem(self) -> str:
        """The run-unique prefix every output of this input starts with."""
        return f"{self.run_id}-{self.index}-"

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL

    def output_name(self, uri: str) -> str:
        """Output path relative to its output path, without the run-unique prefix."""
        _, key = parse_uri(uri)
        for out in self.output_paths:
            _, prefix = parse_uri(out + "/")
            if key.startswith(prefix):
                rel = key[len(prefix) :]
                return rel[len(self.stem) :] if rel.startswith(self.stem) else rel
        return PurePosixPath(key).name

    def download(
        self, directory: str | os.PathLike[str], *, keep_prefix: bool = False
    ) -> list[Path]:
        """Download this job's outputs into ``directory`` (names without the run prefix)."""
        paths = []
        for uri in self.outputs:
            rel = self.output_name(uri)
            if keep_prefix:
                rel = self.stem + rel
            paths.append(self._store.get_file(uri, safe_join(directory, rel)))
        self.downloaded = paths
        return paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "input": self.input,
            "input_uri": self.input_uri,
            "job_name": self.job_name,
            "status": self.status,
            "outputs": list(self.outputs),
            "log": self.log,
            "run_id": self.run_id,
        }


def _download_all(jobs: list[Job], directory: str | os.PathLike[str]) -> None:
    """Download outputs; jobs whose output names would collide keep their run prefix."""
    names: dict[str, int] = {}
    for j in jobs:
        for uri in j.outputs:
            names[j.output_name(uri)] = names.get(j.output_name(uri), 0) + 1
    for j in jobs:
        clash = any(names[j.output_name(u)] > 1 for u in j.outputs)
        j.download(directory, keep_prefix=clash)


def _new_run_id() -> str:
    return time.strftime("%y%m%d%H%M%S") + uuid.uuid4().hex[:6]


def _check_inputs(paths: list[Path]) -> None:
    for p in paths:
        if not p.is_file():
            raise ValidationError(
                f"input file {str(p)!r} does not exist"
                if not p.exists()
                else f"input {str(p)!r} is not a regular file"
            )


def _plan(
    service: str,
    paths: list[Path],
    in_path: str,
    out_paths: list[str],
    run_id: str,
    start_index: int,
    cl: Any,
    st: ObjectStore,
) -> list[Job]:
    bucket, prefix = parse_uri(in_path)
    now = time.time()
    jobs = []
    for n, p in enumerate(paths, start=start_index):
        name = f"{run_id}-{n}-{p.name}"
        jobs.append(
            Job(
                service=service,
                input=str(p),
                input_uri=format_uri(bucket, f"{prefix}/{name}" if prefix else name),
                run_id=run_id,
                index=n,
                output_paths=out_paths,
                submitted_at=now,
                _client=cl,
                _store=st,
            )
        )
    return jobs


def _upload(jobs: list[Job], st: ObjectStore) -> list[BaseException | None]:
    """Upload the inputs of ``jobs`` in parallel; one error (or None) per job."""

    def one(job: Job) -> BaseException | None:
        try:
            st.put_file(job.input, job.input_uri, _parallel=1 if len(jobs) > 1 else None)
            job.submitted_at = time.time()
            return None
        except Exception as exc:  # noqa: BLE001 - reported per job
            return exc

    if len(jobs) == 1:
        return [one(jobs[0])]
    with ThreadPoolExecutor(max_workers=min(st.workers, len(jobs))) as pool:
        return list(pool.map(one, jobs))


def submit(
    service: str,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
    run_id: str | None = None,
) -> list[Job]:
    """Upload each input file under a run-unique key in the service's input path.

    The key is ``<input path>/<run id>-<n>-<file name>``, the run id being ``run_id``
    (letters, digits, ``_``, ``.``) plus a random suffix, or a fresh time-based id.
    Returns one :class:`Job` per input (pass them to :func:`wait`).
    """
    cl = _client(client)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValidationError("no input files given")
    _check_inputs(paths)
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9_.]+", run_id):
        raise ValidationError(f"run_id {run_id!r} may only contain letters, digits, '_' and '.'")
    # a label given by the caller gets a random suffix: every submission stays unique
    rid = f"{run_id}.{uuid.uuid4().hex[:6]}" if run_id else _new_run_id()
    in_path, out_paths = _service_paths(cl, service)
    st = store if store is not None else store_for(cl, progress=False)
    jobs = _plan(service, paths, in_path, out_paths, rid, 1, cl, st)
    errors = _upload(jobs, st)
    bad = next((e for e in errors if e is not None), None)
    if bad is not None:
        raise bad
    return jobs


class _Tracker:
    """Follows jobs of one service: their outputs (by run-unique prefix) and the job list.

    An input is done when its mapped job (matched through the job log, which mentions the
    input's name) is terminal, or when its outputs exist and did not change between two
    polls.
    """

    def __init__(self, service: str, cl: Any, st: ObjectStore) -> None:
        self.service = service
        self.cl = cl
        self.st = st
        self.jobs: list[Job] = []
        self.mapped: dict[str, Job] = {}
        self.ignored: set[str] = set()
        self.last_jobs_poll = 0.0

    def _list(self, out: str, key_prefix: str) -> list[str]:
        bucket, prefix = parse_uri(out + "/")
        try:
            return [
                o.uri
                for o in self.st.list(format_uri(bucket, prefix + key_prefix))
                if not o.key.endswith("/")
            ]
        except NotFoundError:
            return []

    def poll_outputs(self, only: list[Job] | None = None, stable_secs: float = 0.0) -> None:
        """List outputs of pending jobs (or of ``only``); a job whose outputs exist and did
        not change between two polls at least ``stable_secs`` apart has succeeded."""
        pending = [j for j in (self.jobs if only is None else only) if not j.done]
        if not pending:
            return
        found: dict[int, list[str]] = {id(j): [] for j in pending}
        if len(pending) <= 16:
            for j in pending:
                for out in j.output_paths:
                    found[id(j)] += self._list(out, j.stem)
        else:  # one listing per run and output path
            groups: dict[tuple[str, str], dict[str, Job]] = {}
            for j in pending:
                for out in j.output_paths:
                    groups.setdefault((out, j.run_id), {})[j.stem] = j
            for (out, rid), stems in groups.items():
                _, prefix = parse_uri(out + "/")
                for uri in self._list(out, f"{rid}-"):
                    rest = parse_uri(uri)[1][len(prefix) :]
                    m = re.match(r"[^-]+-\d+-", rest)
                    job = stems.get(m.group(0)) if m else None
                    if job is not None:
                        found[id(job)].append(uri)
        now = time.monotonic()
        for j in pending:
            outs = tuple(sorted(found[id(j)]))
            if outs != j._seen:
                j._seen, j._since = outs, now
            elif outs and now - j._since >= stable_secs and now > j._since:
                j.status = "Succeeded"
            j.outputs = list(outs)

    def poll_jobs(self) -> None:
        pending = [j for j in self.jobs if not j.done]
        if not pending:
            return
        self.last_jobs_poll = time.monotonic()
        since = min(j.submitted_at for j in pending) - 2
        try:
            listing = self.cl.list_jobs(self.service)
        except OscarError:
            return
        by_stem = {j.stem: j for j in pending}
        for name, info in listing.items():
            status = str(info.get("status") or "")
            job = self.mapped.get(name)
            if job is None:
                if name in self.ignored or status not in _TERMINAL:
                    continue
                if _created(info) < since:
                    self.ignored.add(name)
                    continue
                try:
                    text = self.cl.get_job_log(self.service, name)
                except OscarError:
                    continue
                job = next((j for s, j in by_stem.items() if s in text), None)
                if job is None:
                    self.ignored.add(name)
                    continue
                self.mapped[name] = job
                job.job_name = name
                if status == "Failed":
                    job.log = _excerpt(text)
            if job.done:
                continue
            if status == "Failed":
                if job.log is None:
                    try:
                        job.log = _excerpt(self.cl.get_job_log(self.service, name))
                    except OscarError:
                        job.log = ""
                job.status = "Failed"
            elif status == "Succeeded":
                outs = []
                for out in job.output_paths:
                    outs += self._list(out, job.stem)
                job.outputs = sorted(outs)
                job.status = "Succeeded"
            elif status:
                job.status = status

    def step(self, jobs_every: float = 1.0, only: list[Job] | None = None) -> None:
        self.poll_outputs(only, stable_secs=0.1)
        pending = [j for j in self.jobs if not j.done]
        if not pending:
            return
        since = time.monotonic() - self.last_jobs_poll
        # outputs just appeared: the job record may already say Succeeded (its outputs are
        # then complete), which is sooner than waiting for them to stay unchanged
        if since >= jobs_every or (since >= JOBS_POLL_MIN and any(j._seen for j in pending)):
            self.poll_jobs()


def _created(info: dict) -> float:
    from datetime import datetime

    text = str(info.get("creation_time") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")  # unknown: consider it recent


def _excerpt(text: str | None) -> str:
    from oscar_elyra.redact import redact

    text = redact(text or "").strip()
    return text if len(text) <= LOG_EXCERPT else "…" + text[-LOG_EXCERPT:]


def _poll_sleep(elapsed: float) -> float:
    return min(1.0, 0.1 + elapsed / 30)


def wait(
    jobs: Job | Sequence[Job],
    timeout: float = 600,
    *,
    download_to: str | os.PathLike[str] | None = None,
    raise_on_failure: bool = True,
    poll: float | None = None,
) -> list[Job]:
    """Wait until every job succeeded or failed; optionally download the outputs.

    A Failed job raises :class:`ServiceError` with its log excerpt (once all others are
    settled); running out of ``timeout`` raises :class:`TimeoutError` naming the inputs
    still pending.
    """
    job_list = [jobs] if isinstance(jobs, Job) else list(jobs)
    if not job_list:
        return []
    started = time.monotonic()
    trackers: dict[str, _Tracker] = {}
    for j in job_list:
        t = trackers.get(j.service)
        if t is None:
            t = trackers[j.service] = _Tracker(j.service, j._client, j._store)
        t.jobs.append(j)
    while True:
        for t in trackers.values():
            t.step()
        pending = [j for j in job_list if not j.done]
        if not pending:
            break
        elapsed = time.monotonic() - started
        if elapsed >= timeout:
            for j in pending:
                j.status = "TimedOut"
            names = ", ".join(Path(j.input).name for j in pending[:10])
            more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
            raise TimeoutError(
                f"{len(pending)} of {len(job_list)} inputs of service {job_list[0].service!r} "
                f"still pending after {timeout:g} s: {names}{more}"
            )
        time.sleep(poll if poll is not None else _poll_sleep(elapsed))
    if download_to is not None:
        _download_all([j for j in job_list if j.status == "Succeeded"], download_to)
    failed = [j for j in job_list if j.status == "Failed"]
    if failed and raise_on_failure:
        first = failed[0]
        raise ServiceError(
            f"{len(failed)} of {len(job_list)} jobs of service {first.service!r} failed "
            f"(first: input {Path(first.input).name!r}, job {first.job_name}); log:\n"
            f"{first.log or '(empty)'}",
            log=first.log,
        )
    return job_list


# =============================================================================== batch


class BatchResult(builtins.list):
    """Records of a :func:`map` run: dicts with input, status, outputs, error, seconds."""

    def to_pandas(self):
        """The records as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(list(self), columns=["input", "status", "outputs", "error", "seconds"])

    @property
    def ok(self) -> bool:
        """True when no record failed."""
        return all(r["status"] in ("ok", "skipped") for r in self)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def _existing_outputs(output_dir: Path | None, path: Path, prior: dict | None) -> list[str] | None:
    """Outputs of ``path`` already in ``output_dir`` (resume), or None."""
    if prior and prior.get("status") == "ok":
        outs = prior.get("outputs") or []
        if outs and all(Path(o).exists() for o in outs):
            return list(outs)
    if output_dir is None or not output_dir.is_dir():
        return None
    stem = path.stem
    found = sorted(
        str(p)
        for p in output_dir.iterdir()
        if not p.name.startswith(".")
        and (p.name == stem or p.name.startswith(stem + ".") or (p.is_dir() and p.name == stem))
    )
    return found or None


def _expand_inputs(files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        p = Path(files)
        if p.is_dir():
            return sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith("."))
        return [p]
    return [Path(f) for f in files]


def _write_records(record_file: Path, records: list[dict]) -> None:
    _write_atomic(record_file, json.dumps(records, indent=2, default=str).encode("utf-8"))


def map(  # noqa: A001 - the documented name
    service: str,
    files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    mode: str = "async",
    concurrency: int = 4,
    retries: int = 1,
    resume: bool = True,
    output_dir: str | os.PathLike[str] | None = None,
    record_file: str | os.PathLike[str] | None = None,
    *,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
    timeout: float = 600,
    progress: bool | None = None,
) -> BatchResult:
    """Run ``service`` on every file; one failure never aborts the others.

    ``mode``: "async" (through the input bucket, at most ``concurrency`` jobs in
    flight) or "sync" (``concurrency`` parallel ``/run`` calls). Each input is tried
    up to ``1 + retries`` times. With ``resume``, inputs whose outputs already exist
    in ``output_dir`` (or are recorded ok in ``record_file``) are skipped.
    ``timeout`` bounds each attempt. Returns a :class:`BatchResult`.
    """
    from oscar_elyra.progress import bar

    if mode not in ("async", "sync"):
        raise ValidationError(f"mode must be 'async' or 'sync', not {mode!r}")
    if concurrency < 1:
        raise ValidationError("concurrency must be >= 1")
    paths = _expand_inputs(files)
    if not paths:
        raise ValidationError("no input files to process")
    out_dir = Path(output_dir) if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    rec_path = Path(record_file) if record_file is not None else None
    prior: dict[str, dict] = {}
    if resume and rec_path is not None and rec_path.is_file():
        try:
            prior = {r["input"]: r for r in json.loads(rec_path.read_text()) if "input" in r}
        except (ValueError, TypeError, KeyError):
            prior = {}
    records: list[dict] = [
        {"input": str(p), "status": "pending", "outputs": [], "error": None, "seconds": 0.0}
        for p in paths
    ]
    todo = []
    for rec, p in zip(records, paths, strict=True):
        if not p.is_file():
            rec.update(status="failed", error=f"input file {str(p)!r} does not exist")
            continue
        existing = _existing_outputs(out_dir, p, prior.get(str(p))) if resume else None
        if existing:
            rec.update(status="skipped", outputs=existing)
            continue
        todo.append((rec, p))
    cl = _client(client)
    pbar = bar(len(records), f"{service} ({mode})", unit="file", enabled=progress)
    pbar.update(len(records) - len(todo))
    try:
        if mode == "sync":
            _map_sync(service, todo, cl, out_dir, concurrency, retries, timeout, pbar)
        else:
            st = store if store is not None else store_for(cl, progress=False)
            _map_async(service, todo, cl, st, out_dir, concurrency, retries, timeout, pbar)
    finally:
        pbar.close()
        if rec_path is not None:
            _write_records(rec_path, records)
    return BatchResult(records)


def _map_sync(service, todo, cl, out_dir, concurrency, retries, timeout, pbar) -> None:
    def one(item) -> None:
        rec, p = item
        t0 = time.monotonic()
        for _attempt in range(retries + 1):
            try:
                target = out_dir if out_dir is not None else None
                if target is not None:
                    # one file -> <stem><ext> in out_dir; several -> unpacked into <stem>/
                    res = run(service, p, client=cl, timeout=timeout)
                    outs = _place_sync(res, target, p)
                else:
                    res = run(service, p, client=cl, timeout=timeout)
                    outs = [str(x) for x in res.paths]
                rec.update(status="ok", outputs=outs, error=None)
                break
            except OscarError as exc:
                rec.update(status="failed", error=_err(exc))
                if exc.exit_code == 2:
                    break
            except Exception as exc:  # noqa: BLE001 - one failure never aborts the batch
                rec.update(status="failed", error=_err(exc))
        rec["seconds"] = round(time.monotonic() - t0, 3)
        pbar.update(1)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, todo))


def _place_sync(res: Result, out_dir: Path, p: Path) -> list[str]:
    if res.kind == "text":
        target = out_dir / f"{p.stem}.txt"
        _write_atomic(target, res.text.encode("utf-8"))
        return [str(target)]
    if res.kind == "file":
        target = out_dir / f"{p.stem}{res.paths[0].suffix}"
        shutil.move(str(res.paths[0]), target)
        return [str(target)]
    common = Path(os.path.commonpath([str(x) for x in res.paths]))
    if common in res.paths:
        common = common.parent
    outs = []
    for x in res.paths:
        target = safe_join(out_dir / p.stem, x.relative_to(common).as_posix())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(x), target)
        outs.append(str(target))
    return outs


def _err(exc: BaseException) -> str:
    from oscar_elyra.redact import redact

    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + "…"


def _map_async(service, todo, cl, st, out_dir, concurrency, retries, timeout, pbar) -> None:
    if not todo:
        return
    in_path, out_paths = _service_paths(cl, service)
    run_id = _new_run_id()
    queue = list(reversed(todo))  # pop() from the end keeps input order
    attempts: dict[int, int] = {}
    inflight: dict[int, tuple[dict, Path, Job]] = {}
    tracker = _Tracker(service, cl, st)
    counter = 0
    lat: list[float] = []
    next_poll: dict[int, float] = {}
    finished: list[tuple[dict, Job]] = []

    def settle(rec: dict, p: Path, error: str) -> None:
        rec.update(status="failed", error=error)
        if attempts.get(id(rec), 0) < retries:
            attempts[id(rec)] = attempts.get(id(rec), 0) + 1
            queue.append((rec, p))
        else:
            finish(rec)

    def finish(rec: dict) -> None:
        rec["seconds"] = round(time.monotonic() - rec.pop("_t0", time.monotonic()), 3)
        pbar.update(1)

    def launch() -> None:
        """Upload queued inputs while fewer than ``concurrency`` are in flight."""
        nonlocal counter
        batch = []
        while queue and len(inflight) + len(batch) < concurrency:
            batch.append(queue.pop())
        if not batch:
            return
        jobs = []
        for rec, p in batch:
            counter += 1
            rec.setdefault("_t0", time.monotonic())
            jobs += _plan(service, [p], in_path, out_paths, run_id, counter, cl, st)
        for (rec, p), job, err in zip(batch, jobs, _upload(jobs, st), strict=True):
            if err is None:
                inflight[id(job)] = (rec, p, job)
            elif isinstance(err, OscarError) and err.exit_code == 2:
                rec.update(status="failed", error=_err(err))
                finish(rec)
            else:
                settle(rec, p, _err(err))

    while inflight or queue:
        launch()
        tracker.jobs = [v[2] for v in inflight.values()]
        # poll a job's outputs only once it is about as old as the quickest jobs so far,
        # then often, backing off the longer it is overdue
        min_age = 0.7 * min(lat[-32:]) if lat else 0.0
        mono, now = time.monotonic(), time.time()
        due = [
            j
            for j in tracker.jobs
            if next_poll.get(id(j), 0.0) <= mono and now - j.submitted_at >= min_age
        ]
        if tracker.jobs:
            tracker.step(only=due)
        for j in due:
            overdue = max(0.0, now - j.submitted_at - min_age)
            next_poll[id(j)] = mono + min(0.5, MAP_POLL + 0.1 * overdue)
        succeeded = []
        for key, (rec, p, job) in list(inflight.items()):
            if job.status == "Succeeded":
                del inflight[key]
                lat.append(time.time() - job.submitted_at)
                succeeded.append((rec, p, job))
            elif job.status == "Failed":
                del inflight[key]
                rec["job"] = job.job_name
                tail = (job.log or "").strip()[-400:]
                settle(rec, p, _err(ServiceError(f"job {job.job_name} failed; log tail: {tail}")))
            elif now - job.submitted_at > timeout:
                del inflight[key]
                settle(rec, p, f"no output after {timeout:g} s")
        if succeeded:
            launch()  # the freed slots get their next inputs before the downloads
            for rec, p, job in succeeded:
                try:
                    outs = (
                        [str(x) for x in job.download(out_dir)]
                        if out_dir is not None
                        else list(job.outputs)
                    )
                    rec.update(status="ok", outputs=outs, error=None, job=job.job_name)
                    finished.append((rec, job))
                    finish(rec)
                except OscarError as exc:
                    settle(rec, p, _err(exc))
        if inflight and not (queue and len(inflight) < concurrency):
            mono, now = time.monotonic(), time.time()
            wake = min(
                max(next_poll.get(id(j), 0.0), mono + j.submitted_at + min_age - now)
                for _, _, j in inflight.values()
            )
            time.sleep(min(0.25, max(0.01, wake - mono)))
    _late_outputs(finished, tracker, out_dir)


def _late_outputs(finished: list[tuple[dict, Job]], tracker: _Tracker, out_dir) -> None:
    """One listing of the run at the end: outputs uploaded after a job was seen complete
    (a slow multi-file upload) are added and downloaded too."""
    if not finished:
        return
    job0 = finished[0][1]
    by_stem = {j.stem: (rec, j) for rec, j in finished}
    late: dict[str, list[str]] = {}
    for out in job0.output_paths:
        _, prefix = parse_uri(out + "/")
        for uri in tracker._list(out, f"{job0.run_id}-"):
            m = re.match(r"[^-]+-\d+-", parse_uri(uri)[1][len(prefix) :])
            hit = by_stem.get(m.group(0)) if m else None
            if hit is not None and uri not in hit[1].outputs:
                late.setdefault(hit[1].stem, []).append(uri)
    for stem, uris in late.items():
        rec, job = by_stem[stem]
        job.outputs = sorted(job.outputs + uris)
        try:
            if out_dir is not None:
                rec["outputs"] = [str(x) for x in job.download(out_dir)]
            else:
                rec["outputs"] = list(job.outputs)
        except OscarError as exc:
            rec.update(status="failed", error=_err(exc))
