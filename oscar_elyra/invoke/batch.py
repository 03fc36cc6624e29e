"""Batches: :func:`map` a service over many files, sync or async, with retries and resume.

Where results go (``output_dir``): the outputs of an input go to the folder that mirrors
the input's folder relative to the mapped directory (for a list of files: to their common
folder), named after the input's stem, or after its whole name when another input of the
same folder has the same stem (``img.png``, ``img.jpg``). A sync answer of one file is
``<name><ext>``, of text ``<name>.txt``, of several files ``<name>/<member>``; an async
output keeps the name the service gave it with the run-unique stem replaced by the
input's name, and an output named without the input (``output.png``) goes to
``<name>/output.png``. A plan whose inputs would still share an output name is refused
before anything runs, and no output path is ever written twice in one run.

Resume is keyed by a run record (``record_file``; by default ``.oscar-elyra-map.json`` in
``output_dir``): an input is skipped only when the record says it succeeded with the same
path, size and sha256 and its outputs still exist. Failed inputs are tried again.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra._paths import safe_join, sha256_file, write_json_atomic
from oscar_elyra.client import OscarClient
from oscar_elyra.errors import OscarError, ServiceError, ValidationError, is_bad_input
from oscar_elyra.invoke.jobs import (
    VIA,
    Job,
    _plan,
    _route,
    _Tracker,
    _upload,
    async_paths,
    async_provider,
    new_run_id,
    storage_event,
)
from oscar_elyra.invoke.sync import Result, run, write_atomic
from oscar_elyra.progress import bar
from oscar_elyra.redact import redact
from oscar_elyra.session import Session, connect
from oscar_elyra.storage import ObjectStore

__all__ = ["RECORD_NAME", "BatchResult", "map"]

#: seconds between job-list reads of map() while a job is due (see ``_Batch._poll``)
MAP_POLL = float(os.environ.get("OSCAR_ELYRA_MAP_POLL", "0.01"))
#: least seconds between two readings of the whole job list by map() (only its end between
#: them); at least 50 times what the last one took, so that they take 2 % of the time at most
MAP_FULL_EVERY = 2.0
#: inputs map() uploads at once ahead of their jobs; outputs it downloads (logs it reads) at once
STAGERS = 4
LOADERS = 2
#: characters of an error kept in a record
ERROR_LIMIT = 500
#: the run record's name in ``output_dir`` when no ``record_file`` is given
RECORD_NAME = ".oscar-elyra-map.json"
#: least seconds between two writes of the run record while a batch runs
RECORD_EVERY = 2.0
_COLUMNS = ["input", "status", "outputs", "error", "seconds"]


class BatchResult(list):
    """Records of a :func:`map` run: dicts with input, status, outputs, error, seconds
    (and size, sha256, job)."""

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame``."""
        import pandas as pd  # optional heavy dependency (pandas), only for this conversion

        return pd.DataFrame([{k: r.get(k) for k in _COLUMNS} for r in self], columns=_COLUMNS)

    @property
    def ok(self) -> bool:
        """True when no record failed."""
        return all(r["status"] in ("ok", "skipped") for r in self)

    def counts(self) -> dict[str, int]:
        """How many records have each status."""
        out: dict[str, int] = {}
        for r in self:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def _err(exc: BaseException) -> str:
    """A record's error text: redacted, cut to ``ERROR_LIMIT`` characters."""
    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT] + "…"


# ----------------------------------------------------------------------------- the plan


