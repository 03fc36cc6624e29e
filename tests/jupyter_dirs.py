"""Helpers of the tests that start a real Jupyter server: a free port, throwaway Jupyter dirs,
stopping the process."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def throwaway_env(root: Path) -> dict[str, str]:
    """This environment with Jupyter's config, data and runtime dirs (and TMPDIR: server
    extensions leave temp files) under ``root``, as on a machine where nothing was set up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "ELYRA_"))}
    for name, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("TMPDIR", "tmp"),
    ]:
        env[name] = str(root / sub)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` (kill it after 30 s) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
