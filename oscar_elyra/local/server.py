"""The embedded cluster's server process: OSCAR REST API (tornado) + SeaweedFS child.

Run as ``python -m oscar_elyra.local.server --data-dir D [--port N] [--max-jobs K]``
(normally by :class:`oscar_elyra.local.LocalCluster`). Binds 127.0.0.1 only. When the
API and S3 answer it writes ``<data_dir>/cluster.json``; SIGTERM/SIGINT stop jobs,
SeaweedFS and the API cleanly and remove that file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import fcntl
import hmac
import json
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from oscar_elyra import __version__
from oscar_elyra._paths import write_json_atomic
from oscar_elyra.discovery import CLUSTER_FILE, CREDENTIALS_FILE, pid_alive, read_cluster_file
from oscar_elyra.errors import ConflictError, NotFoundError, OscarError, ValidationError
from oscar_elyra.fdl import validate_service
from oscar_elyra.local.jobs import JobManager, decode_body, job_env, run_script
from oscar_elyra.local.services import ServiceStore, storage_paths
from oscar_elyra.local.state import load_credentials
from oscar_elyra.local.weed import SeaweedFS

log = logging.getLogger("oscar_elyra.local")

SYNC_TIMEOUT = 300.0
MAX_BODY = 64 * 1024**3
B64_CHUNK = 3 * (1 << 16)


class Runtime:
    """Everything the handlers share."""

    def __init__(self, data_dir: Path, creds: dict, weed: SeaweedFS, max_jobs: int) -> None:
        self.data_dir = data_dir
        self.creds = creds
        self.weed = weed
        self.s3 = weed.minio()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="oscar-io")
        self.services = ServiceStore(data_dir)
        self.jobs = JobManager(data_dir, self.services, self.s3, max_jobs, self.executor)
        self.tmp = data_dir / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.cache_dir = data_dir / "cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def ensure_buckets(self, svc: dict) -> None:
        for field in ("input", "output"):
            for io in storage_paths(svc, field):
                bucket = io["path"].split("/", 1)[0]
                if not self.s3.bucket_exists(bucket):
                    try:
                        self.s3.make_bucket(bucket)
                    except Exception as exc:  # created concurrently
                        if not self.s3.bucket_exists(bucket):
                            raise OscarError(f"cannot create bucket {bucket!r}: {exc}") from None


class SecretFilter(logging.Filter):
    """Replaces every cluster secret (and every service token) in log records with ``***``."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.services: ServiceStore | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        secrets = list(self.secrets)
        if self.services is not None:
            secrets += [s.get("token", "") for s in self.services.list()]
        hits = [s for s in secrets if s and s in msg]
        if hits:
            for s in hits:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


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


class BaseHandler(tornado.web.RequestHandler):
    @property
    def rt(self) -> Runtime:
        return self.application.settings["rt"]

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
            return json.loads(self.request.body or b"")
        except (ValueError, UnicodeDecodeError):
            self.fail(400, "request body is not valid JSON; send an OSCAR Service JSON object")

    def check_basic(self) -> None:
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

    def run_io(self, fn, *args):
        return asyncio.get_running_loop().run_in_executor(self.rt.executor, fn, *args)


class HealthHandler(BaseHandler):
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
                "minio_provider": {
                    "endpoint": self.rt.weed.endpoint,
                    "verify": False,
                    "access_key": self.rt.creds["s3_access_key"],
                    "secret_key": self.rt.creds["s3_secret_key"],
                    "region": "us-east-1",
                },
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
        counts = self.rt.jobs.counts()
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


class ServicesHandler(BaseHandler):
    def get(self) -> None:
        self.check_basic()
        self.send_json(self.rt.services.list())

    async def post(self) -> None:
        self.check_basic()
        try:
            svc = validate_service(self.json_body())
        except ValidationError as exc:
            self.fail(400, f"invalid service: {exc}")
        svc.pop("_cluster_id", None)
        if self.rt.services.exists(svc["name"]):
            self.fail(409, f"a service named {svc['name']!r} already exists; use PUT to update")
        await self.run_io(self.rt.ensure_buckets, svc)
        await self.run_io(self.rt.jobs.baseline, svc)
        try:
            self.rt.services.create(svc)
        except ConflictError as exc:
            self.fail(409, str(exc))
        log.info("service %s created", svc["name"])
        self.set_status(201)
        self.finish("")

    async def put(self) -> None:
        self.check_basic()
        try:
            svc = validate_service(self.json_body())
        except ValidationError as exc:
            self.fail(400, f"invalid service: {exc}")
        svc.pop("_cluster_id", None)
        try:
            old = self.rt.services.get(svc["name"])
        except NotFoundError:
            self.fail(404, f"service {svc['name']!r} not found; use POST to create it")
        await self.run_io(self.rt.ensure_buckets, svc)
        old_paths = {io["path"] for io in storage_paths(old, "input")}
        new_paths = [
            io["path"] for io in storage_paths(svc, "input") if io["path"] not in old_paths
        ]
        if new_paths:
            await self.run_io(self.rt.jobs.baseline, svc, new_paths)
        try:
            self.rt.services.update(svc)
        except NotFoundError:
            self.fail(404, f"service {svc['name']!r} not found; use POST to create it")
        log.info("service %s updated", svc["name"])
        self.set_status(204)
        self.finish()


