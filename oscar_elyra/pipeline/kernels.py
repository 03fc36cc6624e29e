"""Kernels for notebook nodes: one fresh kernel process per node, started ahead and fast.

Starting an IPython kernel costs most of a second of CPU, nearly all of it importing
ipykernel and IPython. A run therefore starts one *zygote* process (``_zygote.py``) that
imports ipykernel once and forks a kernel for each notebook node on request.

What stays on a node's critical path is its cells and papermill's notebook writes: the
runner starts the kernels of the next notebook nodes while the nodes before them run (also
down a chain, at most ``workers`` unused kernels at a time), and :func:`start_kernel` also
connects a client and waits for the kernel to answer (:func:`_client`: by events, not by a
0.2 s silence), so the node's papermill finds a ready kernel and a ready client. Shutdowns
run in their own threads once the node's notebook is written.

Isolation between nodes (what ``tests/test_kernels.py`` checks):

- every node gets its own kernel process, never reused by another node; it is shut down
  once its notebook is written (off the node's critical path, before the run ends);
- that process is forked from the zygote, in which no code but ipykernel's imports has run:
  no user code, no kernel state, no thread; it then reads its own connection file and
  builds its own IPython shell, as ``python -m ipykernel_launcher`` does (the imported
  modules' objects are frozen out of the garbage collector's sight, ``gc.freeze``, which
  changes no value);
- it runs with the node's environment (replacing the zygote's), the node's working
  directory and log file, in its own session (interrupts go to its process group);
- the modules ipykernel imports are shared as imported, not re-imported with the node's
  environment: so a node whose ``PYTHON*`` variables (``PYTHONPATH``, ``PYTHONHASHSEED``...)
  differ from the run's, or a kernel other than this interpreter's ``ipykernel_launcher``,
  gets a kernel started the usual way (a new interpreter). Forked kernels share the
  zygote's string-hash seed (set iteration order) unless ``PYTHONHASHSEED`` fixes it;
  ``random`` is reseeded in each (CPython does it on fork).

Without the zygote (it failed to start, or ``zygote=False``) every kernel starts the usual
way; the notebook runs the same.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oscar_elyra.errors import OscarError

__all__ = ["Kernel", "KernelPool", "KernelZygote", "kernel_manager"]

_ZYGOTE = Path(__file__).with_name("_zygote.py")
#: seconds the zygote may take to import ipykernel before kernels start the usual way
ZYGOTE_START_TIMEOUT = 120.0
#: seconds a kernel may take to answer once started (papermill's default start timeout)
START_TIMEOUT = 60.0
#: longest path of a Unix socket (108 bytes on Linux, with the terminating NUL and the
#: ``-<n>`` suffix jupyter_client appends)
_IPC_PATH_MAX = 100


def _python_env(env: dict[str, str]) -> dict[str, str]:
    """The variables that shape an interpreter at start-up (a fork cannot change them)."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON")}


