"""Async job records of the embedded cluster, on disk and in memory.

- ``<data>/jobs/<svc>/<job>.json``: a job record (``name``, ``uuid``, ``service``,
  ``status``, ``creation_time``, ``start_time``, ``finish_time``, ``source`` and, for
  bucket jobs, ``bucket``, ``key``, ``size``, ``etag``, ``identity``; for ``POST /job``
  jobs, ``input_name``; while it runs, ``pgid`` and ``workspace``: its script's process
  group and temp dir; once finished, ``outputs``: the ``bucket/key`` of every upload),
  written atomically at every change;
- ``<data>/jobs/<svc>/<job>.log``: the job's log; ``<job>.input``: the decoded body of a
  ``POST /job`` job until the job has finished;
- ``<data>/watch/<svc>.jsonl``: the identities (``bucket/key@etag``) of the input objects
  already processed, one JSON string a line, appended to.

Queries answer in OSCAR's shapes (``JobInfo``, the paginated ``JobsResponse``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.errors import NotFoundError, ValidationError

__all__ = ["PAGE_SIZE", "JobRecords", "job_info", "rfc3339"]

log = logging.getLogger(__name__)

PAGE_SIZE = 70
UNFINISHED = ("Pending", "Running")
FINISHED = ("Succeeded", "Failed")


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds -> ``2006-01-02T15:04:05Z`` (the format Kubernetes/OSCAR use)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_info(rec: dict) -> dict:
    """A job record in OSCAR's ``JobInfo`` shape (unset times omitted)."""
    info = {"status": rec["status"], "creation_time": rfc3339(rec["creation_time"])}
    for key in ("start_time", "finish_time"):
        if rec.get(key) is not None:
            info[key] = rfc3339(rec[key])
    return info


