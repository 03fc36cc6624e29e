"""The embedded cluster's OSCAR REST API: tornado handlers over the services, jobs and runner.

``/system/*`` takes Basic auth with the cluster's user; ``/run/{svc}`` and ``/job/{svc}``
take only the service's own token (``Authorization: Bearer``). Every handler streams its
body (``@stream_request_body``), so credentials are checked on the headers alone, before
any byte of the body is read: an unauthenticated body is never buffered. Then each route
bounds its body: the ``/system/*`` JSON routes to :data:`JSON_BODY_MAX` (413 above it;
JSON nested deeper than :data:`~oscar_elyra._paths.MAX_DEPTH` is a 400), ``/run`` and
``/job`` stream theirs to disk. An unknown service on ``/run`` or ``/job`` answers 401,
like a wrong token: no service names are learnt without credentials. Errors answer with
one line of plain text.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import platform
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import tornado.web

from oscar_elyra import __version__
from oscar_elyra._paths import MAX_DEPTH, nesting_depth
from oscar_elyra.config import parse_bool
from oscar_elyra.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    OscarError,
    ValidationError,
)
from oscar_elyra.local import buckets
from oscar_elyra.local.events import EventStream
from oscar_elyra.local.jobs import DEFAULT_JOB_TIMEOUT, JobManager
from oscar_elyra.local.procs import kill_group
from oscar_elyra.local.records import JobRecords, rfc3339
from oscar_elyra.local.runner import TIMED_OUT, Runner, decode_body, event_file_name
from oscar_elyra.local.services import (
    ServiceStore,
    as_oscar_returns,
    split_path,
    storage_paths,
    validated,
)
from oscar_elyra.local.weed import SeaweedFS
from oscar_elyra.redact import register_secret

__all__ = ["JSON_BODY_MAX", "MAX_BODY", "SYNC_TIMEOUT", "Runtime", "make_app"]

log = logging.getLogger("oscar_elyra.local")

SYNC_TIMEOUT = 300.0
#: characters of a failed sync script's output in the 500 answer (the tail)
FAILURE_TAIL = 2000
MAX_BODY = 64 * 1024**3
#: largest body of the ``/system/*`` JSON routes (a Service JSON with its script)
JSON_BODY_MAX = 4 * 1024**2
B64_CHUNK = 3 * (1 << 16)


class Runtime:
    """Everything the handlers share: credentials, S3, services, job records, runner, jobs.

    Registers the service tokens with :func:`~oscar_elyra.redact.register_secret` so the
    server's logs never show them.
    """

    def __init__(
        self,
        data_dir: Path,
        creds: dict,
        weed: SeaweedFS,
        max_jobs: int,
        *,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        compat: str = "embedded",
    ) -> None:
        self.data_dir = data_dir
        self.creds = creds
        self.weed = weed
        self.max_jobs = max_jobs
        self.job_timeout = job_timeout
        self.compat = compat
        self.s3 = weed.minio()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="oscar-io")
        self.services = ServiceStore(data_dir)
        for svc in self.services.list():
            register_secret(svc.get("token"))
        self.records = JobRecords(data_dir)
        self.runner = Runner(data_dir / "tmp", data_dir / "cache", self.s3, self.executor)
        self.jobs = JobManager(
            self.records,
            self.services,
            self.runner,
            self.s3,
            max_jobs,
            EventStream(weed, weed.log_path),
            job_timeout=job_timeout,
            compat=compat,
        )

    def ensure_buckets(self, svc: dict) -> None:
        """Create the buckets of ``svc``'s input and output paths that do not exist yet.

        A bucket created here is tagged as OSCAR tags a service's buckets (``owner``,
        ``owner_name``, ``from_service``), which keeps ``PUT /system/buckets`` off it.
        """
        for field in ("input", "output"):
            for io in storage_paths(svc, field):
                bucket = split_path(io["path"])[0]
                if not self.s3.bucket_exists(bucket):
                    try:
                        buckets.create_bucket(self.s3, bucket, tags={"from_service": svc["name"]})
                    except Exception as exc:  # created concurrently
                        if not self.s3.bucket_exists(bucket):
                            raise OscarError(f"cannot create bucket {bucket!r}: {exc}") from None

    def minio_provider(self) -> dict:
        """The cluster's MinIO as ``/system/config`` shows it (with the keys)."""
        return {
            "endpoint": self.weed.endpoint,
            "verify": False,
            "access_key": self.creds["s3_access_key"],
            "secret_key": self.creds["s3_secret_key"],
            "region": "us-east-1",
        }

    def service_view(self, svc: dict) -> dict:
        """``svc`` as OSCAR returns it (:func:`~oscar_elyra.local.services.as_oscar_returns`)."""
        return as_oscar_returns(svc, self.minio_provider())


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log line without the query string (it may carry tokens)."""
    status = handler.get_status()
    req = handler.request
    level = logging.INFO if status < 400 else logging.WARNING
    logging.getLogger("tornado.access").log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        req.method,
        req.path,
        req.remote_ip,
        1000.0 * req.request_time(),
    )


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Authenticates in :meth:`prepare`, on the headers, before the body is read.

    ``auth``: ``"basic"`` (the cluster user, every ``/system/*`` route) or None (anyone);
    ``body_max``: the largest body accepted (kept in memory).
    """

    auth: str | None = "basic"
    body_max = JSON_BODY_MAX
    _authorized = False

    @property
    def rt(self) -> Runtime:
        return self.application.settings["rt"]

    def prepare(self) -> None:
        if self.auth == "basic":
            self.check_basic()
        self.limit_body(self.body_max)
        self._body = bytearray()

    def limit_body(self, limit: int) -> None:
        """413 for a declared ``Content-Length`` over ``limit``; tornado stops a longer body."""
        declared = self.request.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            self.fail(413, f"request body too large: at most {limit} bytes on this route")
        self.request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")

    def fail(self, status: int, message: str) -> None:
        """Answer ``status`` with a one-line plain-text ``message`` and stop."""
        self.clear()
        self.set_status(status)
        if status == 401:
            self.set_header("WWW-Authenticate", 'Basic realm="oscar"')
        self.finish(message + "\n")
        raise tornado.web.Finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{self._reason}\n")

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def json_body(self) -> Any:
        try:
            doc = json.loads(bytes(self._body))
        except (ValueError, UnicodeDecodeError):
            self.fail(400, "request body is not valid JSON; send an OSCAR Service JSON object")
        except RecursionError:
            doc = None
        if doc is None or nesting_depth(doc) > MAX_DEPTH:
            self.fail(400, f"request body is nested more than {MAX_DEPTH} levels deep")
        return doc

    def check_basic(self) -> None:
        if self._authorized:
            return
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        ok = False
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
                ok = hmac.compare_digest(
                    user.encode(), self.rt.creds["user"].encode()
                ) & hmac.compare_digest(password.encode(), self.rt.creds["password"].encode())
            except (binascii.Error, UnicodeDecodeError, ValueError):
                ok = False
        if not ok:
            self.fail(401, "unauthorized: use Basic auth with the cluster user and password")
        self._authorized = True

    def check_token(self, svc: dict) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            self.fail(401, "unauthorized: use 'Authorization: Bearer <service token>'")
        if not hmac.compare_digest(value.strip().encode(), svc["token"].encode()):
            self.fail(401, "unauthorized: invalid service token")

    def service(self, name: str) -> dict:
        try:
            return self.rt.services.get(name)
        except NotFoundError:
            self.fail(404, f"service {name!r} not found")

    def service_body(self) -> dict:
        """The request's Service JSON, validated (400 when it is not valid)."""
        try:
            return validated(self.json_body())
        except ValidationError as exc:
            self.fail(400, f"invalid service: {exc}")

    def run_io(self, fn, *args):
        return self.rt.runner.io(fn, *args)


