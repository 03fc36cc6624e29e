"""On-disk state of an embedded cluster: its data dir and credentials.

How a running cluster is announced and found lives in :mod:`oscar_elyra.discovery`.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.discovery import CREDENTIALS_FILE

__all__ = ["DEFAULT_USER", "UMASK", "load_credentials", "restrict_modes"]

DEFAULT_USER = "oscar"
#: the cluster's processes create files for their owner only
UMASK = 0o077


def restrict_modes(data_dir: Path) -> None:
    """The data dir 0700 and everything in it the owner's only: directories 0700, files
    0600 (an owner's execute bit is kept). Symbolic links are neither followed nor changed;
    so a data dir made by an older version, or with a loose umask, is fixed on start."""
    root = Path(data_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    mode = 0o700
                else:
                    mode = 0o600 | (st.st_mode & stat.S_IXUSR)
                if stat.S_IMODE(st.st_mode) != mode:
                    os.chmod(path, mode)
            except FileNotFoundError:  # removed meanwhile
                continue


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
