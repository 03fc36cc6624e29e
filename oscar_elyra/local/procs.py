"""Starting and stopping the embedded cluster's processes: the server, SeaweedFS, scripts.

Every child that may leave children of its own (the API server, a service script) runs
in its own process group, so stopping it ends with a SIGKILL of the whole group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from oscar_elyra.discovery import pid_alive

__all__ = [
    "die_with_parent",
    "group_of",
    "kill_group",
    "spawn",
    "stop_pid",
    "stop_process",
    "wait_gone",
]

#: seconds to wait for a process to go after SIGKILL
KILL_WAIT = 5.0
_PR_SET_PDEATHSIG = 1


def spawn(
    cmd: list[str], log_path: Path, *, new_session: bool = False, **popen: Any
) -> subprocess.Popen:
    """Start ``cmd`` with no stdin and its stdout and stderr appended to ``log_path``.

    With ``new_session`` it leads a process group of its own (see :func:`stop_process`).
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
            **popen,
        )


def kill_group(pid: int) -> None:
    """SIGKILL every process in the group led by ``pid`` (gone already: nothing to do)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_of(pgid: int, marker: str) -> bool:
    """True when process ``pgid`` is alive and its command line contains ``marker``.

    How a restarted cluster recognises a script its killed predecessor left running (the
    marker is the script's path in its workspace): a reused pid never matches.
    """
    if not pid_alive(pgid):
        return False
    try:
        with open(f"/proc/{int(pgid)}/cmdline", "rb") as fh:
            cmdline = fh.read().decode("utf-8", "replace")
    except OSError:
        return False
    return marker in cmdline


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to exit; True when it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def stop_pid(pid: int, timeout: float) -> bool:
    """SIGTERM ``pid`` (not our child), then SIGKILL its group after ``timeout`` s.

    Returns False when there was no such process.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not wait_gone(pid, timeout):
        kill_group(pid)
        wait_gone(pid, KILL_WAIT)
    return True


def stop_process(proc: subprocess.Popen, timeout: float, *, group: bool = False) -> None:
    """SIGTERM a child, wait up to ``timeout`` s, then SIGKILL it.

    With ``group`` (a child started in a new session) the SIGKILL goes to its whole group,
    also when the child itself has exited, so nothing it started outlives it.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if group:
        kill_group(proc.pid)
    elif proc.poll() is None:
        proc.kill()
    try:
        proc.wait(KILL_WAIT)
    except subprocess.TimeoutExpired:
        pass


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """``preexec_fn``: ask Linux to SIGTERM this child when its parent dies (no orphans)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # not Linux: the owner watchdog still stops the cluster
        pass
