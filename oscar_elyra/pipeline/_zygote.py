"""Kernel zygote: imports ipykernel once, then forks one fresh kernel process per request.

Run as a script by :mod:`oscar_elyra.pipeline.kernels` (``python _zygote.py``), never
imported by the package. It imports nothing from oscar_elyra and starts no thread, so each
forked child is a process in which no code but ipykernel's own imports has run, exactly
what ``python -m ipykernel_launcher`` has done before it reads its connection file.

Protocol (one JSON object a line): it prints ``{"ready": pid}`` once the imports are done,
then for each request ``{"argv": [...], "env": {...}, "cwd": "...", "log": "..."}`` on
stdin it forks a kernel and answers ``{"pid": N}`` (or ``{"error": "..."}``). It exits
when stdin closes. Children are reaped by the kernel (SIGCHLD ignored here); each child
gets its own session, the request's environment (replacing this one), working directory
and log file, and the default SIGCHLD disposition back.
"""

import atexit
import gc
import json
import os
import signal
import sys
import traceback

# like ipykernel_launcher: the script's directory is not the kernel's import path
if sys.path and os.path.dirname(os.path.abspath(__file__)) == os.path.abspath(sys.path[0] or "."):
    del sys.path[0]

import importlib  # noqa: E402
import threading  # noqa: E402

from ipykernel import kernelapp  # noqa: E402 - after the path fix, as the launcher does

#: what a kernel imports while it starts and runs its first cell (found by comparing
#: sys.modules): imported here once, so each fork finds them loaded
PRELOAD = (
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "tornado.platform.asyncio",
    "tornado.queues",
    "psutil",
    "faulthandler",
    "gzip",
    "http.server",
    "xmlrpc.client",
)
for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - optional: the kernel imports it itself if it can
        pass


# Everything imported so far lives as long as the process: moved out of the collector's
# sight, so that a kernel's collections (IPython runs one while it starts) skip it and do not
# touch (and copy) the pages the forks share.
gc.collect()
gc.freeze()


def _child(req: dict) -> None:
    """In the forked child: become the node's kernel process; never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 65536)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = ["ipykernel_launcher", *req["argv"]]
        try:
            kernelapp.launch_new_instance()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report in the node's log, then exit
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped by the system
    out = sys.stdout
    if threading.active_count() != 1:  # a fork would lose those threads: refuse
        out.write(json.dumps({"error": "a thread started while importing"}) + "\n")
        out.flush()
        return
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            out.flush()
            pid = os.fork()
        except Exception as exc:  # noqa: BLE001 - bad request or fork failure
            out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            out.flush()
            continue
        if pid == 0:
            _child(req)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
