"""Async jobs of the embedded cluster: bucket watching, the queue and ``max_jobs`` workers.

Async jobs are started by new objects under a service's input path (as OSCAR's MinIO
webhook does) and by ``POST /job``. New objects are found by listing the input paths
every ``POLL_INTERVAL`` seconds and comparing with the processed-object records of
:mod:`~oscar_elyra.local.records`; each job record is written *before* its object is
marked processed, and unfinished jobs are queued again at start-up, so every object is
processed exactly once, also across restarts. Jobs run with the one
:class:`~oscar_elyra.local.runner.Runner`; every output file is uploaded to the
service's output paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from minio import Minio

from oscar_elyra.errors import NotFoundError
from oscar_elyra.local.procs import kill_group
from oscar_elyra.local.records import FINISHED, JobRecords
from oscar_elyra.local.runner import Runner, Workspace, event_file_name, supervisor_line
from oscar_elyra.local.services import ServiceStore, path_matches, split_path, storage_paths
from oscar_elyra.storage import object_created_event

__all__ = ["JobManager"]

log = logging.getLogger("oscar_elyra.local")

POLL_INTERVAL = 0.2
#: input-listing interval while the cluster is busy (an input or a finished job within
#: ``BUSY_WINDOW`` s): a client waiting on a freed slot sees its next input picked up sooner
FAST_POLL_INTERVAL = 0.05
BUSY_WINDOW = 2.0


class JobManager:
    """Queue, ``max_jobs`` workers and the bucket watcher, over ``records``."""

    def __init__(
        self,
        records: JobRecords,
        services: ServiceStore,
        runner: Runner,
        s3: Minio,
        max_jobs: int,
    ) -> None:
        self.records = records
        self.services = services
        self.runner = runner
        self.s3 = s3
        self.max_jobs = max(1, int(max_jobs))
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []
        self._busy: set[asyncio.Task] = set()
        self._closing = False
        self._last_activity = float("-inf")  # monotonic time of the last new input/finished job

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the records, queue unfinished jobs, start the workers and the watcher."""
        for rec in self.records.load():
            self.queue.put_nowait((rec["service"], rec["name"]))
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._worker()) for _ in range(self.max_jobs)]
        self.tasks.append(loop.create_task(self._watch()))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking jobs, let running ones finish for up to ``grace`` s, then kill them.

        Jobs not finished stay Pending/Running on disk and run again at the next start.
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
        for proc in list(self.procs.values()):
            kill_group(proc.pid)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    # ---------------------------------------------------------------- watcher
    def _list_new(self, svc: dict) -> list[tuple[str, str, int, str, str]]:
        """Objects under ``svc``'s input paths not processed yet (runs in a thread)."""
        found = []
        for io in storage_paths(svc, "input"):
            bucket, prefix = split_path(io["path"])
            listing_prefix = prefix + "/" if prefix else ""
            for obj in self.s3.list_objects(bucket, prefix=listing_prefix, recursive=True):
                key = obj.object_name
                if obj.is_dir or key.endswith("/"):
                    continue
                if not path_matches(key[len(listing_prefix) :], io):
                    continue
                identity = f"{bucket}/{key}@{obj.etag}"
                if not self.records.is_seen(svc["name"], identity):
                    found.append((bucket, key, obj.size or 0, obj.etag or "", identity))
        return found

    def baseline(self, svc: dict, paths: list[str] | None = None) -> None:
        """Mark the objects already under ``svc``'s input paths as processed (no jobs)."""
        try:
            new = self._list_new(svc)
        except Exception as exc:  # buckets may not exist yet
            log.warning("baseline of %s failed: %s", svc["name"], type(exc).__name__)
            return
        if paths is not None:
            new = [n for n in new if any(f"{n[0]}/{n[1]}".startswith(p + "/") for p in paths)]
        self.records.mark_seen(svc["name"], [n[4] for n in new])

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            for svc in self.services.list():
                if storage_paths(svc, "input"):
                    await self._poll(svc)
            now = time.monotonic()
            elapsed = now - started
            busy = now - self._last_activity < BUSY_WINDOW
            interval = FAST_POLL_INTERVAL if busy else POLL_INTERVAL
            # listing at most half the time: a large input path never keeps a core busy
            await asyncio.sleep(max(0.02, interval - elapsed, elapsed if busy else 0.0))

    async def _poll(self, svc: dict) -> None:
        """Create and queue a job for each new object under ``svc``'s input paths."""
        name = svc["name"]
        try:
            new = await self.runner.io(self._list_new, svc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("listing inputs of %s failed: %s", name, exc)
            return
        if not self.services.exists(name):
            return
        for bucket, key, size, etag, identity in new:
            if self.records.is_seen(name, identity):
                continue
            rec = self.records.new(
                name,
                source="bucket",
                bucket=bucket,
                key=key,
                size=size,
                etag=etag,
                identity=identity,
            )
            self.records.mark_seen(name, [identity])
            self.queue.put_nowait((name, rec["name"]))
            self._last_activity = time.monotonic()
            log.info("job %s created for s3://%s/%s", rec["name"], bucket, key)

    # ---------------------------------------------------------------- submission
    def submit_body(self, svc: str, body_file: Path) -> dict:
        """Queue a job whose input is a request body already decoded into ``body_file``."""
        rec = self.records.new(svc, source="post")
        body_file.replace(self.records.input_path(rec))
        rec["input_name"] = event_file_name(rec["uuid"])
        self.records.save(rec)
        self.queue.put_nowait((svc, rec["name"]))
        return rec

    def submit_object(self, svc: str, bucket: str, key: str, size: int = 0) -> dict:
        """Queue a job whose input is object ``bucket/key`` (a storage event on ``POST /job``)."""
        rec = self.records.new(svc, source="bucket", bucket=bucket, key=key, size=size, via="post")
        self.queue.put_nowait((svc, rec["name"]))
        self._last_activity = time.monotonic()
        return rec

    # ---------------------------------------------------------------- execution
    async def _worker(self) -> None:
        me = asyncio.current_task()
        while not self._closing:
            svc_name, job_name = await self.queue.get()
            try:
                rec = self.records.get(svc_name, job_name)
            except NotFoundError:
                continue  # deleted while queued
            if rec.get("status") != "Pending" or self._closing:
                continue
            self._busy.add(me)
            try:
                await self._execute(rec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a worker die
                log.exception("job %s failed in the cluster", job_name)
                note = f"[oscar-elyra] internal error: {type(exc).__name__}\n"
                self.records.append_log(rec, note)
                self._finish(rec, "Failed")
            finally:
                self._busy.discard(me)

    def _supervisor(self, rec: dict, message: str, level: str = "INFO") -> None:
        self.records.append_log(rec, supervisor_line(message, level))

    def _finish(self, rec: dict, status: str) -> None:
        if not self.records.is_current(rec):
            return  # deleted meanwhile
        self.records.set_status(rec, status)
        self._last_activity = time.monotonic()

    async def _execute(self, rec: dict) -> None:
        try:
            svc = self.services.get(rec["service"])
        except NotFoundError:
            self.records.append_log(rec, "[oscar-elyra] service was deleted before the job ran\n")
            self._finish(rec, "Failed")
            return
        self.records.set_status(rec, "Running")
        log_path = self.records.log_path(rec)
        log_path.write_bytes(b"")  # a re-run after restart starts a fresh log
        try:
            async with self.runner.workspace(rec["name"][:40] + "-") as ws:
                await self._run(rec, svc, ws, log_path)
        finally:
            if rec["source"] == "post" and rec.get("status") in FINISHED:
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
            self.procs[rec["name"]] = proc

        try:
            rc = await self.runner.run(
                svc, ws, input_path, rec["uuid"], log_path, event=event, on_start=started
            )
        finally:
            self.procs.pop(rec["name"], None)
        if not self.records.is_current(rec):
            return  # deleted while running
        if rc != 0:
            self._supervisor(rec, f"script exited with code {rc}", "ERROR")
        uploaded = await self.runner.io(self.runner.upload, svc, ws)
        for bucket, key in uploaded:
            self._supervisor(rec, f"Uploaded output to bucket '{bucket}' with key '{key}'")
        log.info("job %s finished rc=%s outputs=%d", rec["name"], rc, len(uploaded))
        self._finish(rec, "Succeeded" if rc == 0 else "Failed")

    # ---------------------------------------------------------------- deletion
    def delete_job(self, svc: str, job: str) -> None:
        """Delete one job (killing it if it runs); :class:`NotFoundError` if unknown."""
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

    def _forget(self, rec: dict) -> None:
        self._kill(rec)
        self.records.forget(rec)

    def _kill(self, rec: dict) -> None:
        proc = self.procs.pop(rec["name"], None)
        if proc is not None:
            kill_group(proc.pid)


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