class KernelZygote:
    """A running ``_zygote.py``: forks kernel processes on request (thread-safe)."""

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self.env = dict(os.environ)
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [self.python, str(_ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=str(_ZYGOTE.parent),
            text=True,
            bufsize=1,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, no locks
        )
        self.pid: int | None = None
        self._ready = threading.Event()

    def ready(self, timeout: float = ZYGOTE_START_TIMEOUT) -> bool:
        """Wait until the zygote has imported ipykernel; False if it died or is too slow."""
        with self._lock:
            if self._ready.is_set():
                return self.proc is not None
            proc = self.proc
            if proc is None or proc.stdout is None:
                return False
            line = _readline(proc, timeout)
            try:
                self.pid = int(json.loads(line)["ready"]) if line else None
            except (ValueError, KeyError, TypeError):
                self.pid = None
            self._ready.set()
            if self.pid is None:
                self._stop_locked()
                return False
            return True

    def accepts(self, cmd: list[str], env: dict[str, str]) -> bool:
        """True when a forked kernel is what ``cmd`` with ``env`` would start."""
        return (
            len(cmd) >= 3
            and os.path.realpath(cmd[0]) == os.path.realpath(self.python)
            and cmd[1:3] == ["-m", "ipykernel_launcher"]
            and _python_env(env) == _python_env(self.env)
        )

    def fork(self, args: list[str], env: dict[str, str], cwd: str, log: str) -> int:
        """A new kernel process (its pid) running ipykernel with ``args``."""
        if not self.ready():
            raise OscarError("the kernel zygote is not running")
        env = dict(env, JPY_PARENT_PID=str(self.pid))  # the kernel exits with the zygote
        req = json.dumps({"argv": args, "env": env, "cwd": cwd, "log": log})
        with self._lock:
            proc = self.proc
            if proc is None or proc.stdin is None:
                raise OscarError("the kernel zygote is not running")
            try:
                proc.stdin.write(req + "\n")
                proc.stdin.flush()
                line = _readline(proc, 30.0)
            except OSError as exc:
                self._stop_locked()
                raise OscarError(f"the kernel zygote stopped: {exc}") from None
            try:
                answer = json.loads(line) if line else {"error": "no answer"}
            except ValueError:
                answer = {"error": line.strip()[:200]}
            if "pid" not in answer:
                self._stop_locked()
                raise OscarError(f"the kernel zygote failed: {answer.get('error')}")
            return int(answer["pid"])

    def _stop_locked(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # it holds no state: killed at once rather than tearing its interpreter down
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def close(self) -> None:
        """Stop the zygote (kernels it forked and not yet stopped then exit too)."""
        with self._lock:
            self._stop_locked()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One line from the zygote's stdout within ``timeout`` seconds ('' if none)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """``preexec_fn``: SIGTERM the zygote when the runner dies (no orphaned kernels)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: kernels still exit with their parent
        pass


class _ForkedProcess:
    """A ``Popen``-like handle on a kernel forked by the zygote (not our child).

    Followed through a pidfd, so a recycled pid can never be mistaken for it. The exit
    status belongs to the zygote, which does not keep it: an exited kernel reports 0.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            self._fd = None
            self.returncode = 0

    def _done(self) -> int:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.returncode = 0
        return 0

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if select.select([self._fd], [], [], 0)[0]:
            return self._done()
        return None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if not select.select([self._fd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
        return self._done()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                signal.pidfd_send_signal(self._fd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_provisioner_class: Any = None


def _provisioner() -> Any:
    """``LocalProvisioner`` whose launch asks the zygote for a fork when it can."""
    global _provisioner_class
    if _provisioner_class is None:
        # optional heavy dependency (elyra extra)
        from jupyter_client.provisioning import LocalProvisioner

        class ZygoteProvisioner(LocalProvisioner):
            zygote: KernelZygote | None = None
            forked = False

            async def launch_kernel(self, cmd: list[str], **kwargs: Any):
                z = self.zygote
                env = kwargs.get("env") or dict(os.environ)
                log = getattr(kwargs.get("stdout"), "name", None)
                if z is None or not isinstance(log, str) or not z.accepts(cmd, env):
                    return await super().launch_kernel(cmd, **kwargs)
                try:
                    pid = z.fork(cmd[3:], env, str(kwargs.get("cwd") or os.getcwd()), log)
                except OscarError:
                    return await super().launch_kernel(cmd, **kwargs)
                self.process = _ForkedProcess(pid)
                self.pid = self.pgid = pid  # its own session: interrupts go to the group
                self.cwd = kwargs.get("cwd") or os.getcwd()
                self.forked = True
                return self.connection_info

        _provisioner_class = ZygoteProvisioner
    return _provisioner_class


_client_class: Any = None

#: seconds to wait for the IOPub answer to a ``kernel_info`` request the kernel has replied
#: to before asking again: a request answered before the kernel's IOPub saw this client's
#: subscription has its IOPub messages lost (ZeroMQ's "slow joiner")
ASK_AGAIN = 0.05
#: milliseconds between a client socket's attempts to connect to a kernel that is still
#: starting (ZeroMQ's default, 100, would add up to 0.1 s to every kernel's start)
RECONNECT_MS = 10


def _client() -> Any:
    """``AsyncKernelClient`` whose readiness check waits for events, not for silence.

    jupyter_client's ``wait_for_ready`` ends by reading IOPub until nothing came for 0.2 s.
    This one is ready once the kernel replied to a ``kernel_info`` request on the shell
    channel and IOPub carried the ``idle`` status of such a request (so IOPub is connected
    and what the kernel published before has been read), asking again every ``ASK_AGAIN``
    seconds after the first reply until then. Answers to its other requests may come later:
    nbclient reads only messages answering its own requests.
    """
    global _client_class
    if _client_class is None:
        # optional heavy dependency (elyra extra)
        from jupyter_client.asynchronous import AsyncKernelClient

        class ReadyClient(AsyncKernelClient):
            def _context_default(self) -> Any:
                context = super()._context_default()  # its own, closed with its channels
                context.reconnect_ivl = RECONNECT_MS  # default for the sockets made from it
                return context

            async def wait_for_ready(self, timeout: float | None = None) -> None:
                limit = float("inf") if timeout is None else timeout
                deadline = time.monotonic() + limit
                asked = {self.kernel_info()}
                reply = None
                while reply is None:  # the kernel may still be starting: no need to ask again
                    reply = await _answer(
                        self.shell_channel, asked, min(time.monotonic() + 1, deadline)
                    )
                    if reply is None:
                        await self._check(deadline, limit)
                while not await _answer(
                    self.iopub_channel, asked, min(time.monotonic() + ASK_AGAIN, deadline), True
                ):
                    await self._check(deadline, limit)
                    asked.add(self.kernel_info())
                self._handle_kernel_info_reply(reply)

            async def _check(self, deadline: float, limit: float) -> None:
                if not await self.is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"Kernel didn't respond in {limit:g} seconds")

        _client_class = ReadyClient
    return _client_class


async def _answer(channel: Any, asked: set[str], until: float, idle: bool = False) -> Any:
    """The first message on ``channel`` answering one of the requests ``asked`` (with
    ``idle``: their ``idle`` status), others skipped; None if none came by ``until``."""
    while (left := until - time.monotonic()) > 0:
        try:
            msg = await channel.get_msg(timeout=left)
        except queue.Empty:
            return None
        if msg.get("parent_header", {}).get("msg_id") not in asked:
            continue
        if not idle or (
            msg.get("msg_type") == "status"
            and msg.get("content", {}).get("execution_state") == "idle"
        ):
            return msg
    return None


@dataclass
class Kernel:
    """A node's kernel, started ahead: its manager, and a client connected to it that has
    found it ready (so the node's critical path holds neither the start nor the handshake)."""

    manager: Any
    client: Any

    def is_alive(self) -> bool:
        return bool(self.manager.is_alive())


def kernel_manager(kernel_name: str) -> Any:
    """A ``KernelManager`` whose kernel listens on Unix sockets (on POSIX, when they fit).

    Over TCP, jupyter_client picks five free ports, closes them and lets the kernel bind
    them: another process (a parallel node, another run, any client connection) can take
    one in between, and the kernel dies with "Address already in use". Unix sockets in the
    user's private runtime directory, named after the kernel's id, cannot be taken.
    """
    # optional heavy dependency (elyra extra)
    from jupyter_client.connect import jupyter_runtime_dir
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    km.kernel_id = str(uuid.uuid4())
    # in the runtime folder, as Jupyter's servers name it (unset, jupyter_client would write
    # it to the system temp folder)
    runtime = jupyter_runtime_dir()
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    km.connection_file = os.path.join(runtime, f"kernel-{km.kernel_id}.json")
    if os.name == "posix":
        ip = os.path.join(runtime, f"kernel-{km.kernel_id}-ipc")
        if len(os.fsencode(ip)) <= _IPC_PATH_MAX:
            km.transport = "ipc"
            km.ip = ip
    return km


def start_kernel(
    kernel_name: str,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    zygote: KernelZygote | None = None,
    timeout: float = START_TIMEOUT,
) -> Kernel:
    """A started kernel for one node (forked by ``zygote`` when it can) and a ready client.

    The client's ZeroMQ sockets wait in a private event loop, closed before returning: the
    node's thread then uses them in its own loop (pyzmq re-registers them there).
    """
    km = kernel_manager(kernel_name)
    km.client_factory = _client()  # an AsyncKernelClient, what nbclient drives
    prov = _provisioner()(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    prov.zygote = zygote
    km.provisioner = prov
    with open(log_path, "ab") as log:
        km.start_kernel(env=env, cwd=str(cwd), stdout=log, stderr=log)
    kernel = Kernel(km, km.client())
    loop = asyncio.new_event_loop()
    try:
        kernel.client.start_channels()
        loop.run_until_complete(kernel.client.wait_for_ready(timeout=timeout))
    except BaseException:
        stop_kernel(kernel)
        raise
    finally:
        loop.close()
    return kernel


def stop_kernel(kernel: Kernel) -> None:
    """Shut a kernel down (gracefully: its exit handlers run) and free its resources."""
    try:
        kernel.client.stop_channels()
    except Exception:  # noqa: BLE001 - best effort: already stopped by the node
        pass
    try:
        kernel.manager.shutdown_kernel(now=False)
    except Exception:  # noqa: BLE001 - best effort: the process may already be gone
        pass
    try:
        kernel.manager.cleanup_resources()
    except Exception:  # noqa: BLE001
        pass


class KernelPool:
    """The kernels of one run: started ahead (one per node), retired in the background.

    ``start`` returns a future of a started :class:`Kernel`; ``retire`` shuts a used
    kernel down off the node's critical path; ``close`` waits for every kernel to be
    gone, then stops the zygote.
    """

    def __init__(self, workers: int, zygote: bool = True) -> None:
        """``workers``: how many kernels may start (or stop) at once."""
        self._pool = ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="kernel")
        # shutdowns wait for processes to exit: their own threads, never ahead of a start
        self._stops = ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="retire")
        self._retiring: list[Future] = []
        self._zygote: KernelZygote | None = None
        if zygote and hasattr(os, "pidfd_open"):  # Linux: forked kernels followed by pidfd
            try:
                self._zygote = KernelZygote()
            except OSError:
                self._zygote = None

    def start(self, kernel_name: str, env: dict[str, str], cwd: Path, log_path: Path) -> Future:
        """Start a kernel for one node in the background."""
        return self._pool.submit(start_kernel, kernel_name, env, cwd, log_path, self._zygote)

    def retire(self, kernel: Kernel) -> None:
        """Shut a kernel down in the background (its node is done with it)."""
        self._retiring.append(self._stops.submit(stop_kernel, kernel))

    def drop(self, fut: Future) -> None:
        """Retire the kernel a future will hold, for a node that will not run."""
        self._retiring.append(self._stops.submit(lambda: stop_kernel(fut.result())))

    def close(self) -> None:
        """Wait for every kernel to stop, then stop the zygote."""
        self._pool.shutdown(wait=True)
        self._stops.shutdown(wait=True)
        if self._zygote is not None:
            self._zygote.close()