def _read_record(path: Path) -> dict | None:
    """A job record file, or None when it is damaged (not JSON, not a record)."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
    if not (
        isinstance(rec, dict)
        and all(isinstance(rec.get(k), str) for k in ("name", "service"))
        and rec.get("status") in UNFINISHED + FINISHED
        and isinstance(rec.get("creation_time"), (int, float))
    ):
        return None
    return rec


def _order(rec: dict) -> tuple[float, str]:
    return rec["creation_time"], rec["name"]


class JobRecords:
    """Job records and processed-object records under ``data_dir`` (one event loop thread).

    ``jobs`` maps service -> job name -> record; ``seen`` maps service -> identities of
    processed input objects.
    """

    def __init__(self, data_dir: Path) -> None:
        self.jobs_dir = Path(data_dir) / "jobs"
        self.watch_dir = Path(data_dir) / "watch"
        for d in (self.jobs_dir, self.watch_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, dict[str, dict]] = {}
        self.seen: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- loading
    def load(self) -> list[dict]:
        """Read every record; returns the unfinished (Pending, Running) jobs, oldest first.

        The caller decides what becomes of each (:meth:`requeue`, or adopt a running one).
        """
        pending = []
        for svc_dir in sorted(self.jobs_dir.iterdir()):
            if not svc_dir.is_dir():
                continue
            for path in svc_dir.glob("*.json"):
                rec = _read_record(path)
                if rec is None:
                    log.warning("skipped a damaged job record: %s", path)
                    continue
                self.jobs.setdefault(rec["service"], {})[rec["name"]] = rec
                if rec.get("identity"):
                    self.seen.setdefault(rec["service"], set()).add(rec["identity"])
                if rec["status"] in UNFINISHED:
                    pending.append(rec)
        for path in self.watch_dir.glob("*.jsonl"):
            seen = self.seen.setdefault(path.stem, set())
            data = path.read_bytes()
            for line in data.decode("utf-8", "replace").splitlines():
                line = line.strip()
                if not line:
                    continue
                try:
                    identity = json.loads(line)
                except ValueError:
                    identity = None
                if isinstance(identity, str):
                    seen.add(identity)
                else:
                    log.warning("skipped a damaged line of %s", path)
            if data and not data.endswith(b"\n"):  # a torn last line: later lines start anew
                with open(path, "ab") as fh:
                    fh.write(b"\n")
        pending.sort(key=_order)
        return pending

    def requeue(self, rec: dict, note: str = "") -> None:
        """Save ``rec`` as Pending again (to run from the start); its log starts anew, with
        ``note``."""
        rec["status"] = "Pending"
        for key in ("start_time", "pgid", "workspace"):
            rec.pop(key, None)
        self.log_path(rec).write_text(note, encoding="utf-8")
        self.save(rec)

    # ---------------------------------------------------------------- writing
    def _svc_dir(self, svc: str) -> Path:
        d = self.jobs_dir / svc
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _path(self, rec: dict, suffix: str) -> Path:
        return self._svc_dir(rec["service"]) / f"{rec['name']}{suffix}"

    def save(self, rec: dict) -> None:
        write_json_atomic(self._path(rec, ".json"), rec, mode=0o600, fsync=False)

    def new(self, svc: str, **fields: Any) -> dict:
        """Record (and save) a new Pending job of ``svc``."""
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
        self.save(rec)
        return rec

    def is_current(self, rec: dict) -> bool:
        """False once ``rec`` was deleted."""
        return self.jobs.get(rec["service"], {}).get(rec["name"]) is rec

    def set_status(self, rec: dict, status: str) -> None:
        """Save ``rec`` as Running (with a start time) or finished (with a finish time)."""
        rec["status"] = status
        rec["start_time" if status == "Running" else "finish_time"] = time.time()
        self.save(rec)

    def input_path(self, rec: dict) -> Path:
        """Where the decoded body of a ``POST /job`` job is kept until it has finished."""
        return self._path(rec, ".input")

    def log_path(self, rec: dict) -> Path:
        return self._path(rec, ".log")

    def append_log(self, rec: dict, text: str) -> None:
        with open(self.log_path(rec), "a", encoding="utf-8") as fh:
            fh.write(text)

    def is_seen(self, svc: str, identity: str) -> bool:
        return identity in self.seen.get(svc, ())

    def mark_seen(self, svc: str, identities: list[str]) -> None:
        """Record input objects as processed (appended to ``watch/<svc>.jsonl``)."""
        if not identities:
            return
        self.seen.setdefault(svc, set()).update(identities)
        data = "".join(json.dumps(i) + "\n" for i in identities).encode()
        fd = os.open(self.watch_dir / f"{svc}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def forget(self, rec: dict) -> None:
        """Delete a job's record, log and input."""
        self.jobs.get(rec["service"], {}).pop(rec["name"], None)
        for suffix in (".json", ".log", ".input"):
            self._path(rec, suffix).unlink(missing_ok=True)

    def forget_service(self, svc: str) -> None:
        """Delete every job, log and processed-object record of ``svc``."""
        for rec in list(self.jobs.get(svc, {}).values()):
            self.forget(rec)
        self.jobs.pop(svc, None)
        self.seen.pop(svc, None)
        (self.watch_dir / f"{svc}.jsonl").unlink(missing_ok=True)
        shutil.rmtree(self.jobs_dir / svc, ignore_errors=True)

    # ---------------------------------------------------------------- queries
    def get(self, svc: str, job: str) -> dict:
        rec = self.jobs.get(svc, {}).get(job)
        if rec is None:
            raise NotFoundError(f"job {job!r} of service {svc!r} not found")
        return rec

    def of_service(self, svc: str) -> list[dict]:
        """``svc``'s job records, oldest first."""
        return sorted(self.jobs.get(svc, {}).values(), key=_order)

    def read_log(self, svc: str, job: str) -> str:
        try:
            return self.log_path(self.get(svc, job)).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def page(self, svc: str, token: str | None = None) -> dict:
        """One page (70) of ``svc``'s jobs in OSCAR's ``JobsResponse`` shape."""
        recs = self.of_service(svc)
        start = 0
        if token:
            try:
                ct_s, name = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
                after = (float(ct_s), name)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationError(f"invalid page token {token!r}") from None
            while start < len(recs) and _order(recs[start]) <= after:
                start += 1
        chunk = recs[start : start + PAGE_SIZE]
        remaining = len(recs) - start - len(chunk)
        out: dict[str, Any] = {"jobs": {r["name"]: job_info(r) for r in chunk}}
        if remaining > 0 and chunk:
            last = chunk[-1]
            next_token = f"{last['creation_time']!r}|{last['name']}".encode()
            out["next_page"] = base64.urlsafe_b64encode(next_token).decode()
        out["remaining_jobs"] = max(0, remaining)
        return out

    def counts(self) -> dict[str, int]:
        """How many jobs there are in each status."""
        out: dict[str, int] = {}
        for jobs in self.jobs.values():
            for rec in jobs.values():
                out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out
