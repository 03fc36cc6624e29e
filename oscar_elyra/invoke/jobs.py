"""Async invocation: :func:`submit` inputs through a service's input path, :func:`wait`.

Each input is uploaded under a run-unique key ``<input path>/<run_id>-<n>-<name>`` in the
service's input path; ``<run_id>-<n>-`` is the input's *stem*.

**Completion comes from the job record.** On OSCAR a job's pod ends after the supervisor
has uploaded every output, so an input is done when its job is Succeeded or Failed in
``GET /system/logs/{svc}``; only then are its outputs listed. A job is matched to its input
through its log (the supervisor logs ``Downloading item from bucket 'B' with key 'K'``).
Outputs that merely stopped changing never make an input done, with one documented
exception: when no job record for the input can be found any more (deleted or expired),
outputs that stayed unchanged for ``settle`` seconds are taken, with a warning.

**Outputs are attributed to their job**, whatever the service calls them:

1. every object under the service's output paths whose key contains the input's stem
   (``<stem>.json``, ``output_<stem>.png``, ``<stem>/...``);
2. every object the job's log says it uploaded (``Uploading file 'K' to bucket 'B'``, as
   OSCAR's supervisor and the embedded cluster log them): this covers fixed names such as
   ``output.png``;
3. a fixed-name output (no stem in its key) is only accepted when no other job of the same
   :func:`wait` or :func:`~oscar_elyra.invoke.map` was in flight meanwhile, since such
   outputs overwrite each other; else the input fails with an error naming the service
   and the fix (one job at a time, or sync). Without a job log, fixed-name outputs of a
   lone job are found as the new objects of its output paths (with a warning).

A Succeeded job to which no output can be attributed is a failure ("succeeded but wrote
no outputs"): on OSCAR a failing script still gives a Succeeded job.

``via="job"`` delivers the same run-unique object through ``POST /job/{service}``
instead: the object is uploaded next to the input path (``<input bucket>/.oscar-elyra-job/``,
which starts no job) and the request body is a MinIO storage event naming it, which
OSCAR's supervisor downloads as the job's input, so outputs are attributed exactly alike.

**Resumable submissions:** with ``record=PATH``, :func:`submit` writes the plan first and
then one line per upload as it happens (JSON lines); :func:`resume` sends only the inputs
not recorded as queued.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra._paths import safe_join, slug, temp_near
from oscar_elyra.client import OscarClient
from oscar_elyra.errors import (
    NotFoundError,
    OscarError,
    ServiceError,
    TimeoutError,
    ValidationError,
)
from oscar_elyra.invoke.sync import check_input_file
from oscar_elyra.redact import redact
from oscar_elyra.session import connect
from oscar_elyra.storage import ObjectStore, format_uri, object_created_event, parse_uri

__all__ = [
    "Job",
    "async_paths",
    "new_run_id",
    "read_submission",
    "resume",
    "storage_event",
    "submit",
    "wait",
]

#: characters of a failed job's log kept (the tail)
LOG_EXCERPT = 2000
#: least seconds between job-list polls made because a job's outputs just appeared
JOBS_POLL_MIN = 0.1
#: seconds outputs must stay unchanged before they are taken without a job record
SETTLE = 10.0
#: job logs read at once
LOG_READERS = 4
#: job-list polls at which a matched job's log is tried before it is settled without it
LOG_TRIES = 3
#: seconds of clock difference tolerated between this machine and the cluster
CLOCK_SKEW = 2.0
_TERMINAL = ("Succeeded", "Failed")
#: a run-unique stem anywhere in a key (time-based or ``<label>.<6 hex>`` run ids)
_ANY_STEM = re.compile(r"(?:\d{12}|\.)[0-9a-f]{6}-\d+-")
#: the ``<run_id>-<n>-`` stem an output key starts with (relative to its output path)
_STEM = re.compile(r"[^-]+-\d+-")
#: where ``via="job"`` stages inputs: a folder of the input bucket outside the input path
JOB_STAGING = ".oscar-elyra-job"
VIA = ("bucket", "job")
_DOWNLOAD_LINE = re.compile(r"Downloading item from bucket '([^']*)' with key '([^']*)'")
_UPLOAD_LINE = re.compile(r"Uploading file '([^']*)' to bucket '([^']*)'")


def new_run_id(label: str | None = None) -> str:
    """A fresh run-unique id for input keys: ``<label>.<6 hex>``, or time-based without a label.

    ``label`` (e.g. a pipeline run name) is made key-safe by :func:`~oscar_elyra._paths.slug`,
    with ``-`` (the separator in ``<run_id>-<n>-<name>``) as ``_`` too, cut to 48 characters.
    """
    suffix = uuid.uuid4().hex[:6]
    if label:
        return f"{slug(label, 48).replace('-', '_')}.{suffix}"
    return time.strftime("%y%m%d%H%M%S") + suffix


def _minio_paths(service_def: dict, field_name: str) -> list[str]:
    out = []
    for io in service_def.get(field_name) or []:
        provider = str(io.get("storage_provider") or "minio")
        if provider.split(".", 1)[0] in ("minio", "s3") and io.get("path"):
            out.append(str(io["path"]).strip("/"))
    return out


def async_provider(service: str, service_def: dict) -> str:
    """The one S3/MinIO storage provider of ``service``'s async input and output paths.

    Paths on different providers cannot be followed with one store: a
    :class:`ValidationError` says so (they are never looked for in the cluster's MinIO).
    """
    found = {
        str(io.get("storage_provider") or "minio.default")
        for name in ("input", "output")
        for io in service_def.get(name) or []
        if str(io.get("storage_provider") or "minio").split(".", 1)[0] in ("minio", "s3")
    }
    found = {"minio.default" if p == "minio" else p for p in found}
    if len(found) > 1:
        raise ValidationError(
            f"service {service!r}: its input and output paths are on different storage "
            f"providers ({', '.join(sorted(found))}); this client follows jobs on one provider"
        )
    return found.pop() if found else "minio.default"


def async_paths(service: str, service_def: dict) -> tuple[str, list[str]]:
    """(input path, output paths) of ``service`` from its definition ``service_def``.

    The one rule for bucket-triggered jobs: the service needs a MinIO/S3 input path (to
    start a job) and a MinIO/S3 output path (to see what came of it); else a
    :class:`ValidationError` says which is missing.
    """
    inputs = _minio_paths(service_def, "input")
    outputs = _minio_paths(service_def, "output")
    if not inputs or not outputs:
        missing = " or ".join(n for n, v in (("input", inputs), ("output", outputs)) if not v)
        raise ValidationError(
            f"service {service!r} has no MinIO {missing} path, so it cannot run "
            "bucket-triggered jobs: add it to the service definition, or invoke the "
            "service synchronously"
        )
    return inputs[0], outputs


def fixed_name_error(service: str, others: int) -> str:
    """Why fixed-name outputs of concurrent jobs cannot be attributed, and the fix."""
    return (
        f"service {service!r} names its outputs without the input's name (e.g. a fixed "
        f"'output.png') and {others} other job(s) ran meanwhile, so their outputs overwrite "
        "each other and cannot be told apart: run one job at a time (map -j 1, "
        "concurrency=1, or one input per submit/wait) or invoke it synchronously (--sync)"
    )


@dataclass
class Job:
    """An input submitted to an async service and what became of it.

    ``status``: Pending, Running, Succeeded, Failed (or TimedOut after :func:`wait`).
    ``outputs``: ``s3://`` URIs of this input's outputs. ``error``: why an input whose job
    record says Succeeded still failed (no outputs, outputs that cannot be attributed).
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
    error: str | None = None
    finished_at: float | None = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False, compare=False)
    _store: Any = field(default=None, repr=False, compare=False)
    _seen: tuple = field(default=(), repr=False, compare=False)
    _since: float = field(default=0.0, repr=False, compare=False)

    @property
    def stem(self) -> str:
        """The run-unique ``<run_id>-<n>-`` every input key (and most outputs) carries."""
        return f"{self.run_id}-{self.index}-"

    @property
    def done(self) -> bool:
        """True once the job succeeded or failed."""
        return self.status in _TERMINAL

    def relative(self, uri: str) -> str:
        """The output's key relative to its output path (the key itself if outside them)."""
        _, key = parse_uri(uri)
        for out in self.output_paths:
            _, prefix = parse_uri(out + "/")
            if key.startswith(prefix):
                return key[len(prefix) :]
        return key

    def output_name(self, uri: str) -> str:
        """Output path relative to its output path, without the run-unique stem."""
        return self.relative(uri).replace(self.stem, "", 1) or PurePosixPath(uri).name

    def download(
        self, directory: str | os.PathLike[str], *, keep_prefix: bool = False
    ) -> list[Path]:
        """Download this job's outputs into ``directory`` (names without the run stem)."""
        paths = []
        for uri in self.outputs:
            rel = self.output_name(uri)
            if keep_prefix:
                rel = self.stem + rel
            paths.append(self._store.get_file(uri, safe_join(directory, rel)))
        self.downloaded = paths
        return paths

    def to_dict(self) -> dict[str, Any]:
        """The job as plain data (no client or store)."""
        return {
            "service": self.service,
            "input": self.input,
            "input_uri": self.input_uri,
            "job_name": self.job_name,
            "status": self.status,
            "outputs": list(self.outputs),
            "log": self.log,
            "error": self.error,
            "run_id": self.run_id,
        }