class HealthHandler(BaseHandler):
    auth = None

    def get(self) -> None:
        self.finish("Ok")


class InfoHandler(BaseHandler):
    def get(self) -> None:
        self.check_basic()
        self.send_json(
            {
                "version": f"embedded-{__version__}",
                "git_commit": "",
                "architecture": platform.machine(),
                "kubernetes_version": "",
                "serverless_backend": {"name": "oscar-elyra-embedded", "version": __version__},
            }
        )


class ConfigHandler(BaseHandler):
    def get(self) -> None:
        self.check_basic()
        self.send_json(
            {
                "config": {
                    "controller_service_account": "oscar-sa",
                    "name": "oscar",
                    "namespace": "oscar",
                    "services_namespace": "oscar-svc",
                    "serverless_backend": "",
                    "gpu_available": False,
                    "interLink_available": False,
                    "yunikorn_enable": False,
                    "kueue_enable": False,
                    "volume_enable": False,
                    "minio_quota_enabled": False,
                    "oidc_groups": [],
                },
                "minio_provider": self.rt.minio_provider(),
                "allowed_image_repositories": [],
            }
        )


class StatusHandler(BaseHandler):
    async def get(self) -> None:
        self.check_basic()

        def minio_counts() -> tuple[int, int]:
            buckets = self.rt.s3.list_buckets()
            total = 0
            for b in buckets:
                total += sum(1 for _ in self.rt.s3.list_objects(b.name, recursive=True))
            return len(buckets), total

        try:
            n_buckets, n_objects = await self.run_io(minio_counts)
        except Exception:
            n_buckets, n_objects = 0, 0
        cores = os.cpu_count() or 1
        try:
            pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            free = os.sysconf("SC_AVPHYS_PAGES") * page_size
            mem = pages * page_size
        except (ValueError, OSError):
            mem = free = 0
        counts = self.rt.records.counts()
        self.send_json(
            {
                "cluster": {
                    "nodes_count": 1,
                    "metrics": {
                        "cpu": {
                            "total_free_cores": cores,
                            "max_free_on_node_cores": cores,
                            "total_schedulable_cores": cores,
                            "total_schedulable_on_node_cores": cores,
                        },
                        "memory": {
                            "total_free_bytes": free,
                            "max_free_on_node_bytes": free,
                            "total_schedulable_bytes": mem,
                            "max_schedulable_on_node_bytes": mem,
                        },
                        "gpu": {"total_gpu": 0},
                    },
                    "nodes": [
                        {
                            "name": platform.node() or "localhost",
                            "status": "Ready",
                            "gpu": 0,
                            "is_interlink": False,
                            "cpu": {"capacity_cores": cores},
                            "memory": {"capacity_bytes": mem},
                        }
                    ],
                },
                "oscar": {
                    "ready": True,
                    "deployment_name": "oscar-elyra-embedded",
                    "jobs_count": sum(counts.values()),
                    "pods": {"total": counts.get("Running", 0), "states": counts},
                },
                "minio": {"buckets_count": n_buckets, "total_objects": n_objects},
            }
        )


