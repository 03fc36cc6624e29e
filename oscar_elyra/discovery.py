"""How a running embedded cluster is announced and found.

``oscar-elyra local up`` writes ``cluster.json`` into its data dir when it is ready (the
API server's ``pid``, ``endpoint``, ``user``, ``s3_endpoint``, ``credentials_file``) and
removes it on a clean stop; :func:`read_running` is how settings find it. The credentials
file (``credentials.json``, mode 0600) holds ``user``, ``password``, ``s3_access_key`` and
``s3_secret_key``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

__all__ = [
    "CLUSTER_FILE",
    "CREDENTIALS_FILE",
    "default_data_dir",
    "pid_alive",
    "read_cluster_file",
    "read_running",
]

CLUSTER_FILE = "cluster.json"
CREDENTIALS_FILE = "credentials.json"


def default_data_dir(env: Any = None) -> Path:
    """``$OSCAR_ELYRA_DATA_DIR`` or the platform user data dir ``oscar-elyra/local``."""
    env = os.environ if env is None else env
    value = env.get("OSCAR_ELYRA_DATA_DIR")
    if value:
        return Path(value).expanduser()
    return Path(user_data_dir("oscar-elyra", appauthor=False)) / "local"


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


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_cluster_file(data_dir: Path | str | None = None) -> dict | None:
    """The raw ``cluster.json`` of ``data_dir`` (default data dir), or None."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    return _read_json(data_dir / CLUSTER_FILE)


def read_running(data_dir: Path | str | None = None) -> dict | None:
    """Connection settings of the cluster running from ``data_dir``, or None.

    Returns ``{"endpoint", "user", "password", "ssl_verify": False, "data_dir", "pid"}``
    when ``cluster.json`` records a live pid and the credentials file is readable.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    info = read_cluster_file(data_dir)
    if not info or not info.get("endpoint") or not pid_alive(info.get("pid")):
        return None
    creds = _read_json(Path(info.get("credentials_file") or data_dir / CREDENTIALS_FILE))
    if not creds or not creds.get("password"):
        return None
    return {
        "endpoint": info["endpoint"],
        "user": creds.get("user", info.get("user")),
        "password": creds["password"],
        "ssl_verify": False,
        "data_dir": str(data_dir),
        "pid": int(info["pid"]),
    }
