"""Storage events of the embedded cluster: SeaweedFS's own metadata event stream.

OSCAR is told about new objects by MinIO's bucket notifications; the embedded cluster
subscribes to the filer's metadata events (its ``SubscribeMetadata`` gRPC stream) through
one ``weed filer.meta.tail -pathPrefix=/buckets/`` child per cluster. That child dials the
filer with the cluster's client certificate (it reads the same ``security.toml`` as
``weed mini``, see :mod:`~oscar_elyra.local.weed`) and prints each event as an indented
JSON ``SubscribeMetadataResponse``, about 2 ms after the write; it starts from a time
given as a duration before now, replaying the filer's persisted metadata log. So the cost
of an event does not depend on how many objects a bucket holds.

- :func:`object_created`: the object an event created or replaced (a new upload, an
  overwrite, a completed multipart upload, a rename's target), with its size and ETag
  (the one S3 lists); None for directories, deletes, multipart parts (``.uploads/``) and
  anything outside a bucket.
- :class:`Position`: ``<data>/watch/position.json``, where the stream resumes.
- :class:`EventStream`: runs the child, parses its output, restarts it when it ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.local.weed import SeaweedFS

__all__ = [
    "BUCKETS_DIR",
    "EventStream",
    "ObjectCreated",
    "Position",
    "bucket_created",
    "event_ts",
    "object_created",
]

log = logging.getLogger("oscar_elyra.local")

#: where the filer keeps S3 buckets (``/buckets/<bucket>/<key>``)
BUCKETS_DIR = "/buckets"
#: the folder under a bucket holding multipart uploads in progress (their parts)
UPLOADS_DIR = ".uploads"
#: the filer's extended attribute holding an object's S3 ETag
ETAG_ATTRIBUTE = "Seaweed-X-Amz-ETag"
#: seconds replayed before the position when a stream starts: events reach the stream
#: slightly out of ``tsNs`` order, and the child turns a duration into its start time when
#: it runs, later than when the duration was computed (the caller skips what it processed)
REPLAY_MARGIN = float(os.environ.get("OSCAR_ELYRA_EVENT_REPLAY", "60"))
#: a document larger than this (an entry with a huge chunk list) ends the stream
MAX_DOCUMENT = 64 * 1024 * 1024
#: seconds before restarting a stream that ended; doubled while it keeps ending quickly
RESTART_DELAY, MAX_RESTART_DELAY = 0.1, 5.0
#: a stream that ran this long (s) before ending restarts after ``RESTART_DELAY`` again
STABLE_RUN = 10.0
#: end of one document on the child's stdout: its closing brace, alone on a line
_DOC_END = b"\n}\n"


class ObjectCreated(NamedTuple):
    """An object written by an event: epoch ns of the event, where, how big, its ETag."""

    ts_ns: int
    bucket: str
    key: str
    size: int
    etag: str


def event_ts(doc: dict) -> int:
    """The event's ``tsNs`` (epoch ns; 0 when missing)."""
    try:
        return int(doc.get("tsNs") or 0)
    except (TypeError, ValueError):
        return 0


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        return b""


def _etag(entry: dict) -> str:
    """The ETag S3 shows for ``entry``: SeaweedFS's ``getEtagFromEntry`` (the stored S3
    ETag, else the content's MD5, else derived from the chunks' MD5s as multipart ETags)."""
    stored = _b64((entry.get("extended") or {}).get(ETAG_ATTRIBUTE)).decode("utf-8", "replace")
    if stored.strip('"'):
        return stored.strip('"')
    md5 = _b64((entry.get("attributes") or {}).get("md5"))
    if md5:
        return md5.hex()
    digests = [_b64(c.get("eTag")) for c in entry.get("chunks") or []]
    if len(digests) == 1:
        return digests[0].hex()
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"  # noqa: S324


def object_created(doc: dict) -> ObjectCreated | None:
    """The object ``doc`` (one metadata event) created or replaced, None if none."""
    note = doc.get("eventNotification") or {}
    entry = note.get("newEntry")
    if not isinstance(entry, dict) or entry.get("isDirectory") or not entry.get("name"):
        return None  # a delete, a directory
    parent = note.get("newParentPath") or doc.get("directory") or ""
    if not parent.startswith(BUCKETS_DIR + "/"):
        return None
    bucket, _, folder = parent[len(BUCKETS_DIR) + 1 :].partition("/")
    key = f"{folder}/{entry['name']}" if folder else entry["name"]
    if not bucket or key.split("/", 1)[0] == UPLOADS_DIR:
        return None  # the buckets folder itself, multipart parts in progress
    try:
        size = int((entry.get("attributes") or {}).get("fileSize") or 0)
    except (TypeError, ValueError):
        size = 0
    return ObjectCreated(event_ts(doc), bucket, key, size, _etag(entry))


