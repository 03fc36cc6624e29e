"""Async invocation: :func:`submit` inputs through a service's input path, :func:`wait`.

Each input is uploaded under a run-unique key ``<input path>/<run_id>-<n>-<name>`` in the
service's input path. OSCAR scripts name outputs after the input basename, so the
outputs of input ``n`` are exactly the objects under ``<output path>/<run_id>-<n>-``;
the job list (and job logs) tell failures apart.

``via="job"`` delivers the same run-unique object through ``POST /job/{service}``
instead: the object is uploaded next to the input path (``<input bucket>/.oscar-elyra-job/``,
which starts no job) and the request body is a MinIO storage event naming it, which
OSCAR's supervisor downloads as the job's input, so outputs are attributed exactly alike.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra._paths import safe_join, slug
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

__all__ = ["Job", "async_paths", "new_run_id", "storage_event", "submit", "wait"]

#: characters of a failed job's log kept (the tail)
LOG_EXCERPT = 2000
#: least seconds between job-list polls made because a job's outputs just appeared
JOBS_POLL_MIN = 0.1
_TERMINAL = ("Succeeded", "Failed")
#: the ``<run_id>-<n>-`` stem an output key starts with (relative to its output path)
_STEM = re.compile(r"[^-]+-\d+-")
#: where ``via="job"`` stages inputs: a folder of the input bucket outside the input path
JOB_STAGING = ".oscar-elyra-job"
VIA = ("bucket", "job")


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
        """True once the job succeeded or failed."""
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
        """The job as plain data (no client or store)."""
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


def storage_event(uri: str, size: int) -> bytes:
    """The MinIO ``s3:ObjectCreated:Put`` event naming object ``uri`` (a ``POST /job`` body)."""
    bucket, key = parse_uri(uri)
    return json.dumps(object_created_event(bucket, key, size)).encode()


def submit(
    service: str,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
    run_id: str | None = None,
    service_def: dict | None = None,
    via: str = "bucket",
) -> list[Job]:
    """Upload each input file under a run-unique key in the service's input path.

    The key is ``<input path>/<run id>-<n>-<file name>``, the run id being
    :func:`new_run_id` of the label ``run_id`` (e.g. a pipeline run name), or a fresh
    time-based id. ``service_def``: the service's definition when the caller already
    fetched it (else it is fetched here). ``via``: ``"bucket"`` (the upload starts the
    job) or ``"job"`` (uploaded beside the input path, then ``POST /job`` with a storage
    event naming it; outputs are attributed alike). Returns one :class:`Job` per input
    (pass them to :func:`wait`).
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
    if via == "job":
        if provider != "minio.default":
            raise ValidationError(
                f"service {service!r}: via='job' stages inputs in the cluster's MinIO, but its "
                f"paths are on {provider!r}; use via='bucket'"
            )
        in_path = _staging_path(service, in_path)
    st = session.store_of(service, svc, provider)
    jobs = _plan(service, paths, in_path, out_paths, new_run_id(run_id), 1, cl, st)
    bad = next((e for e in _upload(jobs, st) if e is not None), None)
    if bad is not None:
        raise bad
    if via == "job":
        for j in jobs:
            cl.post_job(service, storage_event(j.input_uri, Path(j.input).stat().st_size))
            j.submitted_at = time.time()
    return jobs


class _Tracker:
    """Follows jobs of one service: their outputs (by run-unique prefix) and the job list.

    An input is done when its mapped job (matched through the job log, which mentions the
    input's name) is terminal, or when its outputs exist and did not change between two
    polls.
    """

    def __init__(self, service: str, cl: OscarClient, st: ObjectStore) -> None:
        self.service = service
        self.cl = cl
        self.st = st
        self.jobs: list[Job] = []
        self.mapped: dict[str, Job] = {}
        self.ignored: set[str] = set()
        self.last_jobs_poll = 0.0

    def list_outputs(self, out: str, key_prefix: str) -> list[str]:
        """URIs of the objects under output path ``out`` whose names start with ``key_prefix``."""
        bucket, prefix = parse_uri(out + "/")
        try:
            return [
                o.uri
                for o in self.st.list(format_uri(bucket, prefix + key_prefix))
                if not o.key.endswith("/")
            ]
        except NotFoundError:
            return []

    def outputs_of(self, job: Job) -> list[str]:
        """URIs of ``job``'s outputs, in every output path."""
        return [uri for out in job.output_paths for uri in self.list_outputs(out, job.stem)]

    def run_outputs(self, out: str, run_id: str) -> Iterator[tuple[str, str]]:
        """(job stem, URI) of every output of run ``run_id`` under output path ``out``."""
        _, prefix = parse_uri(out + "/")
        for uri in self.list_outputs(out, f"{run_id}-"):
            m = _STEM.match(parse_uri(uri)[1][len(prefix) :])
            if m:
                yield m.group(0), uri

    def poll_outputs(self, only: list[Job] | None = None, stable_secs: float = 0.0) -> None:
        """List outputs of pending jobs (or of ``only``); a job whose outputs exist and did
        not change between two polls at least ``stable_secs`` apart has succeeded."""
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
            elif outs and now - j._since >= stable_secs and now > j._since:
                j.status = "Succeeded"
            j.outputs = list(outs)

    def poll_jobs(self) -> None:
        """Read the service's job list: map new terminal jobs to inputs, settle them."""
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
                job.outputs = sorted(self.outputs_of(job))
                job.status = "Succeeded"
            elif status:
                job.status = status

    def step(self, jobs_every: float = 1.0, only: list[Job] | None = None) -> None:
        """Poll outputs (of ``only``, else all pending), and the job list when due."""
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
            f"(first: input {Path(first.input).name!r}, job {first.job_name}); log:\n"
            f"{first.log or '(empty)'}",
            log=first.log,
        )
    return job_list