def _download_all(jobs: list[Job], directory: str | os.PathLike[str]) -> None:
    """Download outputs; jobs whose output names would collide keep their run stem."""
    names: dict[str, int] = {}
    for j in jobs:
        for uri in j.outputs:
            names[j.output_name(uri)] = names.get(j.output_name(uri), 0) + 1
    for j in jobs:
        clash = any(names[j.output_name(u)] > 1 for u in j.outputs)
        j.download(directory, keep_prefix=clash)


def _plan(
    service: str,
    paths: list[Path],
    in_path: str,
    out_paths: list[str],
    run_id: str,
    start_index: int,
    cl: OscarClient,
    st: ObjectStore,
) -> list[Job]:
    """One :class:`Job` per path, numbered from ``start_index`` (nothing uploaded yet)."""
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


def _upload(jobs: list[Job], st: ObjectStore, on_queued: Any = None) -> list[BaseException | None]:
    """Upload the inputs of ``jobs`` in parallel; one error (or None) per job.

    ``on_queued(job)`` runs after each successful upload. An interruption (Ctrl-C) cancels
    the uploads not started yet, waits for those under way, and propagates.
    """

    def one(job: Job) -> BaseException | None:
        try:
            st.put_file(job.input, job.input_uri, _parallel=1 if len(jobs) > 1 else None)
            job.submitted_at = time.time()
        except Exception as exc:  # noqa: BLE001 - reported per job
            return exc
        if on_queued is not None:
            on_queued(job)
        return None

    if len(jobs) == 1:
        return [one(jobs[0])]
    pool = ThreadPoolExecutor(max_workers=min(st.workers, len(jobs)))
    try:
        futures = [pool.submit(one, j) for j in jobs]
        wait_futures(futures, return_when=FIRST_EXCEPTION)
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- submission


