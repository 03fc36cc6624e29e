"""The embedded cluster's server process: the OSCAR REST API (tornado) + a SeaweedFS child.

Run as ``python -m oscar_elyra.local.server --data-dir D [--port N] [--max-jobs K]
[--job-timeout S] [--compat embedded|oscar]``
(normally by :class:`oscar_elyra.local.LocalCluster`). Binds 127.0.0.1 only. When the
API and S3 answer it writes ``<data_dir>/cluster.json`` (see :mod:`oscar_elyra.discovery`);
SIGTERM/SIGINT stop jobs, SeaweedFS and the API cleanly and remove that file. The
cluster's secrets and the service tokens are redacted from its log.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.discovery import CLUSTER_FILE, CREDENTIALS_FILE, pid_alive, read_cluster_file
from oscar_elyra.errors import OscarError
from oscar_elyra.local.api import MAX_BODY, Runtime, make_app
from oscar_elyra.local.jobs import COMPAT_MODES, DEFAULT_JOB_TIMEOUT
from oscar_elyra.local.state import UMASK, load_credentials, restrict_modes
from oscar_elyra.local.weed import SeaweedFS
from oscar_elyra.redact import install_log_redaction, register_secret

log = logging.getLogger("oscar_elyra.local")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m oscar_elyra.local.server")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-jobs", type=int, default=0)
    p.add_argument(
        "--job-timeout",
        type=float,
        default=DEFAULT_JOB_TIMEOUT,
        help="seconds an async job may run (0: no limit)",
    )
    p.add_argument("--compat", choices=COMPAT_MODES, default="embedded")
    p.add_argument(
        "--owner-pid",
        type=int,
        default=0,
        help="stop when this process dies, unless released with SIGUSR1 (detach)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; exit code 3: already running, 4: port busy, 5: no S3."""
    args = _parse(argv)
    os.umask(UMASK)  # job logs, records, outputs: the owner's only
    data_dir = Path(args.data_dir).expanduser().resolve()
    restrict_modes(data_dir)
    (data_dir / "logs").mkdir(exist_ok=True)
    creds = load_credentials(data_dir)
    for key in ("password", "s3_secret_key"):
        register_secret(creds[key])
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    install_log_redaction()

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
    # asyncio queues bind to the loop at first use
    rt = Runtime(data_dir, creds, weed, max_jobs, job_timeout=args.job_timeout, compat=args.compat)
    asyncio.run(_serve(rt, sockets, args.owner_pid))
    return 0


def _announce(rt: Runtime, endpoint: str) -> None:
    """Write ``cluster.json``: the cluster is ready (read by :mod:`oscar_elyra.discovery`)."""
    write_json_atomic(
        rt.data_dir / CLUSTER_FILE,
        {
            "pid": os.getpid(),
            "endpoint": endpoint,
            "user": rt.creds["user"],
            "s3_endpoint": rt.weed.endpoint,
            "credentials_file": str(rt.data_dir / CREDENTIALS_FILE),
            "max_jobs": rt.max_jobs,
            "job_timeout": rt.job_timeout,
            "compat": rt.compat,
            "started": time.time(),
        },
        mode=0o600,
    )


async def _serve(rt: Runtime, sockets: list, owner: int) -> None:
    """Serve the API on ``sockets`` until a signal, SeaweedFS's exit or the owner's death."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    owner_box = [owner]

    def release() -> None:
        owner_box[0] = 0
        log.info("detached: keeps running after its starter exits")

    loop.add_signal_handler(signal.SIGUSR1, release)
    server = tornado.httpserver.HTTPServer(
        make_app(rt), max_body_size=MAX_BODY, max_buffer_size=64 * 1024 * 1024
    )
    server.add_sockets(sockets)
    rt.jobs.start()
    endpoint = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    _announce(rt, endpoint)
    log.info("OSCAR API on %s, S3 on %s, max_jobs=%d", endpoint, rt.weed.endpoint, rt.max_jobs)
    watchdog = loop.create_task(_watchdog(rt.weed, stop, owner_box))
    await stop.wait()
    log.info("stopping")
    watchdog.cancel()
    server.stop()
    # SeaweedFS still running: it flushes its metadata log when stopped, so the next start
    # resumes from the event position without listing the input paths
    storage_up = rt.weed.process is not None and rt.weed.process.poll() is None
    await rt.jobs.stop(clean=storage_up)
    await loop.run_in_executor(None, rt.weed.stop)
    info = read_cluster_file(rt.data_dir)
    if info and info.get("pid") == os.getpid():
        (rt.data_dir / CLUSTER_FILE).unlink(missing_ok=True)
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
    # ``python -m`` runs this file as ``__main__``, a module of its own: run the real module's
    # main(), so that its functions carry their own names (in logs, tracebacks, mutation runs)
    from oscar_elyra.local.server import main as _main

    sys.exit(_main())
