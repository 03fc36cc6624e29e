"""Async jobs of the embedded cluster: bucket watching, the scheduler and ``max_jobs`` workers.

Async jobs are started by new objects under a service's input paths (as OSCAR's MinIO
webhook does) and by ``POST /job``. New objects are learnt from SeaweedFS's metadata event
stream (:class:`~oscar_elyra.local.events.EventStream`), never by listing: each event of an
object written under a service's input path (a new key, or a new ETag of a known one) makes
one job, checked against the processed-object records of
:mod:`~oscar_elyra.local.records` (identity ``bucket/key@etag``); each job record is written
*before* its object is marked processed, so every object gets exactly one job. The ``tsNs``
of the last event processed is kept in ``<data>/watch/position.json``
(:class:`~oscar_elyra.local.events.Position`); at start, and whenever the stream ends, it
resumes from there, so an object written while the cluster was down gets its job once.
Objects already under a path when a service gets it make no job (its baseline: listed
once, marked processed; events older than it are ignored). After a run that did not stop
cleanly (SeaweedFS may have lost its last metadata log) or with no position yet, the input
paths are listed once at start. Jobs run
with the one :class:`~oscar_elyra.local.runner.Runner`; every output file is uploaded to
the service's output paths, each upload logged as the supervisor logs it
(``Uploading file '<key>' to bucket '<bucket>'``) and listed in the job record
(``outputs``).

Policy (documented in the README):

- **at most ``max_jobs`` jobs run at once**; when a slot frees, the service with the fewest
  running jobs gets it (ties: its oldest pending job first), so one service's backlog
  never queues another service's jobs behind all of it;
- **every job has a time limit**: the service's ``oscar-elyra/job-timeout`` annotation
  (seconds), else the cluster's ``--job-timeout`` (default :data:`DEFAULT_JOB_TIMEOUT`;
  0: none). A job past it is killed (its whole process group) and ends Failed, so a slot
  is never held longer than that;
- **exit codes**: a script that exits non-zero ends Failed, unless the cluster runs with
  ``compat="oscar"``, where (as on OSCAR, whose supervisor never reads the exit code) it
  ends Succeeded with whatever it uploaded;
- **deleting a job** kills its process group;
- **crash safety**: each running job's process group and workspace are in its record. At
  start-up a job a killed predecessor left running is adopted (waited for, its exit code
  read from the workspace, its outputs uploaded), one that ended meanwhile is completed
  from its workspace, one whose script is gone without an exit code (the cluster was
  stopped) runs again; leftover workspaces are removed. So no job runs twice at once and
  no finished script runs again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections import deque
from pathlib import Path

from minio import Minio

from oscar_elyra.errors import NotFoundError
from oscar_elyra.local.events import (
    EventStream,
    ObjectCreated,
    Position,
    bucket_created,
    event_ts,
    object_created,
)
from oscar_elyra.local.procs import kill_group
from oscar_elyra.local.records import FINISHED, UNFINISHED, JobRecords
from oscar_elyra.local.runner import (
    TIMED_OUT,
    Runner,
    Workspace,
    event_file_name,
    supervisor_line,
)
from oscar_elyra.local.services import ServiceStore, path_matches, split_path, storage_paths
from oscar_elyra.storage import object_created_event

__all__ = [
    "COMPAT_MODES",
    "DEFAULT_JOB_TIMEOUT",
    "TIMEOUT_ANNOTATION",
    "JobManager",
    "job_timeout",
]

log = logging.getLogger("oscar_elyra.local")

#: seconds between an event and the write of the stream position (one write per burst)
POSITION_FLUSH = 0.5
#: seconds :meth:`JobManager.idle` waits for its marker to come through the event stream
MARKER_TIMEOUT = 30.0
#: name of the short-lived bucket whose creation marks "every event up to now"
MARKER_BUCKET = "oscar-elyra-idle-{}"
#: seconds a job may run when neither the service nor ``--job-timeout`` says otherwise
DEFAULT_JOB_TIMEOUT = 3600.0
#: the service annotation (Kubernetes-style, ignored by OSCAR) giving its job time limit
TIMEOUT_ANNOTATION = "oscar-elyra/job-timeout"
#: "embedded": a script's non-zero exit code fails its job and its ``/run`` (HTTP 500 with
#: the output's tail); "oscar": exit codes are ignored, as OSCAR's supervisor does
COMPAT_MODES = ("embedded", "oscar")
#: seconds between checks on an adopted script (not our child: polled)
ADOPT_POLL = 0.2


def job_timeout(svc: dict, default: float) -> float | None:
    """The time limit (seconds) of ``svc``'s jobs: its annotation, else ``default``; None: none."""
    raw = (svc.get("annotations") or {}).get(TIMEOUT_ANNOTATION)
    try:
        value = float(raw) if raw not in (None, "") else float(default)
    except (TypeError, ValueError):
        value = float(default)
    return value if value > 0 else None


