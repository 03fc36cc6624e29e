"""Job execution of the embedded cluster, matching OSCAR's supervisor on the host.

Each job runs ``bash script.sh`` in a fresh temporary working dir with the env OSCAR's
supervisor gives a service container: ``environment.variables`` (and ``secrets``),
``INPUT_FILE_PATH``, ``TMP_OUTPUT_DIR``, ``OSCAR_SERVICE_NAME``, ``OSCAR_SERVICE_TOKEN``,
``JOB_UUID`` and, for async jobs, ``EVENT``. The venv's ``bin`` dir is first on ``PATH``
so ``python3`` has the packages of this environment.

Difference from OSCAR: the service ``image`` is recorded but never pulled; the script
runs directly on the host, with whatever tools the host has.

Async jobs are started by new objects under a service's input path. New objects are
detected by listing the input paths every ``POLL_INTERVAL`` seconds and comparing with
a persisted record of processed objects (``<data>/watch/<svc>.jsonl``); each job record
(``<data>/jobs/<svc>/<job>.json``) is written *before* its object is marked processed,
and unfinished jobs are re-queued at start-up, so every object is processed exactly once,
also across restarts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oscar_elyra.errors import NotFoundError, ValidationError
from oscar_elyra.local.services import ServiceStore, storage_paths
from oscar_elyra._paths import write_json_atomic

__all__ = ["JobManager", "decode_body", "job_env", "run_script", "rfc3339", "PAGE_SIZE"]

log = logging.getLogger("oscar_elyra.local")

PAGE_SIZE = 70
POLL_INTERVAL = 0.2
#: input-listing interval while the cluster is busy (an input or a finished job within
#: ``BUSY_WINDOW`` s): a client waiting on a freed slot sees its next input picked up sooner
FAST_POLL_INTERVAL = 0.05
BUSY_WINDOW = 2.0
JSON_CHECK_LIMIT = 32 * 1024 * 1024
CHUNK = 1 << 16
_SECRET_ENV_PREFIXES = ("AWS_", "OSCAR_", "MINIO_")


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds -> ``2006-01-02T15:04:05Z`` (the format Kubernetes/OSCAR use)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_body(src: Path, dest: Path) -> str:
    """Write the job input for request body ``src`` to ``dest``; returns "json" or "base64".

    A body that parses as JSON (an object, array or string) is written as-is; any other
    body is base64-decoded, chunk by chunk. Raises :class:`ValidationError` otherwise.
    """
    src, dest = Path(src), Path(dest)
    with open(src, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head[:1] in (b"{", b"[", b'"'):
        is_json = True
        if src.stat().st_size <= JSON_CHECK_LIMIT:
            try:
                with open(src, "rb") as fh:
                    json.load(fh)
            except (ValueError, UnicodeDecodeError):
                is_json = False
        if is_json:
            shutil.copyfile(src, dest)
            return "json"
    tmp = dest.with_name(dest.name + ".part")
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            carry = b""
            while chunk := fi.read(CHUNK):
                data = carry + chunk.translate(None, b" \t\r\n")
                n = len(data) // 4 * 4
                fo.write(base64.b64decode(data[:n], validate=True))
                carry = data[n:]
            if carry:
                raise binascii.Error("truncated")
        os.replace(tmp, dest)
    except (binascii.Error, ValueError):
        tmp.unlink(missing_ok=True)
        raise ValidationError(
            "request body is neither JSON nor valid base64; send JSON as-is or "
            "base64-encode the file"
        ) from None
    return "base64"


def job_env(
    svc: dict,
    input_path: Path | str,
    out_dir: Path | str,
    job_uuid: str,
    event: str | None = None,
) -> dict[str, str]:
    """The environment a service script gets (host env without credentials + OSCAR's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_ENV_PREFIXES)}
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.pop("PYTHONPATH", None)
    environment = svc.get("environment") or {}
    for section in ("variables", "secrets"):
        for k, v in (environment.get(section) or {}).items():
            env[str(k)] = str(v)
    env.update(
        INPUT_FILE_PATH=str(input_path),
        TMP_OUTPUT_DIR=str(out_dir),
        OSCAR_SERVICE_NAME=svc["name"],
        OSCAR_SERVICE_TOKEN=svc.get("token", ""),
        JOB_UUID=job_uuid,
    )
    if event is not None:
        env["EVENT"] = event
    return env


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_script(
    svc: dict,
    workdir: Path,
    env: dict[str, str],
    stdout_path: Path,
    stderr_path: Path | None = None,
    timeout: float | None = None,
    on_start: Any = None,
) -> int:
    """Run the service script with bash in ``workdir``; returns the exit code (-9 on timeout).

    The script runs in its own process group, killed on timeout or cancellation.
    """
    script = Path(workdir).parent / "script.sh"
    script.write_text(svc["script"], encoding="utf-8")
    with open(stdout_path, "ab") as out:
        err = open(stderr_path, "ab") if stderr_path else None
        try:
            proc = await asyncio.create_subprocess_exec(
                "bash",
                str(script),
                cwd=str(workdir),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err if err else asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if err:
                err.close()
    if on_start:
        on_start(proc)
    try:
        if timeout:
            return await asyncio.wait_for(proc.wait(), timeout)
        return await proc.wait()
    except asyncio.TimeoutError:
        _kill_group(proc)
        await proc.wait()
        return -9
    finally:
        if proc.returncode is None:
            _kill_group(proc)
        else:
            # also reap anything the script left running in its group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _matches(name: str, prefixes: list[str], suffixes: list[str]) -> bool:
    base = name.rsplit("/", 1)[-1]
    if prefixes and not any(name.startswith(p) or base.startswith(p) for p in prefixes):
        return False
    if suffixes and not any(name.endswith(s) for s in suffixes):
        return False
    return True


def _split(path: str) -> tuple[str, str]:
    bucket, _, prefix = path.partition("/")
    return bucket, prefix.strip("/")


class JobManager:
    """Async jobs: queue, ``max_jobs`` workers, bucket watcher, persistent records and logs."""

    def __init__(
        self,
        data_dir: Path,
        services: ServiceStore,
        s3: Any,
        max_jobs: int,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.watch_dir = self.data_dir / "watch"
        self.tmp_dir = self.data_dir / "tmp"
        for d in (self.jobs_dir, self.watch_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.services = services
        self.s3 = s3
        self.max_jobs = max(1, int(max_jobs))
        self.executor = executor
        self.jobs: dict[str, dict[str, dict]] = {}
        self.seen: dict[str, set[str]] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []
        self._busy: set[asyncio.Task] = set()
        self._closing = False
        self._last_activity = float("-inf")  # monotonic time of the last new input/finished job

    # ---------------------------------------------------------------- lifecycle
    def load(self) -> None:
        """Read job records and processed-object records; re-queue unfinished jobs."""
        pending = []
        for svc_dir in sorted(self.jobs_dir.iterdir()):
            if not svc_dir.is_dir():
                continue
            for path in svc_dir.glob("*.json"):
                try:
                    rec = json.loads(path.read_text(encoding="utf-8"))
                except (ValueError, OSError):
                    continue
                self.jobs.setdefault(rec["service"], {})[rec["name"]] = rec
                if rec.get("identity"):
                    self.seen.setdefault(rec["service"], set()).add(rec["identity"])
                if rec["status"] in ("Pending", "Running"):
                    rec["status"] = "Pending"
                    rec.pop("start_time", None)
                    pending.append(rec)
        for path in self.watch_dir.glob("*.jsonl"):
            seen = self.seen.setdefault(path.stem, set())
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        try:
                            seen.add(json.loads(line))
                        except ValueError:
                            continue
        for rec in sorted(pending, key=lambda r: (r["creation_time"], r["name"])):
            self._save(rec)
            self.queue.put_nowait((rec["service"], rec["name"]))

    def start(self) -> None:
        self.load()
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
            _kill_group(proc)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    # ---------------------------------------------------------------- records
    def _svc_dir(self, svc: str) -> Path:
        d = self.jobs_dir / svc
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _save(self, rec: dict) -> None:
        write_json_atomic(self._svc_dir(rec["service"]) / f"{rec['name']}.json", rec, fsync=False)

    def _mark_seen(self, svc: str, identities: list[str]) -> None:
        if not identities:
            return
        self.seen.setdefault(svc, set()).update(identities)
        data = "".join(json.dumps(i) + "\n" for i in identities).encode()
        fd = os.open(self.watch_dir / f"{svc}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _new_job(self, svc: str, **fields: Any) -> dict:
        job_uuid = str(uuid.uuid4())
        rec = {
            "name": f"{svc}-{job_uuid}",
            "uuid": job_uuid,
            "service": svc,
            "status": "Pending",
            "creation_time": time.time(),
            **fields,
        }
        self.jobs.setdefault(svc, {})[rec["name"]] = rec
        self._save(rec)
        return rec

    # ---------------------------------------------------------------- watcher
    def _list_new(self, svc: dict) -> list[tuple[str, str, int, str, str]]:
        """Objects under ``svc``'s input paths not processed yet (runs in a thread)."""
        seen = self.seen.get(svc["name"], set())
        found = []
        for io in storage_paths(svc, "input"):
            bucket, prefix = _split(io["path"])
            listing_prefix = prefix + "/" if prefix else ""
            for obj in self.s3.list_objects(bucket, prefix=listing_prefix, recursive=True):
                key = obj.object_name
                if obj.is_dir or key.endswith("/"):
                    continue
                rel = key[len(listing_prefix) :]
                if not _matches(rel, io.get("prefix") or [], io.get("suffix") or []):
                    continue
                identity = f"{bucket}/{key}@{obj.etag}"
                if identity in seen:
                    continue
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
        self._mark_seen(svc["name"], [n[4] for n in new])

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = time.monotonic()
            for svc in self.services.list():
                if not storage_paths(svc, "input"):
                    continue
                try:
                    new = await loop.run_in_executor(self.executor, self._list_new, svc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("listing inputs of %s failed: %s", svc["name"], exc)
                    continue
                if not self.services.exists(svc["name"]):
                    continue
                for bucket, key, size, etag, identity in new:
                    if identity in self.seen.get(svc["name"], set()):
                        continue
                    rec = self._new_job(
                        svc["name"],
                        source="bucket",
                        bucket=bucket,
                        key=key,
                        size=size,
                        etag=etag,
                        identity=identity,
                    )
                    self._mark_seen(svc["name"], [identity])
                    self.queue.put_nowait((svc["name"], rec["name"]))
                    self._last_activity = time.monotonic()
                    log.info("job %s created for s3://%s/%s", rec["name"], bucket, key)
            now = time.monotonic()
            elapsed = now - started
            busy = now - self._last_activity < BUSY_WINDOW
            interval = FAST_POLL_INTERVAL if busy else POLL_INTERVAL
            # listing at most half the time: a large input path never keeps a core busy
            await asyncio.sleep(max(0.02, interval - elapsed, elapsed if busy else 0.0))

    # ---------------------------------------------------------------- submission
    def submit_body(self, svc: str, body_file: Path) -> dict:
        """Queue a job whose input is a request body already decoded into ``body_file``."""
        rec = self._new_job(svc, source="post")
        dest = self._svc_dir(svc) / f"{rec['name']}.input"
        os.replace(body_file, dest)
        rec["input_name"] = f"event-file-{rec['uuid']}"
        self._save(rec)
        self.queue.put_nowait((svc, rec["name"]))
        return rec

    # ---------------------------------------------------------------- execution
    async def _worker(self) -> None:
        me = asyncio.current_task()
        while not self._closing:
            svc_name, job_name = await self.queue.get()
            rec = self.jobs.get(svc_name, {}).get(job_name)
            if rec is None or rec.get("status") != "Pending" or self._closing:
                continue
            self._busy.add(me)
            try:
                await self._execute(rec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a worker die
                log.exception("job %s failed in the cluster", job_name)
                self._append_log(rec, f"[oscar-elyra] internal error: {type(exc).__name__}\n")
                self._finish(rec, "Failed")
            finally:
                self._busy.discard(me)

    def _log_path(self, rec: dict) -> Path:
        return self._svc_dir(rec["service"]) / f"{rec['name']}.log"

    def _supervisor(self, rec: dict, message: str, level: str = "INFO") -> None:
        """A log line like OSCAR's faas-supervisor writes around the script's output."""
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        self._append_log(rec, f"[{ts}] - supervisor - {level} - {message}\n")

    def _append_log(self, rec: dict, text: str) -> None:
        with open(self._log_path(rec), "a", encoding="utf-8") as fh:
            fh.write(text)

    def _finish(self, rec: dict, status: str) -> None:
        if self.jobs.get(rec["service"], {}).get(rec["name"]) is not rec:
            return  # deleted meanwhile
        rec["status"] = status
        rec["finish_time"] = time.time()
        self._save(rec)
        self._last_activity = time.monotonic()

    async def _execute(self, rec: dict) -> None:
        loop = asyncio.get_running_loop()
        try:
            svc = self.services.get(rec["service"])
        except NotFoundError:
            self._append_log(rec, "[oscar-elyra] service was deleted before the job ran\n")
            self._finish(rec, "Failed")
            return
        rec["status"] = "Running"
        rec["start_time"] = time.time()
        self._save(rec)
        log_path = self._log_path(rec)
        log_path.write_bytes(b"")  # a re-run after restart starts a fresh log
        jobdir = Path(tempfile.mkdtemp(prefix=rec["name"][:40] + "-", dir=self.tmp_dir))
        try:
            workdir, indir, outdir = jobdir / "work", jobdir / "input", jobdir / "output"
            for d in (workdir, indir, outdir):
                d.mkdir()
            if rec["source"] == "bucket":
                input_path = indir / rec["key"].rsplit("/", 1)[-1]
                self._supervisor(
                    rec, f"Downloading item from bucket '{rec['bucket']}' with key '{rec['key']}'"
                )
                try:
                    await loop.run_in_executor(
                        self.executor,
                        self.s3.fget_object,
                        rec["bucket"],
                        rec["key"],
                        str(input_path),
                    )
                except Exception as exc:
                    self._supervisor(rec, f"Download failed: {type(exc).__name__}: {exc}", "ERROR")
                    self._finish(rec, "Failed")
                    return
                self._supervisor(
                    rec,
                    f"Successful download of file '{rec['key']}' from bucket '{rec['bucket']}' "
                    f"in path '{input_path}'",
                )
                event = _minio_event(rec)
            else:
                input_path = indir / rec["input_name"]
                self._supervisor(rec, f"Event received through POST /job; input '{input_path}'")
                src = self._svc_dir(rec["service"]) / f"{rec['name']}.input"
                try:
                    os.link(src, input_path)
                except OSError:
                    await loop.run_in_executor(self.executor, shutil.copyfile, src, input_path)
                event = _small_text(input_path)
            env = job_env(svc, input_path, outdir, rec["uuid"], event=event)
            env["OSCAR_ELYRA_CACHE_DIR"] = str(self.data_dir / "cache")

            def started(proc: asyncio.subprocess.Process) -> None:
                self.procs[rec["name"]] = proc

            try:
                rc = await run_script(svc, workdir, env, log_path, on_start=started)
            finally:
                self.procs.pop(rec["name"], None)
            if self.jobs.get(rec["service"], {}).get(rec["name"]) is not rec:
                return  # deleted while running
            if rc != 0:
                self._supervisor(rec, f"script exited with code {rc}", "ERROR")
            uploaded = await loop.run_in_executor(self.executor, self._upload_outputs, svc, outdir)
            for bucket, key in uploaded:
                self._supervisor(rec, f"Uploaded output to bucket '{bucket}' with key '{key}'")
            log.info("job %s finished rc=%s outputs=%d", rec["name"], rc, len(uploaded))
            self._finish(rec, "Succeeded" if rc == 0 else "Failed")
        finally:
            await loop.run_in_executor(self.executor, shutil.rmtree, jobdir, True)
            if rec["source"] == "post" and rec.get("status") in ("Succeeded", "Failed"):
                (self._svc_dir(rec["service"]) / f"{rec['name']}.input").unlink(missing_ok=True)

    def _upload_outputs(self, svc: dict, outdir: Path) -> list[tuple[str, str]]:
        done = []
        files = sorted(p for p in outdir.rglob("*") if p.is_file())
        for io in storage_paths(svc, "output"):
            bucket, prefix = _split(io["path"])
            for f in files:
                rel = f.relative_to(outdir).as_posix()
                if not _matches(rel, io.get("prefix") or [], io.get("suffix") or []):
                    continue
                key = f"{prefix}/{rel}" if prefix else rel
                self.s3.fput_object(bucket, key, str(f))
                done.append((bucket, key))
        return done

    # ---------------------------------------------------------------- queries
    def list_jobs(self, svc: str, page: str | None = None) -> dict:
        """One page (70) of ``svc``'s jobs in OSCAR's ``JobsResponse`` shape."""
        recs = sorted(
            self.jobs.get(svc, {}).values(), key=lambda r: (r["creation_time"], r["name"])
        )
        start = 0
        if page:
            try:
                ct_s, name = base64.urlsafe_b64decode(page.encode()).decode().split("|", 1)
                after = (float(ct_s), name)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationError(f"invalid page token {page!r}") from None
            while (
                start < len(recs) and (recs[start]["creation_time"], recs[start]["name"]) <= after
            ):
                start += 1
        chunk = recs[start : start + PAGE_SIZE]
        remaining = len(recs) - start - len(chunk)
        out: dict[str, Any] = {"jobs": {r["name"]: job_info(r) for r in chunk}}
        if remaining > 0 and chunk:
            last = chunk[-1]
            token = f"{last['creation_time']!r}|{last['name']}".encode()
            out["next_page"] = base64.urlsafe_b64encode(token).decode()
        out["remaining_jobs"] = max(0, remaining)
        return out

    def get(self, svc: str, job: str) -> dict:
        rec = self.jobs.get(svc, {}).get(job)
        if rec is None:
            raise NotFoundError(f"job {job!r} of service {svc!r} not found")
        return rec

    def read_log(self, svc: str, job: str) -> str:
        rec = self.get(svc, job)
        try:
            return self._log_path(rec).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def delete_job(self, svc: str, job: str) -> None:
        rec = self.get(svc, job)
        self._forget(rec)

    def delete_jobs(self, svc: str, all_jobs: bool = False) -> int:
        """Delete Succeeded jobs (all jobs with ``all_jobs``); returns how many."""
        recs = list(self.jobs.get(svc, {}).values())
        n = 0
        for rec in recs:
            if all_jobs or rec["status"] == "Succeeded":
                self._forget(rec)
                n += 1
        return n

    def _forget(self, rec: dict) -> None:
        self.jobs.get(rec["service"], {}).pop(rec["name"], None)
        proc = self.procs.pop(rec["name"], None)
        if proc is not None:
            _kill_group(proc)
        d = self._svc_dir(rec["service"])
        for suffix in (".json", ".log", ".input"):
            (d / f"{rec['name']}{suffix}").unlink(missing_ok=True)

    def forget_service(self, svc: str) -> None:
        """Drop every job, log and processed-object record of a deleted service."""
        for rec in list(self.jobs.get(svc, {}).values()):
            self._forget(rec)
        self.jobs.pop(svc, None)
        self.seen.pop(svc, None)
        (self.watch_dir / f"{svc}.jsonl").unlink(missing_ok=True)
        shutil.rmtree(self.jobs_dir / svc, ignore_errors=True)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for jobs in self.jobs.values():
            for rec in jobs.values():
                out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out


def job_info(rec: dict) -> dict:
    """A job record in OSCAR's ``JobInfo`` shape (unset times omitted)."""
    info = {"status": rec["status"], "creation_time": rfc3339(rec["creation_time"])}
    for key in ("start_time", "finish_time"):
        if rec.get(key) is not None:
            info[key] = rfc3339(rec[key])
    return info


def _minio_event(rec: dict) -> str:
    """A MinIO ``s3:ObjectCreated:Put`` notification for a bucket job, as OSCAR gets it."""
    from urllib.parse import quote

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(
        {
            "EventName": "s3:ObjectCreated:Put",
            "Key": f"{rec['bucket']}/{rec['key']}",
            "Records": [
                {
                    "eventVersion": "2.0",
                    "eventSource": "minio:s3",
                    "awsRegion": "",
                    "eventTime": now,
                    "eventName": "s3:ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": rec["bucket"], "arn": f"arn:aws:s3:::{rec['bucket']}"},
                        "object": {
                            "key": quote(rec["key"]),
                            "size": rec.get("size", 0),
                            "eTag": rec.get("etag", ""),
                        },
                    },
                }
            ],
        }
    )


def _small_text(path: Path, limit: int = 64 * 1024) -> str | None:
    """The body as ``EVENT`` when it is small UTF-8 text (env vars can't hold big data)."""
    try:
        if path.stat().st_size > limit:
            return None
        text = path.read_bytes().decode("utf-8")
        return None if "\x00" in text else text
    except (OSError, UnicodeDecodeError):
        return None