def _staging_path(service: str, in_path: str) -> str:
    """The ``via="job"`` staging folder for input path ``in_path`` (outside it)."""
    bucket, folder = parse_uri(in_path + "/")
    folder = folder.strip("/")
    if not folder or JOB_STAGING.startswith(folder) or folder.startswith(JOB_STAGING):
        raise ValidationError(
            f"service {service!r}: its input path {in_path!r} covers {JOB_STAGING!r}, where "
            "via='job' stages inputs; use via='bucket' (or an input path with a folder)"
        )
    return f"{bucket}/{JOB_STAGING}"


def _route(service: str, in_path: str, provider: str, via: str | None) -> tuple[str, str]:
    """(via, the path inputs are uploaded under): ``via=None`` takes ``"job"`` when the
    service allows it (its paths on the cluster's MinIO, an input path with a folder),
    else ``"bucket"``; ``via="job"`` on a service that does not allow it is refused."""
    if via not in (None, *VIA):
        raise ValidationError(f"via={via!r}: use 'bucket' or 'job'")
    if via == "bucket":
        return "bucket", in_path
    if provider != "minio.default":
        if via is None:
            return "bucket", in_path
        raise ValidationError(
            f"service {service!r}: via='job' stages inputs in the cluster's MinIO, but its "
            f"paths are on {provider!r}; use via='bucket'"
        )
    try:
        return "job", _staging_path(service, in_path)
    except ValidationError:
        if via is None:
            return "bucket", in_path
        raise


def storage_event(uri: str, size: int) -> bytes:
    """The MinIO ``s3:ObjectCreated:Put`` event naming object ``uri`` (a ``POST /job`` body)."""
    bucket, key = parse_uri(uri)
    return json.dumps(object_created_event(bucket, key, size)).encode()