class ServiceHandler(BaseHandler):
    def get(self, name: str) -> None:
        self.check_basic()
        self.send_json(self.service(name))

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
            self.send_json(self.rt.jobs.list_jobs(name, self.get_query_argument("page", None)))
        except ValidationError as exc:
            self.fail(400, str(exc))

    def delete(self, name: str) -> None:
        self.check_basic()
        self.service(name)
        all_jobs = self.get_query_argument("all", "false").lower() in ("true", "1", "yes")
        self.rt.jobs.delete_jobs(name, all_jobs=all_jobs)
        self.set_status(204)
        self.finish()


class JobLogHandler(BaseHandler):
    def get(self, name: str, job: str) -> None:
        self.check_basic()
        self.service(name)
        try:
            text = self.rt.jobs.read_log(name, job)
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
    """Checks auth before the body arrives, then streams the body to a temp file."""

    body_path: Path | None = None
    _fh = None

    def prepare(self) -> None:
        name = self.path_kwargs.get("name") or self.path_args[0]
        self.svc = self.service(name)
        self.check_token(self.svc)
        self.request.connection.set_max_body_size(MAX_BODY)
        fd, path = tempfile.mkstemp(prefix="body-", dir=self.rt.tmp)
        self._fh = os.fdopen(fd, "wb")
        self.body_path = Path(path)

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
    async def post(self, name: str) -> None:
        self._close_body()
        started = time.monotonic()
        jobdir = Path(tempfile.mkdtemp(prefix=f"run-{name}-", dir=self.rt.tmp))
        try:
            workdir, indir, outdir = jobdir / "work", jobdir / "input", jobdir / "output"
            for d in (workdir, indir, outdir):
                d.mkdir()
            job_uuid = str(uuid.uuid4())
            input_path = indir / f"event-file-{job_uuid}"
            try:
                await self.run_io(decode_body, self.body_path, input_path)
            except ValidationError as exc:
                self.fail(400, str(exc))
            env = job_env(self.svc, input_path, outdir, job_uuid)
            env["OSCAR_ELYRA_CACHE_DIR"] = str(self.rt.cache_dir)
            stdout, stderr = jobdir / "stdout", jobdir / "stderr"
            rc = await run_script(self.svc, workdir, env, stdout, stderr, timeout=SYNC_TIMEOUT)
            log.info("run %s rc=%s in %.2fs", name, rc, time.monotonic() - started)
            if rc == -9:
                self.fail(504, f"service {name!r} did not answer within {SYNC_TIMEOUT:.0f} s")
            files = sorted(p for p in outdir.rglob("*") if p.is_file())
            if not files:
                await self._stream(stdout, encode=False)
                return
            if len(files) == 1:
                payload = files[0]
            else:
                payload = jobdir / "outputs.zip"
                await self.run_io(_zip, files, outdir, payload)
            await self._stream(payload, encode=True)
        finally:
            await self.run_io(shutil.rmtree, jobdir, True)

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
        fd, decoded = tempfile.mkstemp(prefix="job-input-", dir=self.rt.tmp)
        os.close(fd)
        try:
            await self.run_io(decode_body, self.body_path, Path(decoded))
        except ValidationError as exc:
            Path(decoded).unlink(missing_ok=True)
            self.fail(400, str(exc))
        rec = self.rt.jobs.submit_body(name, Path(decoded))
        log.info("job %s created by POST /job", rec["name"])
        self.set_status(201)
        self.finish("")


def _zip(files: list[Path], root: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.relative_to(root).as_posix())