class IdleHandler(BaseHandler):
    """``GET /oscar-elyra/idle[?service=NAME]``: ``{"idle": bool}`` (not an OSCAR call): true
    once every input event up to now is taken in and no job is Pending or Running."""

    async def get(self) -> None:
        self.check_basic()
        service = self.get_query_argument("service", None)
        if service is not None:
            self.service(service)
        self.send_json({"idle": await self.rt.jobs.idle(service)})


class ServicesHandler(BaseHandler):
    def get(self) -> None:
        self.check_basic()
        self.send_json([self.rt.service_view(s) for s in self.rt.services.list()])

    async def post(self) -> None:
        self.check_basic()
        svc = self.service_body()
        if self.rt.services.exists(svc["name"]):
            self.fail(409, f"a service named {svc['name']!r} already exists; use PUT to update")
        await self.run_io(self.rt.ensure_buckets, svc)
        try:
            created = self.rt.services.create(svc)
        except ConflictError as exc:
            self.fail(409, str(exc))
        register_secret(created["token"])
        # after the service exists: an object written once the baseline started makes a job
        await self.run_io(self.rt.jobs.baseline, created)
        log.info("service %s created", svc["name"])
        self.set_status(201)
        self.finish("")

    async def put(self) -> None:
        self.check_basic()
        svc = self.service_body()
        try:
            old = self.rt.services.get(svc["name"])
        except NotFoundError:
            self.fail(404, f"service {svc['name']!r} not found; use POST to create it")
        await self.run_io(self.rt.ensure_buckets, svc)
        old_paths = {io["path"] for io in storage_paths(old, "input")}
        new_paths = [
            io["path"] for io in storage_paths(svc, "input") if io["path"] not in old_paths
        ]
        try:
            _, updated = self.rt.services.update(svc)
        except NotFoundError:
            self.fail(404, f"service {svc['name']!r} not found; use POST to create it")
        if new_paths:
            await self.run_io(self.rt.jobs.baseline, updated, new_paths)
        log.info("service %s updated", svc["name"])
        self.set_status(204)
        self.finish()