class _Scheduler:
    """Pending jobs per service; hands a free slot to the service with the fewest running
    jobs (ties: the oldest pending job). Adopted jobs go first."""

    def __init__(self) -> None:
        self.pending: dict[str, deque[tuple[int, str]]] = {}
        self.running: dict[str, int] = {}
        self.adopt: deque[tuple[str, str]] = deque()
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def put(self, svc: str, job: str) -> None:
        self.pending.setdefault(svc, deque()).append((next(self._seq), job))
        self._wake.set()

    def put_adopted(self, svc: str, job: str) -> None:
        self.adopt.append((svc, job))
        self._wake.set()

    def _pick(self) -> tuple[str, str, bool] | None:
        if self.adopt:
            svc, job = self.adopt.popleft()
            return svc, job, True
        best = None
        for svc, queue in self.pending.items():
            if queue:
                rank = (self.running.get(svc, 0), queue[0][0])
                if best is None or rank < best[0]:
                    best = (rank, svc)
        if best is None:
            return None
        svc = best[1]
        _, job = self.pending[svc].popleft()
        return svc, job, False

    async def get(self) -> tuple[str, str, bool]:
        """The next (service, job, adopted) to run; counts it as running."""
        while True:
            item = self._pick()
            if item is not None:
                self.running[item[0]] = self.running.get(item[0], 0) + 1
                return item
            self._wake.clear()
            await self._wake.wait()

    def done(self, svc: str) -> None:
        self.running[svc] = max(0, self.running.get(svc, 0) - 1)


