"""``LocalCluster``: start/stop the embedded OSCAR-compatible cluster from Python."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from oscar_elyra.discovery import CREDENTIALS_FILE, default_data_dir, pid_alive, read_cluster_file
from oscar_elyra.errors import ConflictError, OscarError, ValidationError
from oscar_elyra.fdl import load_fdl
from oscar_elyra.local.examples import fdl_paths
from oscar_elyra.local.jobs import COMPAT_MODES
from oscar_elyra.local.procs import spawn, stop_pid, stop_process
from oscar_elyra.local.state import load_credentials, restrict_modes
from oscar_elyra.local.weed import remove_stale_sockets

__all__ = ["LocalCluster", "stop_running"]


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _credential(key: str) -> property:
    """A credential read from the 0600 file (kept out of ``repr``)."""
    return property(lambda self: self._credentials()[key], doc=f"The cluster's ``{key}``.")


def stop_running(data_dir: Path | str | None = None, timeout: float = 20.0) -> int | None:
    """Stop the cluster recorded in ``data_dir`` (e.g. one started with ``--detach``).

    Returns the stopped pid, or None when no cluster was running there.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    info = read_cluster_file(data_dir)
    if not info or not pid_alive(info.get("pid")):
        return None
    pid = int(info["pid"])
    stopped = stop_pid(pid, timeout)
    remove_stale_sockets(data_dir / "s3")  # SeaweedFS's, if it had to be killed
    return pid if stopped else None