class _Submission:
    """The record of one submission: a plan line, then one line per queued input."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def start(self, service: str, jobs: list[Job], in_path: str, via: str) -> None:
        plan = {
            "service": service,
            "via": via,
            "run_id": jobs[0].run_id,
            "input_path": in_path,
            "output_paths": jobs[0].output_paths,
            "created": time.time(),
            "inputs": [
                {"input": str(Path(j.input).resolve()), "index": j.index, "input_uri": j.input_uri}
                for j in jobs
            ],
        }
        fd, tmp = temp_near(self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(plan, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def queued(self, job: Job) -> None:
        line = json.dumps({"queued": job.index, "at": job.submitted_at}) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()


def read_submission(record: str | os.PathLike[str]) -> tuple[dict, dict[int, float]]:
    """(plan, {index: upload time}) of a submission record written by :func:`submit`."""
    path = Path(record)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        plan = json.loads(lines[0])
        if not isinstance(plan, dict) or "inputs" not in plan:
            raise ValueError("no plan")
    except FileNotFoundError:
        raise ValidationError(f"submission record {str(path)!r} does not exist") from None
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ValidationError(
            f"{str(path)!r} is not a submission record written by 'oscar-elyra job'"
        ) from None
    queued: dict[int, float] = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
            queued[int(entry["queued"])] = float(entry.get("at") or 0)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash: that upload counts as not recorded
    return plan, queued


def _send(
    jobs: list[Job],
    st: ObjectStore,
    sub: _Submission | None,
    via: str = "bucket",
    cl: OscarClient | None = None,
) -> None:
    """Upload ``jobs``' inputs and, with ``via="job"``, post their storage events; each
    input is recorded in ``sub`` once its job is started. Raises the first error after
    all uploads ended."""
    by_bucket = via == "bucket" and sub is not None
    errors = _upload(jobs, st, sub.queued if by_bucket else None)
    bad = next((e for e in errors if e is not None), None)
    if bad is not None:
        raise bad
    if via == "job":
        assert cl is not None
        for j in jobs:
            cl.post_job(j.service, storage_event(j.input_uri, Path(j.input).stat().st_size))
            j.submitted_at = time.time()
            if sub is not None:
                sub.queued(j)


def submit(
    service: str,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
    run_id: str | None = None,
    service_def: dict | None = None,
    record: str | os.PathLike[str] | None = None,
    via: str = "bucket",
) -> list[Job]:
    """Upload each input file under a run-unique key in the service's input path.

    The key is ``<input path>/<run id>-<n>-<file name>``, the run id being
    :func:`new_run_id` of the label ``run_id`` (e.g. a pipeline run name), or a fresh
    time-based id. ``service_def``: the service's definition when the caller already
    fetched it (else it is fetched here). ``record``: a file where the plan and each
    started job are recorded as they happen, so that an interrupted submission can be
    finished with :func:`resume`. ``via``: ``"bucket"`` (the upload starts the job) or
    ``"job"`` (uploaded beside the input path, then ``POST /job`` with a storage event
    naming it; outputs are attributed alike). Returns one :class:`Job` per input (pass
    them to :func:`wait`).
    """
    if via not in VIA:
        raise ValidationError(f"via={via!r}: use 'bucket' or 'job'")
    session = connect(client=client, store=store)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValidationError("no input files given")
    for p in paths:
        check_input_file(p)
    cl = session.client
    svc = service_def if service_def is not None else cl.get_service(service)
    in_path, out_paths = async_paths(service, svc)
    provider = async_provider(service, svc)
    via, in_path = _route(service, in_path, provider, via)
    st = session.store_of(service, svc, provider)
    jobs = _plan(service, paths, in_path, out_paths, new_run_id(run_id), 1, cl, st)
    sub = None
    if record is not None:
        sub = _Submission(Path(record))
        sub.start(service, jobs, in_path, via)
    _send(jobs, st, sub, via, cl)
    return jobs


def resume(
    record: str | os.PathLike[str],
    *,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
) -> list[Job]:
    """Finish the submission recorded in ``record``: upload only the inputs not recorded
    as queued. Returns every input's :class:`Job` (pass them to :func:`wait`)."""
    plan, queued = read_submission(record)
    session = connect(client=client, store=store)
    service = str(plan["service"])
    svc = session.client.get_service(service)
    st = session.store_of(service, svc, async_provider(service, svc))
    entries = sorted(plan["inputs"], key=lambda e: int(e["index"]))
    todo = [e for e in entries if int(e["index"]) not in queued]
    for e in todo:
        check_input_file(Path(e["input"]))
    jobs = []
    for e in entries:
        job = Job(
            service=service,
            input=str(e["input"]),
            input_uri=str(e["input_uri"]),
            run_id=str(plan["run_id"]),
            index=int(e["index"]),
            output_paths=list(plan["output_paths"]),
            submitted_at=queued.get(int(e["index"]), time.time()),
            _client=session.client,
            _store=st,
        )
        jobs.append(job)
    pending = [j for j in jobs if j.index not in queued]
    if pending:
        via = str(plan.get("via") or "bucket")
        _send(pending, st, _Submission(Path(record)), via, session.client)
    return jobs


# ----------------------------------------------------------------------------- tracking