def _expand_inputs(
    files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> tuple[list[Path], Path | None]:
    """(input files, the folder their relative paths are taken from)."""
    if isinstance(files, (str, os.PathLike)):
        p = Path(files)
        if p.is_dir():
            found = sorted(
                x
                for x in p.rglob("*")
                if x.is_file() and not any(part.startswith(".") for part in x.relative_to(p).parts)
            )
            return found, p
        return [p], p.parent
    paths = [Path(f) for f in files]
    if not paths:
        return [], None
    try:
        root = Path(os.path.commonpath([str(x.absolute().parent) for x in paths]))
    except ValueError:  # different drives
        root = None
    return paths, root


def _relative(p: Path, root: Path | None) -> PurePosixPath:
    if root is not None:
        try:
            return PurePosixPath(p.absolute().relative_to(root.absolute()).as_posix())
        except ValueError:
            pass
    return PurePosixPath(p.name)


def _bases(rels: list[PurePosixPath]) -> list[PurePosixPath]:
    """Each input's output base: ``<folder>/<stem>``, or ``<folder>/<name>`` when another
    input of the same folder has the same stem. Raises :class:`ValidationError` when two
    inputs would still share one, or a base is also an input folder."""
    stems: dict[tuple[PurePosixPath, str], int] = {}
    for r in rels:
        stems[(r.parent, r.stem)] = stems.get((r.parent, r.stem), 0) + 1
    bases = [r.parent / (r.name if stems[(r.parent, r.stem)] > 1 else r.stem) for r in rels]
    owner: dict[str, PurePosixPath] = {}
    folders = {str(parent) for r in rels for parent in r.parents if str(parent) != "."}
    for r, b in zip(rels, bases, strict=True):
        other = owner.get(str(b))
        if other is not None or str(b) in folders:
            clash = f"input {str(other)!r}" if other is not None else f"the folder {str(b)!r}"
            raise ValidationError(
                f"inputs {str(r)!r} and {clash} would write their results to the same "
                f"place ({str(b)!r}); rename one of them or map them separately"
            )
        owner[str(b)] = r
    return bases


def _read_records(record_file: Path | None) -> dict[str, dict]:
    """The records of an earlier run by input key, or {} when there are none (or unreadable)."""
    if record_file is None or not record_file.is_file():
        return {}
    try:
        return {r["key"]: r for r in json.loads(record_file.read_text()) if "key" in r}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def _done_before(prior: dict | None, rec: dict, p: Path) -> bool:
    """Whether the run record says ``p`` already succeeded as it is now."""
    if not prior or prior.get("status") not in ("ok", "skipped"):
        return False
    if prior.get("size") != rec["size"] or not prior.get("sha256"):
        return False
    outs = prior.get("outputs") or []
    if not outs or not all(Path(o).exists() for o in outs):
        return False
    rec["sha256"] = sha256_file(p)
    return prior["sha256"] == rec["sha256"]


# ----------------------------------------------------------------------------- placing


class _Places:
    """The output paths claimed in one run: none is written twice."""

    def __init__(self) -> None:
        self.owner: dict[Path, str] = {}
        self._lock = threading.Lock()

    def claim(self, targets: list[Path], rec: dict) -> None:
        with self._lock:
            for t in targets:
                other = self.owner.get(t)
                if other is not None and other != rec["input"]:
                    raise ServiceError(
                        f"output {str(t)!r} was already written for input {other!r} in this "
                        "run; refusing to overwrite it"
                    )
            for t in targets:
                self.owner[t] = rec["input"]


def _place_sync(res: Result, out_dir: Path, base: PurePosixPath) -> list[tuple[Path, Path]]:
    """(source, target) pairs of a sync answer: one file -> ``<base><ext>``, text ->
    ``<base>.txt``, several -> ``<base>/<member>``."""
    if res.kind == "file":
        return [(res.paths[0], safe_join(out_dir, f"{base}{res.paths[0].suffix}"))]
    common = Path(os.path.commonpath([str(x) for x in res.paths]))
    if common in res.paths:
        common = common.parent
    pairs = []
    for x in res.paths:
        pairs.append((x, safe_join(out_dir, f"{base}/{x.relative_to(common).as_posix()}")))
    return pairs


def _async_name(job: Job, uri: str, input_path: Path, base: PurePosixPath) -> str:
    """Where an async output goes, relative to the output folder (see the module doc)."""
    rel = job.relative(uri)
    named = job.stem + input_path.stem
    if named in rel:
        return str(base.parent / rel.replace(named, base.name, 1))
    if job.stem in rel:
        return str(base.parent / rel.replace(job.stem, "", 1))
    return f"{base}/{rel}"


# ----------------------------------------------------------------------------- the batch


@dataclass(eq=False)
class _Batch:
    """One :func:`map` run over ``todo`` (record, input path) pairs: every input ends with a
    record of status ok or failed, after up to ``1 + retries`` attempts."""

    service: str
    todo: list[tuple[dict, Path]]
    session: Session
    out_dir: Path | None
    concurrency: int
    retries: int
    timeout: float
    pbar: Any
    save: Any
    bases: dict[int, PurePosixPath]
    places: _Places = field(default_factory=_Places)
    # async state
    queue: list[tuple[dict, Path]] = field(init=False)
    attempts: dict[int, int] = field(default_factory=dict)
    inflight: dict[int, tuple[dict, Path, Job]] = field(default_factory=dict)
    counter: int = 0
    latencies: list[float] = field(default_factory=list)
    min_age: float = 0.0
    next_list: float = 0.0
    via: str | None = None
    staged: deque[tuple[dict, Path, Job, Future]] = field(default_factory=deque)
    posting: dict[Future, tuple[dict, Path, Job]] = field(default_factory=dict)
    collecting: dict[Future, tuple[dict, Path, Job]] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    #: whether every output so far was named after its input (None: no output yet)
    stem_named: bool | None = None
    # set by run_async, from the service definition
    in_path: str = field(init=False)
    send_path: str = field(init=False)
    out_paths: list[str] = field(init=False)
    run_id: str = field(init=False)
    tracker: _Tracker = field(init=False)

    def __post_init__(self) -> None:
        self.queue = list(reversed(self.todo))  # pop() from the end keeps input order

    def _finish(self, rec: dict) -> None:
        t0 = rec["_t0"] if rec.get("_t0") is not None else time.monotonic()
        rec["seconds"] = round(time.monotonic() - t0, 3)
        self.pbar.update(1)
        self.save()

    def _move(self, pairs: list[tuple[Path, Path]], rec: dict) -> list[str]:
        self.places.claim([t for _, t in pairs], rec)
        for src, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), target)
        return [str(t) for _, t in pairs]

    # ------------------------------------------------------------------------- sync

    def run_sync(self) -> None:
        """``concurrency`` parallel ``/run`` calls."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            list(pool.map(self._sync_one, self.todo))

    def _sync_one(self, item: tuple[dict, Path]) -> None:
        rec, p = item
        rec["_t0"] = time.monotonic()
        for _attempt in range(self.retries + 1):
            try:
                res = run(self.service, p, client=self.session.client, timeout=self.timeout)
                rec.update(status="ok", outputs=self._keep_sync(res, rec), error=None)
                break
            except Exception as exc:  # noqa: BLE001 - one failure never aborts the batch
                rec.update(status="failed", outputs=[], error=_err(exc))
                if is_bad_input(exc):
                    break
        self._finish(rec)

    def _keep_sync(self, res: Result, rec: dict) -> list[str]:
        """Where a sync answer ends up; an empty answer is a failure."""
        if res.kind == "text" and not res.text.strip():
            raise ServiceError(
                f"service {self.service!r} answered nothing (no output file, no output text)"
            )
        if self.out_dir is None:
            return [str(x) for x in res.paths]
        base = self.bases[id(rec)]
        if res.kind == "text":
            target = safe_join(self.out_dir, f"{base}.txt")
            self.places.claim([target], rec)
            write_atomic(target, res.text.encode("utf-8"))
            return [str(target)]
        return self._move(_place_sync(res, self.out_dir, base), rec)

    # ------------------------------------------------------------------------ async

    def run_async(self) -> None:
        """At most ``concurrency`` jobs in flight; a freed slot gets its next input at once.

        With ``via="job"`` the next inputs are uploaded ahead (beside the input path, which
        starts no job) and a job is started by ``POST /job`` with a storage event naming
        its input; with ``via="bucket"`` by uploading the input into the input path.
        Outputs are downloaded in the background, so downloads never delay a start (but
        fixed-name outputs are downloaded before the next job could overwrite them).
        """
        if not self.todo:
            return
        cl = self.session.client
        svc = cl.get_service(self.service)
        self.in_path, self.out_paths = async_paths(self.service, svc)
        provider = async_provider(self.service, svc)
        self.via, self.send_path = _route(self.service, self.in_path, provider, self.via)
        self.store = self.session.store_of(self.service, svc, provider)
        self.run_id = new_run_id()
        self.tracker = _Tracker(self.service, cl, self.store)
        self.tracker.on_ended = self._ended
        self.stager = ThreadPoolExecutor(max_workers=max(1, min(STAGERS, self.store.workers)))
        self.loader = ThreadPoolExecutor(max_workers=LOADERS)
        self.poster = ThreadPoolExecutor(max_workers=max(1, min(STAGERS, self.concurrency)))
        self.tracker.log_pool = readers = ThreadPoolExecutor(max_workers=LOADERS)
        try:
            while self.inflight or self.queue or self.staged or self.posting or self.collecting:
                self._stage()
                self._launch()
                succeeded = self._poll()
                if succeeded:
                    fixed = any(j.stem not in u for _, _, j in succeeded for u in j.outputs)
                    self.stem_named = not fixed and self.stem_named is not False
                    # fixed names: downloaded before the next job can overwrite them
                    self._collect(succeeded, now=fixed)
                    self._stage()
                    self._launch()
                self._reap()
                self._sleep()
        finally:
            for pool in (self.poster, self.stager, self.loader, readers):
                pool.shutdown(wait=True, cancel_futures=True)

    def _settle(self, rec: dict, p: Path, error: str) -> None:
        """A failed attempt: queue the input again while retries are left, else finish it."""
        rec.update(status="failed", outputs=[], error=error)
        if self.attempts.get(id(rec), 0) < self.retries:
            self.attempts[id(rec)] = self.attempts.get(id(rec), 0) + 1
            self.queue.append((rec, p))
        else:
            self._finish(rec)

    def _not_sent(self, rec: dict, p: Path, err: BaseException) -> None:
        """An input whose job could not be started."""
        if is_bad_input(err):
            rec.update(status="failed", error=_err(err))
            self._finish(rec)
        else:
            self._settle(rec, p, _err(err))

    def _plan(self, batch: list[tuple[dict, Path]]) -> list[Job]:
        """Jobs for ``batch``, numbered on from the last one."""
        for rec, _p in batch:
            if rec.get("_t0") is None:
                rec["_t0"] = time.monotonic()
        jobs = _plan(
            self.service,
            [p for _, p in batch],
            self.send_path,
            self.out_paths,
            self.run_id,
            self.counter + 1,
            self.session.client,
            self.store,
        )
        self.counter += len(batch)
        return jobs

    def _ended(self, jobs: list[Job]) -> None:
        """The job list shows ``jobs`` ended: once the service is known to name its
        outputs after their inputs, their slots take the next inputs before their logs
        are read and their outputs attributed (fixed-name outputs must be downloaded
        first: the next job would overwrite them)."""
        if self.stem_named:
            self.ended.update(id(j) for j in jobs)
            self._launch()

    def _free(self) -> int:
        """Slots free: ``concurrency`` less the jobs in flight (not known to have ended)."""
        return self.concurrency - len(self.inflight) - len(self.posting) + len(self.ended)

    def _started(self, rec: dict, p: Path, job: Job) -> None:
        self.inflight[id(job)] = (rec, p, job)
        self.tracker.follow([job])

    def _stage(self) -> None:
        """``via="job"``: upload queued inputs ahead of their jobs, ``concurrency`` at most."""
        if self.via != "job":
            return
        while self.queue and len(self.staged) < self.concurrency:
            rec, p = self.queue.pop()
            (job,) = self._plan([(rec, p)])
            put = self.stager.submit(self.store.put_file, p, job.input_uri, _parallel=1)
            self.staged.append((rec, p, job, put))

    def _launch(self) -> None:
        """Start jobs while fewer than ``concurrency`` are in flight: ``POST /job`` for the
        staged inputs, in order (``via="job"``), or upload queued inputs (``via="bucket"``)."""
        if self.via == "job":
            while self.staged and self._free() > 0:
                rec, p, job, put = self.staged.popleft()
                size = int(rec["size"] or 0)
                self.posting[self.poster.submit(self._post, job, put, size)] = (rec, p, job)
            return
        batch = []
        while self.queue and self._free() > len(batch):
            batch.append(self.queue.pop())
        if not batch:
            return
        jobs = self._plan(batch)
        for (rec, p), job, err in zip(batch, jobs, _upload(jobs, self.store), strict=True):
            if err is None:
                self._started(rec, p, job)
            else:
                self._not_sent(rec, p, err)

    def _post(self, job: Job, put: Future, size: int) -> None:
        """Start ``job`` once its input is uploaded (in a thread: a start never waits for
        another, nor the job list for a start)."""
        put.result()
        self.session.client.post_job(self.service, storage_event(job.input_uri, size))
        job.submitted_at = time.time()

    def _posted(self) -> None:
        """Follow the jobs started since the last call; settle those that could not be."""
        for fut in [f for f in self.posting if f.done()]:
            rec, p, job = self.posting.pop(fut)
            err = fut.exception()
            if err is None:
                self._started(rec, p, job)
            else:
                self._not_sent(rec, p, err)

    def _poll(self) -> list[tuple[dict, Path, Job]]:
        """Read the job list when a job is due; settle failed and overdue jobs; return the
        succeeded ones.

        A job is due once it is about as old as the quickest jobs so far; while one is,
        the job list is read every :data:`MAP_POLL` s (backing off the longer the youngest
        due job is overdue, and never more than half the time): only its end between two
        whole readings (see ``_Tracker._listing``), else with the outputs as a hint.
        """
        self._posted()
        tracker = self.tracker
        tracker.jobs = [v[2] for v in self.inflight.values()]
        self.min_age = 0.9 * min(self.latencies[-32:]) if self.latencies else 0.0
        mono, now = time.monotonic(), time.time()
        due = [j for j in tracker.jobs if now - j.submitted_at >= self.min_age]
        if due and mono >= self.next_list:
            if tracker.incremental:
                every = max(MAP_FULL_EVERY, 50 * tracker.full_cost)
                tracker.poll_jobs(full=mono - tracker.last_full >= every)
            else:
                tracker.step(only=due)
            cost = time.monotonic() - mono
            overdue = min(now - j.submitted_at for j in due) - self.min_age
            self.next_list = time.monotonic() + max(cost, min(0.5, MAP_POLL + 0.05 * overdue))
        succeeded = []
        for key, (rec, p, job) in list(self.inflight.items()):
            if job.done or now - job.submitted_at > self.timeout:
                del self.inflight[key]
                self.ended.discard(key)
            if job.status == "Succeeded":
                self.latencies.append(time.time() - job.submitted_at)
                succeeded.append((rec, p, job))
            elif job.status == "Failed":
                rec["job"] = job.job_name
                reason = job.error or f"job {job.job_name} failed"
                tail = (job.log or "").strip()[-400:]
                self._settle(rec, p, _err(ServiceError(f"{reason}; log tail: {tail}")))
            elif now - job.submitted_at > self.timeout:
                self._settle(rec, p, f"not finished after {self.timeout:g} s")
        return succeeded

    def _outputs(self, job: Job, rec: dict, p: Path) -> list[str]:
        """The job's outputs: downloaded into ``out_dir`` if given, else their URIs."""
        if self.out_dir is None:
            return list(job.outputs)
        base = self.bases[id(rec)]
        plan = [(u, safe_join(self.out_dir, _async_name(job, u, p, base))) for u in job.outputs]
        self.places.claim([t for _, t in plan], rec)
        return [str(job._store.get_file(u, t)) for u, t in plan]

    def _collect(self, succeeded: list[tuple[dict, Path, Job]], now: bool = False) -> None:
        """Take the outputs of succeeded jobs: in the background unless ``now``."""
        for rec, p, job in succeeded:
            fut: Future = Future()
            if now or self.out_dir is None:
                try:
                    fut.set_result(self._outputs(job, rec, p))
                except OscarError as exc:
                    fut.set_exception(exc)
            else:
                fut = self.loader.submit(self._outputs, job, rec, p)
            self.collecting[fut] = (rec, p, job)
        self._reap()

    def _reap(self) -> None:
        """Finish the inputs whose outputs are taken (or settle those that failed)."""
        for fut in [f for f in self.collecting if f.done()]:
            rec, p, job = self.collecting.pop(fut)
            try:
                outs = fut.result()
            except OscarError as exc:
                self._settle(rec, p, _err(exc))
                continue
            rec.update(status="ok", outputs=outs, error=None, job=job.job_name)
            self._finish(rec)

    def _sleep(self) -> None:
        """Wait until a job is due (or the next job-list read), a job is started or an
        output downloaded, unless a free slot has an input ready."""
        if self._free() > 0 and (self.queue or self.staged):
            return
        mono, now = time.monotonic(), time.time()
        wake = mono + 0.25
        if self.inflight:
            due_in = min(j.submitted_at + self.min_age - now for _, _, j in self.inflight.values())
            wake = min(wake, max(self.next_list, mono + due_in))
        waits = [*self.posting, *self.collecting]
        if waits:
            wait_futures(waits, timeout=max(0.0, wake - mono), return_when=FIRST_COMPLETED)
        else:
            time.sleep(max(0.001, wake - mono))


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
    via: str | None = None,
) -> BatchResult:
    """Run ``service`` on every file; one failure never aborts the others.

    ``mode``: "async" (through the input bucket, at most ``concurrency`` jobs in
    flight) or "sync" (``concurrency`` parallel ``/run`` calls). Each input is tried
    up to ``1 + retries`` times. ``output_dir``: where results go (see the module doc);
    ``record_file``: the run record (default ``<output_dir>/.oscar-elyra-map.json``).
    With ``resume``, inputs the record says succeeded (same path, size and sha256, outputs
    still there) are skipped. ``timeout`` bounds each attempt. ``via`` (async): how a job
    is started, "job" (``POST /job`` with a storage event naming the input, uploaded ahead
    beside the input path: what MinIO's bucket notification sends OSCAR) or "bucket"
    (uploading into the input path); None takes "job" when the service allows it (its
    paths on the cluster's MinIO, an input path with a folder). Returns a
    :class:`BatchResult`.
    """
    if mode not in ("async", "sync"):
        raise ValidationError(f"mode must be 'async' or 'sync', not {mode!r}")
    if via not in (None, *VIA):
        raise ValidationError(f"via={via!r}: use 'bucket' or 'job'")
    if concurrency < 1:
        raise ValidationError("concurrency must be >= 1")
    paths, root = _expand_inputs(files)
    if not paths:
        raise ValidationError("no input files to process")
    rels = [_relative(p, root) for p in paths]
    bases = _bases(rels)  # refuses a plan whose results would collide, before anything runs
    out_dir = Path(output_dir) if output_dir is not None else None
    if record_file is None and out_dir is not None:
        record_file = out_dir / RECORD_NAME
    rec_path = Path(record_file) if record_file is not None else None
    prior = _read_records(rec_path) if resume else {}
    records: list[dict] = []
    todo = []
    base_of: dict[int, PurePosixPath] = {}
    for p, rel, base in zip(paths, rels, bases, strict=True):
        rec = {
            "input": str(p),
            "key": str(p.absolute()),
            "relative": str(rel),
            "status": "pending",
            "outputs": [],
            "error": None,
            "seconds": 0.0,
            "size": None,
            "sha256": None,
            "job": None,
            "_t0": None,  # every key exists from the start: the record is saved while it runs
        }
        records.append(rec)
        base_of[id(rec)] = base
        if not p.is_file():
            rec.update(status="failed", error=f"input file {str(p)!r} does not exist")
            continue
        rec["size"] = p.stat().st_size
        earlier = prior.get(rec["key"])
        if resume and _done_before(earlier, rec, p):
            rec.update(status="skipped", outputs=list(earlier["outputs"]), job=earlier.get("job"))
            continue
        todo.append((rec, p))
    _hash_all([(rec, p) for rec, p in todo if rec["sha256"] is None])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    session = connect(client=client, store=store)
    pbar = bar(len(records), f"{service} ({mode})", unit="file", enabled=progress)
    pbar.update(len(records) - len(todo))
    saver = _Saver(rec_path, records)
    batch = _Batch(
        service, todo, session, out_dir, concurrency, retries, timeout, pbar, saver, base_of
    )
    batch.via = via
    try:
        if mode == "sync":
            batch.run_sync()
        else:
            batch.run_async()
    finally:
        pbar.close()
        saver(final=True)
        for rec in records:
            rec.pop("_t0", None)
    return BatchResult(records)


def _hash_all(items: list[tuple[dict, Path]]) -> None:
    """The sha256 of every input, for the run record (a few files at a time)."""
    if not items:
        return

    def one(item: tuple[dict, Path]) -> None:
        rec, p = item
        rec["sha256"] = sha256_file(p)

    with ThreadPoolExecutor(max_workers=min(4, len(items))) as pool:
        list(pool.map(one, items))


class _Saver:
    """Writes the run record at most every :data:`RECORD_EVERY` s while a batch runs, and
    at its end (so an interrupted batch resumes with what it finished)."""

    def __init__(self, path: Path | None, records: list[dict]) -> None:
        self.path = path
        self.records = records
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, final: bool = False) -> None:
        if self.path is None:
            return
        with self._lock:
            if not final and time.monotonic() - self.last < RECORD_EVERY:
                return
            self.last = time.monotonic()
            rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.records]
            write_json_atomic(self.path, rows, fsync=final)
