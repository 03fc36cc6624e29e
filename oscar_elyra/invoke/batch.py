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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from oscar_elyra._paths import safe_join, sha256_file, write_json_atomic
from oscar_elyra.client import OscarClient
from oscar_elyra.errors import OscarError, ServiceError, ValidationError, is_bad_input
from oscar_elyra.invoke.jobs import (
    Job,
    _plan,
    _Tracker,
    _upload,
    async_paths,
    async_provider,
    new_run_id,
)
from oscar_elyra.invoke.sync import Result, run, write_atomic
from oscar_elyra.progress import bar
from oscar_elyra.redact import redact
from oscar_elyra.session import Session, connect
from oscar_elyra.storage import ObjectStore

__all__ = ["RECORD_NAME", "BatchResult", "map"]

#: seconds between output polls of map() while few jobs are in flight
MAP_POLL = float(os.environ.get("OSCAR_ELYRA_MAP_POLL", "0.03"))
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
    next_poll: dict[int, float] = field(default_factory=dict)
    # set by run_async, from the service definition
    in_path: str = field(init=False)
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
        """Through the input bucket, at most ``concurrency`` jobs in flight."""
        if not self.todo:
            return
        cl = self.session.client
        svc = cl.get_service(self.service)
        self.in_path, self.out_paths = async_paths(self.service, svc)
        self.store = self.session.store_of(self.service, svc, async_provider(self.service, svc))
        self.run_id = new_run_id()
        self.tracker = _Tracker(self.service, cl, self.store)
        while self.inflight or self.queue:
            self._launch()
            succeeded = self._poll()
            if succeeded:
                fixed = any(j.stem not in u for _, _, j in succeeded for u in j.outputs)
                if fixed:  # fixed names: download before the next job can overwrite them
                    self._collect(succeeded)
                self._launch()  # the freed slots get their next inputs before the downloads
                if not fixed:
                    self._collect(succeeded)
            self._sleep()

    def _settle(self, rec: dict, p: Path, error: str) -> None:
        """A failed attempt: queue the input again while retries are left, else finish it."""
        rec.update(status="failed", outputs=[], error=error)
        if self.attempts.get(id(rec), 0) < self.retries:
            self.attempts[id(rec)] = self.attempts.get(id(rec), 0) + 1
            self.queue.append((rec, p))
        else:
            self._finish(rec)

    def _launch(self) -> None:
        """Upload queued inputs while fewer than ``concurrency`` are in flight."""
        batch = []
        while self.queue and len(self.inflight) + len(batch) < self.concurrency:
            batch.append(self.queue.pop())
        if not batch:
            return
        for rec, _p in batch:
            if rec.get("_t0") is None:
                rec["_t0"] = time.monotonic()
        jobs = _plan(
            self.service,
            [p for _, p in batch],
            self.in_path,
            self.out_paths,
            self.run_id,
            self.counter + 1,
            self.session.client,
            self.store,
        )
        self.counter += len(batch)
        for (rec, p), job, err in zip(batch, jobs, _upload(jobs, self.store), strict=True):
            if err is None:
                self.inflight[id(job)] = (rec, p, job)
                self.tracker.follow([job])
            elif is_bad_input(err):
                rec.update(status="failed", error=_err(err))
                self._finish(rec)
            else:
                self._settle(rec, p, _err(err))

    def _poll(self) -> list[tuple[dict, Path, Job]]:
        """Poll the jobs that are due; settle failed and overdue ones; return the succeeded."""
        tracker = self.tracker
        tracker.jobs = [v[2] for v in self.inflight.values()]
        # poll a job's outputs only once it is about as old as the quickest jobs so far,
        # then often, backing off the longer it is overdue
        self.min_age = 0.7 * min(self.latencies[-32:]) if self.latencies else 0.0
        mono, now = time.monotonic(), time.time()
        due = [
            j
            for j in tracker.jobs
            if self.next_poll.get(id(j), 0.0) <= mono and now - j.submitted_at >= self.min_age
        ]
        if tracker.jobs:
            tracker.step(only=due)
        for j in due:
            overdue = max(0.0, now - j.submitted_at - self.min_age)
            self.next_poll[id(j)] = mono + min(0.5, MAP_POLL + 0.1 * overdue)
        succeeded = []
        for key, (rec, p, job) in list(self.inflight.items()):
            if job.status == "Succeeded":
                del self.inflight[key]
                self.latencies.append(time.time() - job.submitted_at)
                succeeded.append((rec, p, job))
            elif job.status == "Failed":
                del self.inflight[key]
                rec["job"] = job.job_name
                reason = job.error or f"job {job.job_name} failed"
                tail = (job.log or "").strip()[-400:]
                self._settle(rec, p, _err(ServiceError(f"{reason}; log tail: {tail}")))
            elif now - job.submitted_at > self.timeout:
                del self.inflight[key]
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

    def _collect(self, succeeded: list[tuple[dict, Path, Job]]) -> None:
        for rec, p, job in succeeded:
            try:
                outs = self._outputs(job, rec, p)
                rec.update(status="ok", outputs=outs, error=None, job=job.job_name)
                self._finish(rec)
            except OscarError as exc:
                self._settle(rec, p, _err(exc))

    def _sleep(self) -> None:
        """Sleep until the next job is due, unless a free slot has an input waiting."""
        if not self.inflight or (self.queue and len(self.inflight) < self.concurrency):
            return
        mono, now = time.monotonic(), time.time()
        wake = min(
            max(self.next_poll.get(id(j), 0.0), mono + j.submitted_at + self.min_age - now)
            for _, _, j in self.inflight.values()
        )
        time.sleep(min(0.25, max(0.01, wake - mono)))


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
    up to ``1 + retries`` times. ``output_dir``: where results go (see the module doc);
    ``record_file``: the run record (default ``<output_dir>/.oscar-elyra-map.json``).
    With ``resume``, inputs the record says succeeded (same path, size and sha256, outputs
    still there) are skipped. ``timeout`` bounds each attempt. Returns a
    :class:`BatchResult`.
    """
    if mode not in ("async", "sync"):
        raise ValidationError(f"mode must be 'async' or 'sync', not {mode!r}")
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