class JobManager:
    """Scheduler, ``max_jobs`` workers and the bucket watcher, over ``records``."""

    def __init__(
        self,
        records: JobRecords,
        services: ServiceStore,
        runner: Runner,
        s3: Minio,
        max_jobs: int,
        events: EventStream,
        *,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        compat: str = "embedded",
    ) -> None:
        self.records = records
        self.events = events
        self.position = Position(records.watch_dir / "position.json")
        self.services = services
        self.runner = runner
        self.s3 = s3
        self.max_jobs = max(1, int(max_jobs))
        self.job_timeout = float(job_timeout)
        self.compat = compat
        self.procs: dict[str, int] = {}  # job name -> pgid of its running script
        self.sched = _Scheduler()
        self.tasks: list[asyncio.Task] = []
        self._busy: set[asyncio.Task] = set()
        self._closing = False
        self._caught_up = False  # the start-up listing (when needed) is done
        self._flush: asyncio.TimerHandle | None = None
        self._markers: dict[str, asyncio.Future[None]] = {}  # marker bucket -> its event seen

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the records; adopt, complete or queue again the unfinished jobs; remove
        what a killed predecessor left behind; start the workers and the event watcher."""
        keep: set[Path] = set()
        for rec in self.records.load():
            ws = Workspace(Path(rec["workspace"])) if rec.get("workspace") else None
            running = rec["status"] == "Running"
            if running and ws is not None and (ws.exit_code() is not None or ws.running()):
                keep.add(ws.root)
                self.sched.put_adopted(rec["service"], rec["name"])
                continue
            note = "the cluster stopped while this job ran; running it again"
            self.records.requeue(rec, supervisor_line(note, "WARNING") if running else "")
            self.sched.put(rec["service"], rec["name"])
        removed = self.runner.clean_leftovers(keep)
        if removed:
            log.info("removed %d leftover workspace(s) or temp file(s)", removed)
        catch_up = not self.position.clean  # no position yet, or the last run crashed
        if not self.position.ts_ns:
            self.position.ts_ns = time.time_ns()
        for svc in self.services.list():  # services older than ``since``: every event counts
            paths = [io["path"] for io in storage_paths(svc, "input")]
            self.position.set_since(svc["name"], paths, 0, keep=True)
        self.position.save(clean=False)
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._worker()) for _ in range(self.max_jobs)]
        self.tasks.append(loop.create_task(self._watch(catch_up)))

    async def stop(self, grace: float = 10.0, *, clean: bool = True) -> None:
        """Stop taking jobs, let running ones finish for up to ``grace`` s, then kill them.

        Jobs not finished stay Pending/Running on disk and run again at the next start.
        ``clean``: SeaweedFS stops cleanly too (so the next start needs no listing).
        """
        self._closing = True
        busy = [t for t in self.tasks if t in self._busy]
        for t in self.tasks:
            if t not in self._busy:
                t.cancel()
        if busy:
            await asyncio.wait(busy, timeout=grace)
        for t in self.tasks:
            t.cancel()
        for pgid in list(self.procs.values()):
            kill_group(pgid)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        if self._flush is not None:
            self._flush.cancel()
        self.position.save(clean=clean and self._caught_up)

    # ---------------------------------------------------------------- watcher
    def _list_inputs(self, svc: dict, paths: list[str] | None = None) -> list[ObjectCreated]:
        """Objects under ``svc``'s input paths (or those of them in ``paths``) passing
        their filters (runs in a thread; a listing: at baselines and start-up only)."""
        found = []
        for io in storage_paths(svc, "input"):
            if paths is not None and io["path"] not in paths:
                continue
            bucket, prefix = split_path(io["path"])
            listing_prefix = prefix + "/" if prefix else ""
            for obj in self.s3.list_objects(bucket, prefix=listing_prefix, recursive=True):
                key = obj.object_name
                if obj.is_dir or key.endswith("/"):
                    continue
                if not path_matches(key[len(listing_prefix) :], io):
                    continue
                found.append(ObjectCreated(0, bucket, key, obj.size or 0, obj.etag or ""))
        return found

    def baseline(self, svc: dict, paths: list[str] | None = None) -> None:
        """Mark the objects already under ``svc``'s input paths (or those of them in
        ``paths``) as processed (no jobs); their events count from now on."""
        if paths is None:
            paths = [io["path"] for io in storage_paths(svc, "input")]
        since = time.time_ns()
        self.position.set_since(svc["name"], paths, since)
        self.position.save()
        try:
            found = self._list_inputs(svc, paths)
        except Exception as exc:  # buckets may not exist yet
            log.warning("baseline of %s failed: %s", svc["name"], type(exc).__name__)
            return
        new = [i for i in map(_identity, found) if not self.records.is_seen(svc["name"], i)]
        self.records.mark_seen(svc["name"], new)

    async def _watch(self, catch_up: bool) -> None:
        """List the input paths once if ``catch_up``, then follow the storage events."""
        if catch_up:
            for svc in self.services.list():
                try:
                    found = await self.runner.io(self._list_inputs, svc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("listing inputs of %s failed: %s", svc["name"], exc)
                    continue
                for obj in found:
                    self._trigger(svc["name"], obj)
        self._caught_up = True
        await self.events.follow(self._resume, self._on_event)

    def _resume(self) -> int:
        """The position a (re)started stream resumes from, saved first."""
        self.position.save()
        return self.position.ts_ns

    def _on_event(self, doc: dict) -> None:
        """One metadata event: a job for each service whose input path it matches.

        Events arrive nearly but not exactly in ``tsNs`` order (the filer stamps an event
        before appending it to its log), and a stream replays from before its position:
        what was processed is known by the processed-object records, not by time.
        """
        for event in (doc, *(e for e in doc.get("events") or () if isinstance(e, dict))):
            if self._markers:
                marker = self._markers.get(bucket_created(event) or "")
                if marker is not None and not marker.done():
                    marker.set_result(None)
            obj = object_created(event)
            if obj is not None:
                for svc in self.services.list():
                    if self._matches(svc, obj):
                        self._trigger(svc["name"], obj)
            self.position.ts_ns = max(self.position.ts_ns, event_ts(event))
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(POSITION_FLUSH, self._save_position)

    def _save_position(self) -> None:
        self._flush = None
        self.position.save()

    def _matches(self, svc: dict, obj: ObjectCreated) -> bool:
        """Whether ``obj`` is under one of ``svc``'s input paths, passes its filters and
        was written after that path's baseline."""
        for io in storage_paths(svc, "input"):
            bucket, prefix = split_path(io["path"])
            listing_prefix = prefix + "/" if prefix else ""
            if bucket != obj.bucket or not obj.key.startswith(listing_prefix):
                continue
            since = self.position.since_of(svc["name"], io["path"])
            if since is None or obj.ts_ns < since:
                continue  # being created, or written before its baseline
            if path_matches(obj.key[len(listing_prefix) :], io):
                return True
        return False

    def _trigger(self, name: str, obj: ObjectCreated) -> None:
        """Create and queue ``name``'s job for ``obj`` unless it was processed."""
        identity = _identity(obj)
        if self.records.is_seen(name, identity) or not self.services.exists(name):
            return
        rec = self.records.new(
            name,
            source="bucket",
            bucket=obj.bucket,
            key=obj.key,
            size=obj.size,
            etag=obj.etag,
            identity=identity,
        )
        self.records.mark_seen(name, [identity])
        self.sched.put(name, rec["name"])
        log.info("job %s created for s3://%s/%s", rec["name"], obj.bucket, obj.key)

    # ---------------------------------------------------------------- quiescence
    async def idle(self, service: str | None = None) -> bool:
        """Whether nothing more will happen by itself (for tests and tools that must tell
        "nothing else happened" from "nothing happened yet").

        First takes in every storage event up to now (:meth:`_events_up_to_now`), then
        answers True when no job (of ``service``, or at all) is Pending or Running.
        """
        if not await self._events_up_to_now():
            return False
        names = [service] if service is not None else list(self.records.jobs)
        return not any(
            rec["status"] in UNFINISHED for name in names for rec in self.records.of_service(name)
        )

    async def _events_up_to_now(self) -> bool:
        """Return True once every storage event before this call has been processed.

        A marker bucket is created and removed: the filer appends an event to its log
        before the write it reports returns, so the marker's event comes after those of
        every write done before; once the stream brings it, they were processed. False
        when the marker did not come within :data:`MARKER_TIMEOUT` s (a stream restarting).
        """
        name = MARKER_BUCKET.format(uuid.uuid4().hex[:20])
        seen = self._markers[name] = asyncio.get_running_loop().create_future()
        created = False
        try:
            await self.runner.io(self.s3.make_bucket, name)
            created = True
            await asyncio.wait_for(seen, MARKER_TIMEOUT)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            del self._markers[name]
            if created:
                await self.runner.io(self.s3.remove_bucket, name)

    # ---------------------------------------------------------------- submission
    def submit_body(self, svc: str, body_file: Path) -> dict:
        """Queue a job whose input is a request body already decoded into ``body_file``."""
        rec = self.records.new(svc, source="post")
        body_file.replace(self.records.input_path(rec))
        rec["input_name"] = event_file_name(rec["uuid"])
        self.records.save(rec)
        self.sched.put(svc, rec["name"])
        return rec

    def submit_object(self, svc: str, bucket: str, key: str, size: int = 0) -> dict:
        """Queue a job whose input is object ``bucket/key`` (a storage event on ``POST /job``)."""
        rec = self.records.new(svc, source="bucket", bucket=bucket, key=key, size=size, via="post")
        self.sched.put(svc, rec["name"])
        return rec

    # ---------------------------------------------------------------- execution
    async def _worker(self) -> None:
        me = asyncio.current_task()
        while not self._closing:
            svc_name, job_name, adopted = await self.sched.get()
            try:
                try:
                    rec = self.records.get(svc_name, job_name)
                except NotFoundError:
                    continue  # deleted while queued
                if self._closing or rec.get("status") != ("Running" if adopted else "Pending"):
                    continue
                self._busy.add(me)
                try:
                    await (self._adopt(rec) if adopted else self._execute(rec))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never let a worker die
                    log.exception("job %s failed in the cluster", job_name)
                    note = f"[oscar-elyra] internal error: {type(exc).__name__}\n"
                    self.records.append_log(rec, note)
                    self._finish(rec, "Failed")
                finally:
                    self._busy.discard(me)
            finally:
                self.sched.done(svc_name)

    def _supervisor(self, rec: dict, message: str, level: str = "INFO") -> None:
        self.records.append_log(rec, supervisor_line(message, level))

    def _finish(self, rec: dict, status: str) -> None:
        if not self.records.is_current(rec):
            return  # deleted meanwhile
        rec.pop("pgid", None)
        rec.pop("workspace", None)
        self.records.set_status(rec, status)

    async def _execute(self, rec: dict) -> None:
        try:
            svc = self.services.get(rec["service"])
        except NotFoundError:
            self.records.append_log(rec, "[oscar-elyra] service was deleted before the job ran\n")
            self._finish(rec, "Failed")
            return
        log_path = self.records.log_path(rec)  # emptied by requeue() for a re-run
        ws = self.runner.new_workspace(rec["name"][:40] + "-")
        rec["workspace"] = str(ws.root)
        self.records.set_status(rec, "Running")
        try:
            await self._run(rec, svc, ws, log_path)
        finally:
            if rec.get("status") in FINISHED or not self.records.is_current(rec):
                await self.runner.remove(ws)
                if rec["source"] == "post":
                    self.records.input_path(rec).unlink(missing_ok=True)

    async def _stage_input(self, rec: dict, ws: Workspace) -> tuple[Path, str | None] | None:
        """Put the job's input in ``ws``; returns (input path, ``EVENT``), None on failure."""
        if rec["source"] != "bucket":
            input_path = ws.input / rec["input_name"]
            self._supervisor(rec, f"Event received through POST /job; input '{input_path}'")
            await self.runner.stage(self.records.input_path(rec), input_path)
            return input_path, _small_text(input_path)
        bucket, key = rec["bucket"], rec["key"]
        input_path = ws.input / key.rsplit("/", 1)[-1]
        self._supervisor(rec, f"Downloading item from bucket '{bucket}' with key '{key}'")
        try:
            await self.runner.fetch(bucket, key, input_path)
        except Exception as exc:
            self._supervisor(rec, f"Download failed: {type(exc).__name__}: {exc}", "ERROR")
            return None
        self._supervisor(
            rec,
            f"Successful download of file '{key}' from bucket '{bucket}' in path '{input_path}'",
        )
        return input_path, _minio_event(rec)

    async def _run(self, rec: dict, svc: dict, ws: Workspace, log_path: Path) -> None:
        staged = await self._stage_input(rec, ws)
        if staged is None:
            self._finish(rec, "Failed")
            return
        input_path, event = staged

        def started(proc: asyncio.subprocess.Process) -> None:
            self.procs[rec["name"]] = proc.pid
            rec["pgid"] = proc.pid
            self.records.save(rec)

        limit = job_timeout(svc, self.job_timeout)
        try:
            rc = await self.runner.run(
                svc,
                ws,
                input_path,
                rec["uuid"],
                log_path,
                event=event,
                timeout=limit,
                on_start=started,
            )
        finally:
            self.procs.pop(rec["name"], None)
        await self._complete(rec, svc, ws, rc, limit)

    async def _complete(
        self, rec: dict, svc: dict, ws: Workspace, rc: int | None, limit: float | None
    ) -> None:
        """A script has ended with ``rc``: upload its outputs and settle the job."""
        if not self.records.is_current(rec):
            return  # deleted while running
        if rc == TIMED_OUT:
            note = f"Job exceeded its time limit of {limit:g} s; its processes were killed"
            self._supervisor(rec, note, "ERROR")
            self._finish(rec, "Failed")
            return
        if rc is None:
            self._supervisor(rec, "The script ended without an exit code", "ERROR")
        elif rc != 0 and self.compat != "oscar":
            self._supervisor(rec, f"script exited with code {rc}", "ERROR")
        uploaded = await self.runner.io(
            self.runner.upload,
            svc,
            ws,
            lambda b, k: self._supervisor(rec, f"Uploading file '{k}' to bucket '{b}'"),
        )
        rec["outputs"] = [f"{b}/{k}" for b, k in uploaded]
        log.info("job %s finished rc=%s outputs=%d", rec["name"], rc, len(uploaded))
        ok = rc == 0 or (self.compat == "oscar" and rc is not None)
        self._finish(rec, "Succeeded" if ok else "Failed")

    async def _adopt(self, rec: dict) -> None:
        """Finish a job whose script a killed predecessor started: wait for the script
        (within the job's time limit), read its exit code, upload its outputs. The job of a
        service deleted meanwhile fails, its script killed."""
        ws = Workspace(Path(rec["workspace"]))
        try:
            svc = self.services.get(rec["service"])
        except NotFoundError:
            svc = None
        limit = job_timeout(svc or {}, self.job_timeout)
        pgid = ws.pgid()
        if pgid is not None and ws.running():
            self.procs[rec["name"]] = pgid
            self._supervisor(rec, f"Adopted the running script (process group {pgid})")
        started = float(rec.get("start_time") or time.time())
        try:  # a service gone meanwhile: its script is killed at once, below
            while svc is not None and ws.exit_code() is None and ws.running():
                if limit is not None and time.time() - started > limit:
                    kill_group(pgid)
                    break
                await asyncio.sleep(ADOPT_POLL)
        finally:
            self.procs.pop(rec["name"], None)
        if pgid is not None:
            kill_group(pgid)  # whatever the script left running in its group
        try:
            if svc is None:
                note = "[oscar-elyra] service was deleted while the job ran\n"
                self.records.append_log(rec, note)
                self._finish(rec, "Failed")
                return
            rc = ws.exit_code()
            if rc is None and limit is not None and time.time() - started > limit:
                rc = TIMED_OUT
            await self._complete(rec, svc, ws, rc, limit)
        finally:
            await self.runner.remove(ws)
            if rec["source"] == "post":
                self.records.input_path(rec).unlink(missing_ok=True)

    # ---------------------------------------------------------------- deletion
    def delete_job(self, svc: str, job: str) -> None:
        """Delete one job, killing its process group if it runs (:class:`NotFoundError`
        if unknown)."""
        self._forget(self.records.get(svc, job))

    def delete_jobs(self, svc: str, all_jobs: bool = False) -> int:
        """Delete Succeeded jobs (all jobs with ``all_jobs``); returns how many."""
        recs = [r for r in self.records.of_service(svc) if all_jobs or r["status"] == "Succeeded"]
        for rec in recs:
            self._forget(rec)
        return len(recs)

    def forget_service(self, svc: str) -> None:
        """Drop (and kill) every job and processed-object record of a deleted service."""
        for rec in self.records.of_service(svc):
            self._kill(rec)
        self.records.forget_service(svc)
        self.position.forget(svc)
        self.position.save()

    def _forget(self, rec: dict) -> None:
        self._kill(rec)
        self.records.forget(rec)

    def _kill(self, rec: dict) -> None:
        pgid = self.procs.pop(rec["name"], None)
        if pgid is not None:
            kill_group(pgid)


def _identity(obj: ObjectCreated) -> str:
    """What marks an input object processed: a new ETag of a key is a new input."""
    return f"{obj.bucket}/{obj.key}@{obj.etag}"


def _minio_event(rec: dict) -> str:
    """A MinIO ``s3:ObjectCreated:Put`` notification for a bucket job, as OSCAR gets it."""
    event = object_created_event(rec["bucket"], rec["key"], rec.get("size", 0), rec.get("etag", ""))
    return json.dumps(event)


def _small_text(path: Path, limit: int = 64 * 1024) -> str | None:
    """The body as ``EVENT`` when it is small UTF-8 text (env vars can't hold big data)."""
    try:
        if path.stat().st_size > limit:
            return None
        text = path.read_bytes().decode("utf-8")
        return None if "\x00" in text else text
    except (OSError, UnicodeDecodeError):
        return None
