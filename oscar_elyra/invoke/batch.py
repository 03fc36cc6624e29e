"""Batches: :func:`map` a service over many files, sync or async, with retries and resume."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_elyra._paths import safe_join, write_json_atomic
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

__all__ = ["BatchResult", "map"]

#: seconds between output polls of map() while few jobs are in flight
MAP_POLL = float(os.environ.get("OSCAR_ELYRA_MAP_POLL", "0.03"))
#: characters of an error kept in a record
ERROR_LIMIT = 500


class BatchResult(list):
    """Records of a :func:`map` run: dicts with input, status, outputs, error, seconds."""

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame``."""
        import pandas as pd  # optional heavy dependency (pandas), only for this conversion

        return pd.DataFrame(list(self), columns=["input", "status", "outputs", "error", "seconds"])

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


def _read_records(record_file: Path | None) -> dict[str, dict]:
    """The records of an earlier run by input, or {} when there are none (or unreadable)."""
    if record_file is None or not record_file.is_file():
        return {}
    try:
        return {r["input"]: r for r in json.loads(record_file.read_text()) if "input" in r}
    except (ValueError, TypeError, KeyError):
        return {}


def _place_sync(res: Result, out_dir: Path, p: Path) -> list[str]:
    """Move a sync answer into ``out_dir``: one file -> ``<stem><ext>``, several -> ``<stem>/``."""
    if res.kind == "text":
        target = out_dir / f"{p.stem}.txt"
        write_atomic(target, res.text.encode("utf-8"))
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
    # async state
    queue: list[tuple[dict, Path]] = field(init=False)
    attempts: dict[int, int] = field(default_factory=dict)
    inflight: dict[int, tuple[dict, Path, Job]] = field(default_factory=dict)
    counter: int = 0
    latencies: list[float] = field(default_factory=list)
    min_age: float = 0.0
    next_poll: dict[int, float] = field(default_factory=dict)
    finished: list[tuple[dict, Job]] = field(default_factory=list)
    # set by run_async, from the service definition
    in_path: str = field(init=False)
    out_paths: list[str] = field(init=False)
    run_id: str = field(init=False)
    tracker: _Tracker = field(init=False)

    def __post_init__(self) -> None:
        self.queue = list(reversed(self.todo))  # pop() from the end keeps input order

    def _finish(self, rec: dict) -> None:
        rec["seconds"] = round(time.monotonic() - rec.pop("_t0", time.monotonic()), 3)
        self.pbar.update(1)

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
                if self.out_dir is not None:
                    outs = _place_sync(res, self.out_dir, p)
                else:
                    outs = [str(x) for x in res.paths]
                rec.update(status="ok", outputs=outs, error=None)
                break
            except Exception as exc:  # noqa: BLE001 - one failure never aborts the batch
                rec.update(status="failed", error=_err(exc))
                if is_bad_input(exc):
                    break
        self._finish(rec)

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
                self._launch()  # the freed slots get their next inputs before the downloads
                self._collect(succeeded)
            self._sleep()
        self._late_outputs()

    def _settle(self, rec: dict, p: Path, error: str) -> None:
        """A failed attempt: queue the input again while retries are left, else finish it."""
        rec.update(status="failed", error=error)
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
            rec.setdefault("_t0", time.monotonic())
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
                tail = (job.log or "").strip()[-400:]
                error = ServiceError(f"job {job.job_name} failed; log tail: {tail}")
                self._settle(rec, p, _err(error))
            elif now - job.submitted_at > self.timeout:
                del self.inflight[key]
                self._settle(rec, p, f"no output after {self.timeout:g} s")
        return succeeded

    def _outputs(self, job: Job) -> list[str]:
        """The job's outputs: downloaded into ``out_dir`` if given, else their URIs."""
        if self.out_dir is not None:
            return [str(x) for x in job.download(self.out_dir)]
        return list(job.outputs)

    def _collect(self, succeeded: list[tuple[dict, Path, Job]]) -> None:
        for rec, p, job in succeeded:
            try:
                rec.update(status="ok", outputs=self._outputs(job), error=None, job=job.job_name)
                self.finished.append((rec, job))
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

    def _late_outputs(self) -> None:
        """One listing of the run at the end: outputs uploaded after a job was seen complete
        (a slow multi-file upload) are added and downloaded too."""
        if not self.finished:
            return
        by_stem = {j.stem: (rec, j) for rec, j in self.finished}
        late: dict[str, list[str]] = {}
        for out in self.out_paths:
            for stem, uri in self.tracker.run_outputs(out, self.run_id):
                hit = by_stem.get(stem)
                if hit is not None and uri not in hit[1].outputs:
                    late.setdefault(stem, []).append(uri)
        for stem, uris in late.items():
            rec, job = by_stem[stem]
            job.outputs = sorted(job.outputs + uris)
            try:
                rec["outputs"] = self._outputs(job)
            except OscarError as exc:
                rec.update(status="failed", error=_err(exc))


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
    prior = _read_records(rec_path) if resume else {}
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
    session = connect(client=client, store=store)
    pbar = bar(len(records), f"{service} ({mode})", unit="file", enabled=progress)
    pbar.update(len(records) - len(todo))
    batch = _Batch(service, todo, session, out_dir, concurrency, retries, timeout, pbar)
    try:
        if mode == "sync":
            batch.run_sync()
        else:
            batch.run_async()
    finally:
        pbar.close()
        if rec_path is not None:
            write_json_atomic(rec_path, records)
    return BatchResult(records)