class ServiceHandler(BaseHandler):
    def get(self, name: str) -> None:
        self.check_basic()
        svc = self.rt.service_view(self.service(name))
        if "deployment" in self.get_query_argument("include", "").split(","):
            status = deployment_status(self.rt, svc)
            svc["deployment"] = {k: v for k, v in status.items() if k not in _NOT_IN_SUMMARY}
        self.send_json(svc)

    def delete(self, name: str) -> None:
        self.check_basic()
        try:
            self.rt.services.delete(name)
        except NotFoundError:
            self.fail(404, f"service {name!r} not found")
        self.rt.jobs.forget_service(name)
        log.info("service %s deleted", name)
        self.set_status(204)
        self.finish()


class LogsHandler(BaseHandler):
    def get(self, name: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            self.send_json(self.rt.records.page(name, self.get_query_argument("page", None)))
        except ValidationError as exc:
            self.fail(400, str(exc))

    def delete(self, name: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            all_jobs = parse_bool(self.get_query_argument("all", "false"), "all")
        except ConfigError:
            all_jobs = False  # as OSCAR: an unreadable flag means false
        self.rt.jobs.delete_jobs(name, all_jobs=all_jobs)
        self.set_status(204)
        self.finish()


class JobLogHandler(BaseHandler):
    def get(self, name: str, job: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            text = self.rt.records.read_log(name, job)
        except NotFoundError:
            self.fail(404, f"job {job!r} of service {name!r} not found")
        self.finish(text)

    def delete(self, name: str, job: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            self.rt.jobs.delete_job(name, job)
        except NotFoundError:
            self.fail(404, f"job {job!r} of service {name!r} not found")
        self.set_status(204)
        self.finish()


class _StreamedBody(BaseHandler):
    """Checks the service token before the body arrives, then streams the body to a file.

    Without a valid token the answer is 401 whether the service exists or not.
    """

    auth = "token"
    body_path: Path | None = None
    _fh = None

    def prepare(self) -> None:
        name = self.path_kwargs.get("name") or self.path_args[0]
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            self.fail(401, "unauthorized: use 'Authorization: Bearer <service token>'")
        try:
            self.svc = self.rt.services.get(name)
        except NotFoundError:
            self.fail(401, "unauthorized: invalid service token")
        self.check_token(self.svc)
        self.limit_body(MAX_BODY)
        self.body_path = self.rt.runner.temp_file("body-")
        self._fh = open(self.body_path, "wb")

    def data_received(self, chunk: bytes) -> None:
        self._fh.write(chunk)

    def _close_body(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def on_finish(self) -> None:
        self._close_body()
        if self.body_path is not None:
            self.body_path.unlink(missing_ok=True)

    def on_connection_close(self) -> None:
        self.on_finish()


@tornado.web.stream_request_body
class RunHandler(_StreamedBody):
    """Sync ``/run``: the body is the input; the answer is the output (see the runner).

    A script that exits non-zero gets HTTP 500 with the tail of its output (stderr, else
    stdout) and an ``X-Oscar-Elyra-Exit-Code`` header, unless the cluster runs with
    ``compat="oscar"`` (OSCAR's supervisor ignores exit codes and answers 200). A client
    that disconnects stops the script (its whole process group).
    """

    _pgid: int | None = None
    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True
        if self._pgid is not None:
            kill_group(self._pgid)
        super().on_connection_close()

    def _started(self, proc) -> None:
        self._pgid = proc.pid
        if self._gone:
            kill_group(proc.pid)

    async def post(self, name: str) -> None:
        self._close_body()
        started = time.monotonic()
        runner = self.rt.runner
        async with runner.workspace(f"run-{name}-") as ws:
            job_uuid = str(uuid.uuid4())
            input_path = ws.input / event_file_name(job_uuid)
            try:
                await self.run_io(decode_body, self.body_path, input_path)
            except ValidationError as exc:
                self.fail(400, str(exc))
            stdout, stderr = ws.root / "stdout", ws.root / "stderr"
            rc = await runner.run(
                self.svc,
                ws,
                input_path,
                job_uuid,
                stdout,
                stderr=stderr,
                timeout=SYNC_TIMEOUT,
                on_start=self._started,
            )
            log.info("run %s rc=%s in %.2fs", name, rc, time.monotonic() - started)
            if self._gone:
                log.info("run %s: the client disconnected; its script was stopped", name)
                return
            if rc == TIMED_OUT:
                self.fail(504, f"service {name!r} did not answer within {SYNC_TIMEOUT:.0f} s")
            if rc != 0 and self.rt.compat != "oscar":
                tail = await self.run_io(_output_tail, stderr, stdout)
                self.clear()
                self.set_status(500)
                self.set_header("X-Oscar-Elyra-Exit-Code", str(rc))
                self.finish(f"service {name!r}: the script exited with code {rc}\n{tail}\n")
                return
            payload, encode = await self.run_io(ws.sync_answer, stdout)
            await self._stream(payload, encode)

    async def _stream(self, path: Path, encode: bool) -> None:
        self.set_status(200)
        with open(path, "rb") as fh:
            while chunk := fh.read(B64_CHUNK):
                self.write(base64.b64encode(chunk) if encode else chunk)
                await self.flush()
        self.finish()


@tornado.web.stream_request_body
class JobHandler(_StreamedBody):
    async def post(self, name: str) -> None:
        self._close_body()
        decoded = self.rt.runner.temp_file("job-input-")
        try:
            await self.run_io(decode_body, self.body_path, decoded)
        except ValidationError as exc:
            decoded.unlink(missing_ok=True)
            self.fail(400, str(exc))
        event = await self.run_io(storage_event, decoded)
        if event is not None:
            # as faas-supervisor: a storage event names the input object, downloaded by the job
            decoded.unlink(missing_ok=True)
            bucket, key, size = event
            rec = self.rt.jobs.submit_object(name, bucket, key, size)
        else:
            rec = self.rt.jobs.submit_body(name, decoded)
        log.info("job %s created by POST /job", rec["name"])
        self.set_status(201)
        self.finish("")


_STORAGE_EVENT_SOURCES = ("minio:s3", "aws:s3")
#: a storage event is a small JSON document; bigger bodies are plain inputs
_EVENT_LIMIT = 1 << 20


def storage_event(path: Path) -> tuple[str, str, int] | None:
    """``(bucket, key, size)`` when the body in ``path`` is a MinIO/S3 storage event.

    As faas-supervisor's ``parse_event``: a delegated event (``{"event": ...}``) is
    unwrapped; ``Records[0].eventSource`` ``minio:s3`` or ``aws:s3`` makes a storage
    event whose object (``s3.bucket.name``, URL-decoded ``s3.object.key``) is the job's
    input. Anything else (or a provider other than the cluster's MinIO) is a plain body.
    """
    try:
        if path.stat().st_size > _EVENT_LIMIT:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
        if str(doc.get("storage_provider") or "default") not in ("default", "minio.default"):
            return None
        doc = doc["event"]
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    rec = records[0]
    if rec.get("eventSource") not in _STORAGE_EVENT_SOURCES:
        return None
    try:
        bucket = str(rec["s3"]["bucket"]["name"])
        key = unquote_plus(str(rec["s3"]["object"]["key"]))
        size = int(rec["s3"]["object"].get("size") or 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not bucket or not key:
        return None
    return bucket, key, size


# ---------------------------------------------------------------------------- buckets
# /system/buckets: OSCAR v4 bucket API over SeaweedFS (see oscar_elyra.local.buckets)


class _BucketBase(BaseHandler):
    async def bucket_call(self, fn, *args):
        """Run ``fn(s3, *args)`` in an I/O thread; map library errors to OSCAR's statuses."""
        try:
            return await self.run_io(fn, self.rt.s3, *args)
        except ValidationError as exc:
            self.fail(400, str(exc))
        except NotFoundError as exc:
            self.fail(404, str(exc))
        except ConflictError as exc:
            self.fail(400, f"{exc}; choose another name")  # OSCAR answers 400 here
        except PermissionError as exc:
            self.fail(403, f"Forbidden action: {exc}")

    def bucket_body(self) -> dict:
        body = self.json_body()
        if not isinstance(body, dict):
            self.fail(400, "The Bucket specification is not valid: send a JSON object")
        return body


class BucketsHandler(_BucketBase):
    async def get(self) -> None:
        self.check_basic()
        self.send_json(await self.bucket_call(buckets.list_buckets))

    async def post(self) -> None:
        self.check_basic()
        body = self.bucket_body()
        await self.bucket_call(
            buckets.create_bucket,
            body.get("bucket_name"),
            body.get("visibility"),
            body.get("allowed_users"),
        )
        log.info("bucket %s created", body.get("bucket_name"))
        self.set_status(201)
        self.finish("")

    async def put(self) -> None:
        self.check_basic()
        body = self.bucket_body()
        await self.bucket_call(
            buckets.set_visibility,
            str(body.get("bucket_name") or "").strip(" /"),
            body.get("visibility"),
            body.get("allowed_users"),
        )
        self.set_status(204)
        self.finish()


class BucketHandler(_BucketBase):
    async def get(self, bucket: str) -> None:
        self.check_basic()
        page = self.get_query_argument("page", None)
        self.send_json(await self.bucket_call(buckets.list_page, bucket, page))

    async def delete(self, bucket: str) -> None:
        self.check_basic()
        n = await self.bucket_call(buckets.delete_bucket, bucket)
        log.info("bucket %s deleted with %d objects", bucket, n)
        self.set_status(204)
        self.finish()


class PresignHandler(_BucketBase):
    async def post(self, bucket: str) -> None:
        self.check_basic()
        self.send_json(await self.bucket_call(buckets.presign, bucket, self.json_body()))


# ---------------------------------------------------------------------------- deployment
# /system/services/{name}/deployment[/logs]: the embedded cluster runs no pods; its
# "deployment" is the host's job slots, its logs those of the latest job.

_NOT_IN_SUMMARY = ("service_name", "namespace")
DEPLOYMENT_TAIL = 200


def deployment_status(rt: Runtime, svc: dict) -> dict:
    """OSCAR's ``ServiceDeploymentStatus`` for ``svc`` on the embedded cluster."""
    recs = rt.records.of_service(svc["name"])
    running = sum(1 for r in recs if r["status"] == "Running")
    pending = sum(1 for r in recs if r["status"] == "Pending")
    busy = rt.records.counts().get("Running", 0)
    changed = max(
        [r.get("start_time") or r["creation_time"] for r in recs if r["status"] == "Running"],
        default=None,
    )
    reason = (
        f"{running} running, {pending} pending; {busy} of {rt.max_jobs} job slots of the "
        "host in use (scripts run as host processes; the image is not pulled)"
    )
    out = {
        "service_name": svc["name"],
        "namespace": "oscar-svc",
        "state": "ready",
        "reason": reason,
        "active_instances": running,
        "affected_instances": 0,
        "resource_kind": "embedded_process",
    }
    if changed is not None:
        out["last_transition_time"] = rfc3339(changed)
    return out


class DeploymentHandler(BaseHandler):
    def get(self, name: str) -> None:
        self.check_basic()
        self.send_json(deployment_status(self.rt, self.service(name)))


class DeploymentLogsHandler(BaseHandler):
    def get(self, name: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            stamps = parse_bool(self.get_query_argument("timestamps", "false"), "timestamps")
            tail = int(self.get_query_argument("tailLines", str(DEPLOYMENT_TAIL)))
        except (ConfigError, ValueError):
            self.fail(400, "timestamps must be true/false and tailLines an integer")
        recs = [r for r in self.rt.records.of_service(name) if r["status"] != "Pending"]
        out: dict[str, Any] = {"service_name": name, "available": False, "entries": []}
        if not recs:
            out["message"] = "Deployment logs are not yet available."
            self.send_json(out)
            return
        latest = max(recs, key=lambda r: r.get("start_time") or r["creation_time"])
        lines = self.rt.records.read_log(name, latest["name"]).splitlines()
        if tail > 0:
            lines = lines[-tail:]
        when = rfc3339(latest.get("start_time") or latest["creation_time"])
        out["entries"] = [
            {"message": line, **({"timestamp": when} if stamps else {})} for line in lines
        ]
        out["available"] = bool(lines)
        out["message"] = f"Returning the log of the latest job ({latest['name']})."
        self.send_json(out)


def _output_tail(*paths: Path) -> str:
    """The last :data:`FAILURE_TAIL` characters of the first non-empty file of ``paths``."""
    for path in paths:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - FAILURE_TAIL))
                text = fh.read().decode("utf-8", "replace").strip()
        except OSError:
            continue
        if text:
            return text
    return "(no output)"


def make_app(rt: Runtime) -> tornado.web.Application:
    """The OSCAR REST API over ``rt``."""
    name = r"(?P<name>[^/]+)"
    return tornado.web.Application(
        [
            (r"/health/?", HealthHandler),
            (r"/system/info/?", InfoHandler),
            (r"/system/config/?", ConfigHandler),
            (r"/system/status/?", StatusHandler),
            (r"/system/services/?", ServicesHandler),
            (rf"/system/services/{name}/?", ServiceHandler),
            (rf"/system/services/{name}/deployment/?", DeploymentHandler),
            (rf"/system/services/{name}/deployment/logs/?", DeploymentLogsHandler),
            (r"/system/buckets/?", BucketsHandler),
            (r"/system/buckets/(?P<bucket>[^/]+)/?", BucketHandler),
            (r"/system/buckets/(?P<bucket>[^/]+)/presign/?", PresignHandler),
            (rf"/system/logs/{name}/?", LogsHandler),
            (rf"/system/logs/{name}/(?P<job>[^/]+)/?", JobLogHandler),
            (rf"/run/{name}/?", RunHandler),
            (rf"/job/{name}/?", JobHandler),
            (r"/oscar-elyra/idle/?", IdleHandler),
        ],
        rt=rt,
        compress_response=False,
        log_function=_log_request,
    )