class LocalCluster:
    """An embedded OSCAR-compatible cluster: a SeaweedFS S3 server and the OSCAR REST API.

    The API server runs as a child process (``python -m oscar_elyra.local.server``) in
    its own process group with SeaweedFS as its child; :meth:`stop` (also run at exit)
    stops both. Service ``image`` fields are recorded, not pulled: scripts run on the
    host with this Python environment's ``bin`` first on ``PATH``.

    ``job_timeout``: seconds an async job may run unless its service says otherwise
    (annotation ``oscar-elyra/job-timeout``); default 3600, 0 for none. ``compat``:
    "embedded" (a script's non-zero exit code fails its job and its ``/run``) or "oscar"
    (exit codes ignored, as on OSCAR).

    Attributes after :meth:`start`: ``endpoint``, ``user``, ``password``,
    ``s3_endpoint``, ``s3_access_key``, ``s3_secret_key``, ``data_dir``, ``pid``.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int = 0,
        max_jobs: int | None = None,
        *,
        job_timeout: float | None = None,
        compat: str = "embedded",
    ) -> None:
        if compat not in COMPAT_MODES:
            raise ValidationError(
                f"compat must be one of {', '.join(COMPAT_MODES)}, not {compat!r}"
            )
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
        self.port = int(port or 0)
        self.max_jobs = max_jobs
        self.job_timeout = job_timeout
        self.compat = compat
        self.endpoint: str | None = None
        self.s3_endpoint: str | None = None
        self.process: subprocess.Popen | None = None
        self._creds: dict | None = None
        self._atexit = False

    def __repr__(self) -> str:
        return f"LocalCluster(endpoint={self.endpoint!r}, data_dir={str(self.data_dir)!r})"

    user = _credential("user")
    password = _credential("password")
    s3_access_key = _credential("s3_access_key")
    s3_secret_key = _credential("s3_secret_key")

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / CREDENTIALS_FILE

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def _credentials(self) -> dict:
        if self._creds is None:
            self._creds = load_credentials(self.data_dir)
        return self._creds

    def start(self, timeout: float = 90.0) -> LocalCluster:
        """Start SeaweedFS and the API; return when both answer."""
        if self.process is not None and self.process.poll() is None:
            return self
        restrict_modes(self.data_dir)  # 0700, files 0600, whether it existed or not
        (self.data_dir / "logs").mkdir(mode=0o700, exist_ok=True)
        info = read_cluster_file(self.data_dir)
        if info and pid_alive(info.get("pid")):
            raise ConflictError(
                f"an embedded cluster is already running from {self.data_dir} "
                f"(pid {info['pid']}, {info.get('endpoint')}); stop it with "
                "'oscar-elyra local down'"
            )
        self._creds = load_credentials(self.data_dir)
        cmd = [
            sys.executable,
            "-m",
            "oscar_elyra.local.server",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--max-jobs",
            str(self.max_jobs or 0),
            "--owner-pid",
            str(os.getpid()),
            "--compat",
            self.compat,
        ]
        if self.job_timeout is not None:
            cmd += ["--job-timeout", str(self.job_timeout)]
        self.process = spawn(cmd, self.log_file, new_session=True)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OscarError(
                    f"the embedded cluster exited with code {self.process.returncode}: "
                    f"{_log_tail(self.log_file)} (log: {self.log_file})"
                )
            info = read_cluster_file(self.data_dir)
            if info and info.get("pid") == self.process.pid:
                try:
                    r = requests.get(info["endpoint"] + "/health", timeout=2)
                    if r.status_code == 200:
                        self.endpoint = info["endpoint"]
                        self.s3_endpoint = info["s3_endpoint"]
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise OscarError(
            f"the embedded cluster did not become ready within {timeout:.0f} s "
            f"(log: {self.log_file})"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the API server and SeaweedFS (SIGTERM, then SIGKILL of the whole group)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        # the group also holds SeaweedFS: nothing is left after a crash of the server
        stop_process(proc, timeout, group=True)
        remove_stale_sockets(self.data_dir / "s3")  # SeaweedFS's, if it was killed
        self.endpoint = None

    def detach(self) -> None:
        """Leave the cluster running after this Python process exits (``local up --detach``).

        Without it, the server stops by itself when the process that started it dies.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False
        self.process = None

    def wait(self) -> int:
        """Block until the server process exits; returns its exit code."""
        return self.process.wait() if self.process else 0

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables pointing a subprocess at this cluster."""
        return {
            "OSCAR_ENDPOINT": self.endpoint or "",
            "OSCAR_USER": self.user,
            "OSCAR_PASSWORD": self.password,
            "OSCAR_SSL_VERIFY": "false",
        }

    def session(self) -> requests.Session:
        """A ``requests.Session`` with Basic auth for ``/system/*``."""
        s = requests.Session()
        s.auth = (self.user, self.password)
        return s

    def wait_idle(self, service: str | None = None, timeout: float = 60.0) -> None:
        """Wait until the cluster says nothing more will happen by itself: every input
        object uploaded so far has its job, and no job (of ``service``, or at all) is
        Pending or Running (:class:`OscarError` after ``timeout`` s)."""
        params = {"service": service} if service is not None else {}
        deadline = time.monotonic() + timeout
        with self.session() as s:
            while True:
                r = s.get(f"{self.endpoint}/oscar-elyra/idle", params=params, timeout=60)
                if r.status_code != 200:
                    raise OscarError(f"{self.endpoint}: idle check answered HTTP {r.status_code}")
                if r.json()["idle"]:
                    return
                if time.monotonic() > deadline:
                    raise OscarError(f"the embedded cluster was not idle within {timeout:g} s")
                time.sleep(0.1)  # polling the cluster's own answer, with a deadline

    def apply_service(self, svc: dict) -> str:
        """Create or update one service (Service JSON); returns "created" or "updated"."""
        svc = {k: v for k, v in svc.items() if not k.startswith("_")}
        with self.session() as s:
            r = s.post(f"{self.endpoint}/system/services", json=svc, timeout=60)
            if r.status_code == 201:
                return "created"
            if r.status_code == 409:
                r = s.put(f"{self.endpoint}/system/services", json=svc, timeout=60)
                if r.status_code == 204:
                    return "updated"
        raise OscarError(
            f"deploying service {svc.get('name')!r} to {self.endpoint} failed: "
            f"HTTP {r.status_code} {r.text.strip()[:300]}"
        )

    def deploy_examples(self) -> list[str]:
        """Deploy the bundled example services (cowsay, grayify, digits); returns their names."""
        names = []
        for path in fdl_paths():
            for svc in load_fdl(path):
                self.apply_service(svc)
                names.append(svc["name"])
        return names