class _Tracker:
    """Follows jobs of one service through its job list, job logs and output paths."""

    def __init__(self, service: str, cl: OscarClient, st: ObjectStore) -> None:
        self.service = service
        self.cl = cl
        self.st = st
        self.jobs: list[Job] = []
        self.mapped: dict[str, Job] = {}
        self.ignored: set[str] = set()
        self.last_jobs_poll = 0.0
        #: every job this tracker followed (for "in flight meanwhile")
        self.history: list[Job] = []
        self._followed: set[int] = set()
        self.settle = SETTLE
        # incremental listing (see _listing): the last listing's pages as (token, names),
        # the last status seen of every job, when the whole list was last read
        self.pages: list[tuple[str | None, list[str]]] = []
        self.statuses: dict[str, str] = {}
        self.last_full = float("-inf")
        self.full_cost = 0.0
        #: False once the job list proved not to grow at its end (or a resumed page was stale)
        self.incremental = True
        #: running jobs whose log was read and matched no input
        self.tried: set[str] = set()
        #: matched jobs that ended but whose log could not be read, how many times
        self.log_misses: dict[str, int] = {}
        #: when a job list first showed each job ended
        self.ended_at: dict[str, float] = {}
        #: an executor reading logs in the background (None: read while polling)
        self.log_pool: Any = None
        self.reading: dict[str, tuple[str, Any]] = {}
        #: called with the matched jobs a job list shows ended, before their logs are read
        self.on_ended: Any = None

    def follow(self, jobs: list[Job]) -> None:
        """Track ``jobs`` (also kept for the fixed-name overlap rule)."""
        for j in jobs:
            if id(j) not in self._followed:
                self._followed.add(id(j))
                self.history.append(j)

    # ------------------------------------------------------------------ listing
    def list_outputs(self, out: str, key_prefix: str) -> list[Any]:
        """Objects under output path ``out`` whose names start with ``key_prefix``."""
        bucket, prefix = parse_uri(out + "/")
        try:
            return [
                o
                for o in self.st.list(format_uri(bucket, prefix + key_prefix))
                if not o.key.endswith("/")
            ]
        except NotFoundError:
            return []

    def outputs_of(self, job: Job) -> list[str]:
        """URIs under ``job``'s output paths whose key starts with its stem (one cheap
        listing; what a running job has uploaded so far)."""
        return [o.uri for out in job.output_paths for o in self.list_outputs(out, job.stem)]

    def run_outputs(self, out: str, run_id: str) -> list[tuple[str, str]]:
        """(job stem, URI) of every output of run ``run_id`` under output path ``out``
        whose key starts with a stem."""
        _, prefix = parse_uri(out + "/")
        found = []
        for o in self.list_outputs(out, f"{run_id}-"):
            m = _STEM.match(o.key[len(prefix) :])
            if m:
                found.append((m.group(0), o.uri))
        return found

    def poll_outputs(self, only: list[Job] | None = None) -> None:
        """List what pending jobs (or ``only``) uploaded so far: a hint that their job
        records are worth reading sooner, never a completion by itself."""
        pending = [j for j in (self.jobs if only is None else only) if not j.done]
        if not pending:
            return
        found: dict[int, list[str]] = {id(j): [] for j in pending}
        if len(pending) <= 16:
            for j in pending:
                found[id(j)] = self.outputs_of(j)
        else:  # one listing per run and output path
            groups: dict[tuple[str, str], dict[str, Job]] = {}
            for j in pending:
                for out in j.output_paths:
                    groups.setdefault((out, j.run_id), {})[j.stem] = j
            for (out, rid), stems in groups.items():
                for stem, uri in self.run_outputs(out, rid):
                    job = stems.get(stem)
                    if job is not None:
                        found[id(job)].append(uri)
        now = time.monotonic()
        for j in pending:
            outs = tuple(sorted(found[id(j)]))
            if outs != j._seen:
                j._seen, j._since = outs, now

    # ------------------------------------------------------------------ job records
    def _log(self, name: str) -> str | None:
        try:
            return self.cl.get_job_log(self.service, name)
        except OscarError:
            return None

    def _match(self, text: str, by_uri: dict[str, Job], by_stem: dict[str, Job]) -> Job | None:
        """The input a job log belongs to: the key it downloaded, else a stem it mentions."""
        for bucket, key in _DOWNLOAD_LINE.findall(text):
            job = by_uri.get(format_uri(bucket, key))
            if job is not None:
                return job
        return next((j for s, j in by_stem.items() if s in text), None)

    def _logs(self, names: list[str]) -> dict[str, str | None]:
        """The logs of jobs ``names`` (None where unreadable), a few read at once."""
        if len(names) <= 1:
            return {n: self._log(n) for n in names}
        with ThreadPoolExecutor(max_workers=min(LOG_READERS, len(names))) as pool:
            return dict(zip(names, pool.map(self._log, names), strict=True))

    def _listing(self, full: bool) -> tuple[dict[str, dict], bool]:
        """(the service's job list, whether it is the whole list).

        Not ``full``: only the pages from the first one that held an unfinished job at the
        last listing, fetched with the continuation token that fetched it then. That is
        every job that can still change when the list only grows at its end (the embedded
        cluster orders jobs by creation time); the whole list is read when ``full``, when
        there is no earlier listing, and for good once the list is seen to grow elsewhere
        or a resumed page shows a finished job unfinished again (a stale snapshot)."""
        start = None
        if not full and self.incremental and self.pages:
            start = next(
                (
                    i
                    for i, (_, names) in enumerate(self.pages)
                    if any(self.statuses.get(n) not in _TERMINAL for n in names)
                ),
                len(self.pages) - 1,
            )
        token = self.pages[start][0] if start is not None else None
        began = time.monotonic()
        try:
            pages = [(t, page) for t, page in self.cl.job_pages(self.service, token)]
        except OscarError:
            if start is None:
                raise
            self.incremental = False  # a continuation token may expire: whole lists from now
            return self._listing(True)
        listing = {name: info for _, page in pages for name, info in page.items()}
        if start is None:
            # new jobs must all come after the known ones for a resumed listing to see them
            new_seen = False
            for _, page in pages:
                for name in page:
                    if name not in self.statuses:
                        new_seen = True
                    elif new_seen:
                        self.incremental = False
            self.last_full = time.monotonic()
            self.full_cost = self.last_full - began
        else:
            for name, info in listing.items():
                was = self.statuses.get(name)
                if was in _TERMINAL and str(info.get("status") or "") not in _TERMINAL:
                    self.incremental = False
        self.pages = (self.pages[:start] if start is not None else []) + [
            (t, list(page)) for t, page in pages
        ]
        for name, info in listing.items():
            self.statuses[name] = str(info.get("status") or "")
        return listing, start is None

    def poll_jobs(self, full: bool = True) -> None:
        """Read the service's job list (see :meth:`_listing` for ``full``): map jobs to
        inputs through their logs and settle the ended ones.

        With ``on_ended``, a job is matched once running (its log names its input), so
        that its end is seen from the list alone: ``on_ended`` hears of it before any log
        is read (without it, logs are read once jobs have ended). With a
        ``log_pool``, logs are read in the background and used at the next poll.
        """
        pending = [j for j in self.jobs if not j.done]
        if not pending:
            return
        self.last_jobs_poll = time.monotonic()
        since = min(j.submitted_at for j in pending) - CLOCK_SKEW
        try:
            listing, whole = self._listing(full)
        except OscarError:
            return
        # the logs of jobs that just ended (to match them to inputs and see their uploads)
        # and, once, of new running jobs
        wanted, ended = [], []
        now = time.time()
        for name, info in listing.items():
            status = str(info.get("status") or "")
            if name in self.ignored or name in self.reading:
                continue
            if status in _TERMINAL:
                self.ended_at.setdefault(name, now)  # for "in flight meanwhile"
            job = self.mapped.get(name)
            if job is not None:
                if status in _TERMINAL and not job.done:
                    wanted.append((name, status))
                    ended.append(job)
            elif _created(info) < since:
                if status in _TERMINAL:
                    self.ignored.add(name)
            elif status in _TERMINAL or (
                status == "Running" and self.on_ended is not None and name not in self.tried
            ):
                wanted.append((name, status))
        if ended and self.on_ended is not None:
            self.on_ended(ended)
        for (name, status), text in self._read(wanted):
            self._use_log(name, status, text, pending)
        for name, info in listing.items():
            job = self.mapped.get(name)
            status = str(info.get("status") or "")
            if job is not None and not job.done and status and status not in _TERMINAL:
                job.status = status
        if whole:
            self._check_vanished(listing)

    def _read(self, wanted: list[tuple[str, str]]) -> list[tuple[tuple[str, str], str | None]]:
        """((name, status when read), log) of jobs: those of ``wanted`` without a
        ``log_pool``; with one, those read since the last call (``wanted`` is queued)."""
        if self.log_pool is None:
            logs = self._logs([n for n, _ in wanted])
            return [((n, st), logs[n]) for n, st in wanted]
        for name, status in wanted:
            self.reading[name] = (status, self.log_pool.submit(self._log, name))
        done = []
        for name, (status, fut) in list(self.reading.items()):
            if fut.done():
                del self.reading[name]
                done.append(((name, status), fut.result()))
        return done

    def _use_log(self, name: str, status: str, text: str | None, pending: list[Job]) -> None:
        """Match job ``name`` to its input by its log ``text`` (read when the job was
        ``status``), and settle it if it had ended."""
        job = self.mapped.get(name)
        if job is None:
            if text is None:
                return  # its log could not be read: next time
            job = self._match(text, {j.input_uri: j for j in pending}, {j.stem: j for j in pending})
            if job is None:
                if status in _TERMINAL:
                    self.ignored.add(name)
                else:  # read again once it has ended (its log may be incomplete)
                    self.tried.add(name)
                return
            self.mapped[name] = job
            job.job_name = name
        if job.done or status not in _TERMINAL:
            return
        if text is None and self.log_misses.get(name, 0) < LOG_TRIES:
            self.log_misses[name] = self.log_misses.get(name, 0) + 1
            return  # its log could not be read: next time (it names the uploads)
        self._settle(job, status, text)

    def _settle(self, job: Job, status: str, text: str | None) -> None:
        """The job record of ``job`` is terminal: attribute its outputs, decide."""
        job.finished_at = self.ended_at.get(job.job_name or "") or time.time()
        job.log = _excerpt(text) if text is not None else None
        if status == "Failed":
            job.status = "Failed"
            return
        try:
            job.outputs = self.attribute(job, text)
        except ServiceError as exc:
            job.status, job.error = "Failed", str(exc)
            return
        if not job.outputs:
            job.status = "Failed"
            job.error = (
                f"job {job.job_name} of service {self.service!r} succeeded but wrote no outputs "
                "for this input (on OSCAR a failing script still gives a Succeeded job)"
            )
            return
        job.status = "Succeeded"

    def attribute(self, job: Job, text: str | None) -> list[str]:
        """The output URIs of ``job`` (see the module docstring for the rules)."""
        logged = set()
        for key, bucket in _UPLOAD_LINE.findall(text or ""):
            uri = format_uri(bucket, key)
            if job.relative(uri) != parse_uri(uri)[1]:  # under an output path
                logged.add(uri)
        # a log with the supervisor's INFO lines names every upload (none means none)
        found = set(logged)
        if not (text and _DOWNLOAD_LINE.search(text)):
            found.update(self.outputs_of(job))
            if not logged:  # no upload lines: look for the stem anywhere in a key
                for out in job.output_paths:
                    found.update(o.uri for o in self.list_outputs(out, "") if job.stem in o.key)
            if not found:
                found.update(self._new_objects(job))
                if found:
                    warnings.warn(
                        f"service {self.service!r}: outputs of job {job.job_name} are not "
                        "named in its log; taking the new objects of its output paths "
                        f"({', '.join(sorted(found)[:3])})",
                        stacklevel=2,
                    )
        if any(job.stem not in u for u in found):
            others = self._overlapping(job)
            if others:
                raise ServiceError(fixed_name_error(self.service, len(others)))
        return sorted(found)

    def _overlapping(self, job: Job) -> list[Job]:
        """Other jobs of this tracker that were in flight while ``job`` was."""
        end = job.finished_at or time.time()
        return [
            o
            for o in self.history
            if o is not job
            and o.submitted_at <= end
            and (o.finished_at is None or o.finished_at >= job.submitted_at)
        ]

    def _new_objects(self, job: Job) -> list[str]:
        """Objects of ``job``'s output paths written while it was in flight, with no stem."""
        start = datetime.fromtimestamp(job.submitted_at - CLOCK_SKEW, timezone.utc)
        end = datetime.now(timezone.utc) + timedelta(seconds=CLOCK_SKEW)
        out = []
        for path in job.output_paths:
            for o in self.list_outputs(path, ""):
                if o.last_modified and start <= o.last_modified <= end:
                    if not _ANY_STEM.search(o.key):
                        out.append(o.uri)
        return sorted(out)

    def _check_vanished(self, listing: dict) -> None:
        """Settle pending jobs whose records are gone (deleted, expired): outputs that
        stayed unchanged for ``settle`` s are taken, with a warning."""
        for name, job in list(self.mapped.items()):
            if name not in listing and not job.done:
                del self.mapped[name]  # its record was deleted: back to the fallback
        mapped = {id(j) for j in self.mapped.values()}
        now = time.monotonic()
        for job in self.jobs:
            if job.done or id(job) in mapped or not job._seen:
                continue
            if now - job._since < self.settle:
                continue
            # maybe its job is just still running: look for it among the unmapped jobs
            if self._find_running(job, listing):
                continue
            job.finished_at = time.time()
            job.outputs = list(job._seen)
            job.status = "Succeeded"
            job.error = None
            warnings.warn(
                f"service {self.service!r}: no job record found for input "
                f"{Path(job.input).name!r}; taking its outputs after they stayed unchanged "
                f"for {self.settle:g} s",
                stacklevel=2,
            )

    def _find_running(self, job: Job, listing: dict) -> bool:
        since = job.submitted_at - CLOCK_SKEW
        for name, info in listing.items():
            if name in self.mapped or name in self.ignored or _created(info) < since:
                continue
            text = self._log(name)
            if text is not None and self._match(text, {job.input_uri: job}, {job.stem: job}):
                self.mapped[name] = job
                job.job_name = name
                job.status = str(info.get("status") or job.status)
                return True
        return False

    def step(self, jobs_every: float = 1.0, only: list[Job] | None = None) -> None:
        """Poll outputs (of ``only``, else all pending), and the job list when due."""
        self.poll_outputs(only)
        pending = [j for j in self.jobs if not j.done]
        if not pending:
            return
        since = time.monotonic() - self.last_jobs_poll
        # outputs appeared: the job record may say Succeeded soon, poll it sooner
        if since >= jobs_every or (since >= JOBS_POLL_MIN and any(j._seen for j in pending)):
            self.poll_jobs()