def bucket_created(doc: dict) -> str | None:
    """The bucket ``doc`` (one metadata event) created, None if none."""
    note = doc.get("eventNotification") or {}
    entry = note.get("newEntry")
    if not isinstance(entry, dict) or not entry.get("isDirectory") or note.get("oldEntry"):
        return None
    parent = note.get("newParentPath") or doc.get("directory") or ""
    return (entry.get("name") or None) if parent == BUCKETS_DIR else None


class Position:
    """Where the event stream resumes, in ``path`` (``<data>/watch/position.json``):

    - ``ts_ns``: the ``tsNs`` of the last event processed (epoch ns);
    - ``clean``: whether the run that wrote it stopped cleanly (SeaweedFS flushed its
      metadata log, so every later event will be replayed); False while a cluster runs;
    - ``since``: service -> input path -> epoch ns from which its events count (the time
      of its baseline: objects already there when a path was added make no job).

    Written atomically (:func:`~oscar_elyra._paths.write_json_atomic`); thread-safe.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.ts_ns = 0
        self.clean = False
        self.since: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.ts_ns = int(data["ts_ns"])
            self.clean = data.get("clean") is True
            self.since = {
                str(svc): {str(p): int(ns) for p, ns in paths.items()}
                for svc, paths in (data.get("since") or {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # none yet (or unreadable): a first start

    def save(self, clean: bool = False) -> None:
        with self._lock:
            self.clean = clean
            data = {"ts_ns": self.ts_ns, "clean": clean, "since": self.since}
            write_json_atomic(self.path, data, mode=0o600, fsync=clean)

    def since_of(self, svc: str, path: str) -> int | None:
        """Epoch ns from which events of ``svc``'s input ``path`` count (None: not yet)."""
        return self.since.get(svc, {}).get(path)

    def set_since(self, svc: str, paths: list[str], ns: int, *, keep: bool = False) -> None:
        """Events of ``paths`` count from ``ns`` on (``keep``: only for paths without one)."""
        with self._lock:
            old = self.since.get(svc, {})
            new = {p: old[p] if keep and p in old else ns for p in paths}
            self.since[svc] = {**old, **new}

    def forget(self, svc: str) -> None:
        with self._lock:
            self.since.pop(svc, None)


class EventStream:
    """The filer's metadata events under ``/buckets/``, from a ``weed filer.meta.tail``
    child of ``weed`` (its stderr appended to ``log_path``)."""

    def __init__(self, weed: SeaweedFS, log_path: Path) -> None:
        self.weed = weed
        self.log_path = Path(log_path)

    async def follow(self, resume: Callable[[], int], handle: Callable[[dict], None]) -> None:
        """Call ``handle(doc)`` for each event from ``resume()`` (epoch ns) on, until
        cancelled; when the child ends, log a warning and start it again from ``resume()``."""
        delay = RESTART_DELAY
        while True:
            started = time.monotonic()
            try:
                reason = await self._run(resume(), handle)
            except Exception as exc:  # an event not handled (say, a full disk): again later
                reason = f"{type(exc).__name__}: {exc}"
            delay = RESTART_DELAY if time.monotonic() - started > STABLE_RUN else delay
            log.warning(
                "the storage event stream ended (%s); restarting it in %.1f s from the "
                "last processed event",
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _run(self, since_ns: int, handle: Callable[[dict], None]) -> str:
        """Run one child from ``since_ns``; returns why it ended."""
        margin = int(REPLAY_MARGIN * 1e9)
        args = self.weed.meta_tail_args(BUCKETS_DIR + "/", since_ns - margin)
        with open(self.log_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=self.weed.child_env(),
                cwd=self.weed.data_dir,
            )  # in the server's process group, with its umask; it ends when the filer goes
        assert proc.stdout is not None
        buf = bytearray()
        try:
            while True:
                chunk = await proc.stdout.read(1 << 16)
                if not chunk:
                    break
                start = len(buf)
                buf += chunk
                done = 0
                end = buf.find(_DOC_END, max(0, start - len(_DOC_END)))
                while end >= 0:
                    _handle_document(bytes(buf[done : end + 2]), handle)
                    done = end + len(_DOC_END)
                    end = buf.find(_DOC_END, done)
                del buf[:done]
                if len(buf) > MAX_DOCUMENT:
                    return f"an event of more than {MAX_DOCUMENT} bytes"
            rest = buf.decode("utf-8", "replace").strip()
            code = await proc.wait()
            return f"exit code {code}" + (f": {rest[-300:]}" if rest else "")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _handle_document(text: bytes, handle: Callable[[dict], None]) -> None:
    start = text.find(b"{")
    if text[: max(start, 0)].strip():  # a line the child printed outside any event
        log.warning("storage event stream: %s", text[:start].decode("utf-8", "replace")[:300])
    try:
        doc = json.loads(text[max(start, 0) :])
    except ValueError:
        log.warning("storage event stream: an event that is not JSON was skipped")
        return
    if isinstance(doc, dict):
        handle(doc)
