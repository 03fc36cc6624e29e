"""On-disk state of an embedded cluster: data dir, credentials, running-cluster record.

Files in the data dir:

- ``credentials.json`` (mode 0600): ``user``, ``password``, ``s3_access_key``, ``s3_secret_key``;
  generated once per data dir.
- ``cluster.json``: ``pid`` (of the API server), ``endpoint``, ``user``, ``s3_endpoint``,
  ``credentials_file``; written when the cluster is ready, removed on clean stop.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "default_data_dir",
    "read_running",
    "load_credentials",
    "write_json_atomic",
    "pid_alive",
]

CLUSTER_FILE = "cluster.json"
CREDENTIALS_FILE = "credentials.json"
DEFAULT_USER = "oscar"


def default_data_dir() -> Path:
    """``$OSCAR_ELYRA_DATA_DIR`` or the platform user data dir ``oscar-elyra/local``."""
    env = os.environ.get("OSCAR_ELYRA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("oscar-elyra", appauthor=False)) / "local"


def write_json_atomic(path: Path, data: Any, mode: int = 0o644, fsync: bool = True) -> None:
    """Write JSON to a temp file in the same dir with ``mode``, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_credentials(data_dir: Path, create: bool = True) -> dict[str, str] | None:
    """Credentials of the cluster in ``data_dir``; generated (0600) on first use if ``create``."""
    path = Path(data_dir) / CREDENTIALS_FILE
    try:
        with open(path, encoding="utf-8") as fh:
            creds = json.load(fh)
        if all(creds.get(k) for k in ("user", "password", "s3_access_key", "s3_secret_key")):
            if (path.stat().st_mode & 0o077) != 0:
                os.chmod(path, 0o600)
            return creds
    except (FileNotFoundError, ValueError):
        pass
    if not create:
        return None
    creds = {
        "user": DEFAULT_USER,
        "password": secrets.token_urlsafe(24),
        "s3_access_key": "oe" + secrets.token_hex(9),
        "s3_secret_key": secrets.token_urlsafe(30),
    }
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, creds, mode=0o600)
    return creds


def pid_alive(pid: Any) -> bool:
    """True when ``pid`` is a live (non-zombie) process."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_cluster_file(data_dir: Path | str | None = None) -> dict | None:
    """The raw ``cluster.json`` of ``data_dir`` (default data dir), or None."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    try:
        with open(data_dir / CLUSTER_FILE, encoding="utf-8") as fh:
            info = json.load(fh)
        return info if isinstance(info, dict) else None
    except (FileNotFoundError, ValueError, OSError):
        return None


def read_running(data_dir: Path | str | None = None) -> dict | None:
    """Connection settings of the cluster running from ``data_dir``, or None.

    Returns ``{"endpoint", "user", "password", "ssl_verify": False, "data_dir", "pid"}``
    when ``cluster.json`` records a live pid and the credentials file is readable.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    info = read_cluster_file(data_dir)
    if not info or not pid_alive(info.get("pid")):
        return None
    creds_file = Path(info.get("credentials_file") or data_dir / CREDENTIALS_FILE)
    try:
        with open(creds_file, encoding="utf-8") as fh:
            creds = json.load(fh)
    except (FileNotFoundError, ValueError, OSError):
        return None
    return {
        "endpoint": info["endpoint"],
        "user": creds.get("user", info.get("user")),
        "password": creds["password"],
        "ssl_verify": False,
        "data_dir": str(data_dir),
        "pid": int(info["pid"]),
    }