def make_app(rt: Runtime) -> tornado.web.Application:
    name = r"(?P<name>[^/]+)"
    return tornado.web.Application(
        [
            (r"/health/?", HealthHandler),
            (r"/system/info/?", InfoHandler),
            (r"/system/config/?", ConfigHandler),
            (r"/system/status/?", StatusHandler),
            (r"/system/services/?", ServicesHandler),
            (rf"/system/services/{name}/?", ServiceHandler),
            (rf"/system/logs/{name}/?", LogsHandler),
            (rf"/system/logs/{name}/(?P<job>[^/]+)/?", JobLogHandler),
            (rf"/run/{name}/?", RunHandler),
            (rf"/job/{name}/?", JobHandler),
        ],
        rt=rt,
        compress_response=False,
        log_function=_log_request,
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m oscar_elyra.local.server")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-jobs", type=int, default=0)
    p.add_argument(
        "--owner-pid",
        type=int,
        default=0,
        help="stop when this process dies, unless released with SIGUSR1 (detach)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    data_dir = Path(args.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    creds = load_credentials(data_dir)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    secret_filter = SecretFilter([creds["password"], creds["s3_secret_key"]])
    handler.addFilter(secret_filter)
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    lock_fh = open(data_dir / ".lock", "w")
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        info = read_cluster_file(data_dir) or {}
        print(
            f"error: a cluster is already running from {data_dir} (pid {info.get('pid', '?')}); "
            "stop it with 'oscar-elyra local down'",
            file=sys.stderr,
        )
        return 3
    old = read_cluster_file(data_dir)
    if old and not pid_alive(old.get("pid")):
        (data_dir / CLUSTER_FILE).unlink(missing_ok=True)

    try:
        sockets = tornado.netutil.bind_sockets(args.port, address="127.0.0.1")
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 4
    port = sockets[0].getsockname()[1]

    weed = SeaweedFS(
        data_dir / "s3",
        creds["s3_access_key"],
        creds["s3_secret_key"],
        log_path=data_dir / "logs" / "weed.log",
    )
    try:
        weed.start()
    except OscarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 5
    max_jobs = args.max_jobs if args.max_jobs > 0 else (os.cpu_count() or 1)
    asyncio.run(
        _serve(data_dir, creds, weed, sockets, port, max_jobs, secret_filter, args.owner_pid)
    )
    return 0


async def _serve(data_dir, creds, weed, sockets, port, max_jobs, secret_filter, owner) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    owner_box = [owner]

    def release() -> None:
        owner_box[0] = 0
        log.info("detached: keeps running after its starter exits")

    loop.add_signal_handler(signal.SIGUSR1, release)
    rt = Runtime(data_dir, creds, weed, max_jobs)
    secret_filter.services = rt.services
    server = tornado.httpserver.HTTPServer(
        make_app(rt), max_body_size=MAX_BODY, max_buffer_size=64 * 1024 * 1024
    )
    server.add_sockets(sockets)
    rt.jobs.start()
    endpoint = f"http://127.0.0.1:{port}"
    write_json_atomic(
        data_dir / CLUSTER_FILE,
        {
            "pid": os.getpid(),
            "endpoint": endpoint,
            "user": creds["user"],
            "s3_endpoint": weed.endpoint,
            "credentials_file": str(data_dir / CREDENTIALS_FILE),
            "max_jobs": max_jobs,
            "started": time.time(),
        },
    )
    log.info("OSCAR API on %s, S3 on %s, max_jobs=%d", endpoint, weed.endpoint, max_jobs)
    watchdog = loop.create_task(_watchdog(weed, stop, owner_box))
    await stop.wait()
    log.info("stopping")
    watchdog.cancel()
    server.stop()
    await rt.jobs.stop()
    await loop.run_in_executor(None, weed.stop)
    info = read_cluster_file(data_dir)
    if info and info.get("pid") == os.getpid():
        (data_dir / CLUSTER_FILE).unlink(missing_ok=True)
    rt.executor.shutdown(wait=False, cancel_futures=True)
    log.info("stopped")


async def _watchdog(weed: SeaweedFS, stop: asyncio.Event, owner: list[int]) -> None:
    """Stop the cluster if SeaweedFS dies (an API without storage would mislead) or if the
    process that started it died without stopping it (no orphans after a crash)."""
    while not stop.is_set():
        await asyncio.sleep(0.5)
        if weed.process is None or weed.process.poll() is not None:
            log.error("SeaweedFS exited; stopping the cluster")
            stop.set()
        elif owner[0] and not pid_alive(owner[0]):
            log.warning("the process that started the cluster (pid %d) is gone; stopping", owner[0])
            stop.set()


if __name__ == "__main__":
    sys.exit(main())