def _created(info: dict) -> float:
    text = str(info.get("creation_time") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")  # unknown: consider it recent


def _excerpt(text: str | None) -> str:
    """The redacted tail of a job log."""
    text = redact(text or "").strip()
    return text if len(text) <= LOG_EXCERPT else "…" + text[-LOG_EXCERPT:]


def _stuck(t: _Tracker, shown: int = 5, log_lines: int = 3) -> str:
    """Why jobs may stay Pending: the service's Pending jobs since the submission, its
    deployment status and the tail of its deployment logs (what can be read; "" if none)."""
    try:
        listing = t.cl.list_jobs(t.service)
    except OscarError:
        return ""
    since = min(j.submitted_at for j in t.jobs) - 2
    pending = sorted(
        (n for n, i in listing.items() if i.get("status") == "Pending" and _created(i) >= since),
        key=lambda n: _created(listing[n]),
    )
    if not pending:
        return ""
    more = f" and {len(pending) - shown} more" if len(pending) > shown else ""
    text = f"; jobs of {t.service!r} still Pending: {', '.join(pending[:shown])}{more}"
    try:
        st = t.cl.deployment_status(t.service)
        text += f"; deployment: {st.get('state', '?')}"
        if st.get("reason"):
            text += f" ({st['reason']})"
    except OscarError:
        pass  # clusters before v4 have no deployment endpoint
    try:
        entries = t.cl.deployment_logs(t.service, tail_lines=log_lines).get("entries") or []
        lines = [str(e.get("message", ""))[:200] for e in entries if isinstance(e, dict)]
        if lines:
            text += "; deployment log: " + " | ".join(lines[-log_lines:])
    except (OscarError, AttributeError):
        pass
    return redact(text)


def _poll_sleep(elapsed: float) -> float:
    return min(1.0, 0.1 + elapsed / 30)


def wait(
    jobs: Job | Sequence[Job],
    timeout: float = 600,
    *,
    download_to: str | os.PathLike[str] | None = None,
    raise_on_failure: bool = True,
    poll: float | None = None,
    settle: float = SETTLE,
) -> list[Job]:
    """Wait until every job's record says Succeeded or Failed; optionally download outputs.

    A failed input raises :class:`ServiceError` with its log excerpt (once all others are
    settled); running out of ``timeout`` raises :class:`TimeoutError` naming the inputs
    still pending. ``settle``: seconds outputs must stay unchanged to be taken when no job
    record can be found for an input (deleted, expired).
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
            t.settle = settle
        t.jobs.append(j)
    for t in trackers.values():
        t.follow(t.jobs)
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
            stuck = "".join(_stuck(t) for t in trackers.values())
            raise TimeoutError(
                f"{len(pending)} of {len(job_list)} inputs of service {job_list[0].service!r} "
                f"still pending after {timeout:g} s: {names}{more}{stuck}"
            )
        time.sleep(poll if poll is not None else _poll_sleep(elapsed))
    if download_to is not None:
        _download_all([j for j in job_list if j.status == "Succeeded"], download_to)
    failed = [j for j in job_list if j.status == "Failed"]
    if failed and raise_on_failure:
        first = failed[0]
        raise ServiceError(
            f"{len(failed)} of {len(job_list)} jobs of service {first.service!r} failed "
            f"(first: input {Path(first.input).name!r}, job {first.job_name}: "
            f"{first.error or 'failed'}); log:\n{first.log or '(empty)'}",
            log=first.log,
        )
    return job_list
