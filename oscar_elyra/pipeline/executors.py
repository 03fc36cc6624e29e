"""Run one node: a notebook (papermill), a Python/R script, or a palette component (subprocess).

Like Elyra's local runtime, notebooks and scripts run in their own directory with the node's
environment; unlike it, the executed notebook is written to the run directory and the source is
never modified. Each executor writes the node's output to its log file and raises
:class:`NodeFailure` with a short message (and the failing cell for notebooks).
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_elyra.errors import NodeFailure, OscarError
from oscar_elyra.pipeline.kernels import kernel_manager

ENGINE_NAME = "oscar-elyra"
_engine_lock = threading.Lock()
_engine_ready = False


@dataclass
class NodeContext:
    """What an executor needs to run a node."""

    env: dict[str, str]
    cwd: Path
    log_path: Path
    node_dir: Path
    #: running subprocesses, so an interrupted run can stop them
    procs: set[subprocess.Popen] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def papermill_module():
    """Import papermill, or fail with the extra to install.

    Papermill loads every ``papermill.engine`` entry point when imported; Elyra's one would
    import all of Elyra (seconds, and the runner must not depend on it), so it is skipped.
    """
    if "papermill" in sys.modules:
        return sys.modules["papermill"]
    try:  # optional heavy dependency (papermill's, elyra extra)
        import entrypoints
    except ImportError:  # pragma: no cover - papermill itself needs it
        entrypoints = None
    original = getattr(entrypoints, "get_group_all", None)

    def without_elyra(group, path=None):
        found = original(group, path) if path is not None else original(group)
        return [e for e in found if not str(e.module_name).startswith("elyra.")]

    if original is not None:
        entrypoints.get_group_all = without_elyra
    try:  # optional heavy dependency (elyra extra)
        import papermill
    except ImportError:
        raise OscarError(
            "running notebook nodes needs papermill: pip install 'oscar-elyra[elyra]'"
        ) from None
    finally:
        if original is not None:
            entrypoints.get_group_all = original
    return papermill


def _register_engine(papermill) -> None:
    """A papermill engine like Elyra's ElyraEngine that also sets the kernel's cwd and stderr.

    Papermill's own ``cwd`` changes the process directory, which parallel nodes cannot share;
    here the directory is given to the kernel process only.
    """
    global _engine_ready
    with _engine_lock:
        if _engine_ready:
            return
        # optional heavy dependency (elyra extra)
        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine, papermill_engines
        from papermill.log import logger
        from papermill.utils import merge_kwargs, remove_args

        class OscarElyraEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(
                cls,
                nb_man,
                kernel_name,
                log_output=False,
                stdout_file=None,
                stderr_file=None,
                start_timeout=60,
                execution_timeout=None,
                **kwargs,
            ):
                safe = remove_args(
                    [
                        "timeout",
                        "startup_timeout",
                        "kernel_env",
                        "kernel_cwd",
                        "kernel_stderr",
                        "input_path",
                    ],
                    **kwargs,
                )
                final = merge_kwargs(
                    safe,
                    timeout=execution_timeout or kwargs.get("timeout"),
                    startup_timeout=start_timeout,
                    kernel_name=kernel_name,
                    log=logger,
                    log_output=log_output,
                    stdout_file=stdout_file,
                    stderr_file=stderr_file,
                )
                kernel = final.pop("kernel", None)
                retire = final.pop("kernel_retire", None)
                if kernel is not None:  # started ahead, with a ready client (pipeline.kernels)
                    client = PapermillNotebookClient(nb_man, km=kernel.manager, **final)
                    client.kc = kernel.client
                    client.kc.allow_stdin = False  # as nbclient sets on the clients it makes
                    if retire is None:
                        return client.execute(cleanup_kc=True)
                    try:  # the kernel's shutdown goes off the node's critical path
                        return client.execute(cleanup_kc=False)
                    finally:
                        client.kc.stop_channels()
                        client.kc = None
                        retire(kernel)
                kernel_kwargs = {"env": kwargs.get("kernel_env") or {}}
                if kwargs.get("kernel_cwd"):
                    kernel_kwargs["cwd"] = kwargs["kernel_cwd"]
                if kwargs.get("kernel_stderr") is not None:
                    kernel_kwargs["stdout"] = kwargs["kernel_stderr"]
                    kernel_kwargs["stderr"] = kwargs["kernel_stderr"]
                km = kernel_manager(kernel_name)
                try:
                    return PapermillNotebookClient(nb_man, km=km, **final).execute(**kernel_kwargs)
                finally:  # nbclient leaves a kernel manager it did not make running
                    if km.has_kernel:
                        km.shutdown_kernel(now=False)

        papermill_engines.register(ENGINE_NAME, OscarElyraEngine)
        _engine_ready = True


def kernel_name_of(notebook: Path) -> str | None:
    """The kernel a notebook's metadata names (papermill's choice), or None."""
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata") or {}
    except (OSError, ValueError):
        return None
    name = (meta.get("kernelspec") or {}).get("name")
    return str(name) if name else None


def run_notebook(source: Path, executed: Path, ctx: NodeContext, kernel=None, retire=None) -> None:
    """Execute notebook ``source`` into ``executed`` (kernel from the notebook's metadata).

    ``kernel``: a :class:`~oscar_elyra.pipeline.kernels.Kernel` started ahead to use instead
    of starting one; ``retire(kernel)`` then shuts it down once the cells have run.
    """
    papermill = papermill_module()
    _register_engine(papermill)
    executed.parent.mkdir(parents=True, exist_ok=True)
    extra = {"kernel": kernel, "kernel_retire": retire} if kernel is not None else {}
    with open(ctx.log_path, "a", buffering=1, encoding="utf-8") as log:
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                engine_name=ENGINE_NAME,
                progress_bar=False,
                stdout_file=log,
                stderr_file=log,
                kernel_env=ctx.env,
                kernel_cwd=str(ctx.cwd),
                kernel_stderr=log,
                **extra,
            )
        except papermill.PapermillExecutionError as exc:
            src = (exc.source or "").strip().splitlines()
            raise NodeFailure(
                f"({source.name}) in cell {exc.exec_count}: {exc.ename} {exc.evalue}".strip(),
                cell={
                    "index": exc.cell_index,
                    "execution_count": exc.exec_count,
                    "ename": exc.ename,
                    "evalue": exc.evalue,
                    "source": "\n".join(src[:20]),
                },
            ) from None
        except Exception as exc:  # kernel missing or dead, unreadable notebook...
            log.write(f"\n{type(exc).__name__}: {exc}\n")
            raise NodeFailure(f"({source.name}): {type(exc).__name__}: {exc}") from None


def _tail_error(log_path: Path) -> str:
    """The most telling line of a failed process' output (Elyra trims to the last 'Error')."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            lines = [ln.rstrip() for ln in deque(fh, maxlen=200) if ln.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def run_process(argv: list[str], ctx: NodeContext, what: str) -> None:
    """Run ``argv`` with the node's env and cwd, output to the log; NodeFailure on exit != 0."""
    with open(ctx.log_path, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=str(ctx.cwd),
                env=ctx.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise NodeFailure(f"({what}): cannot start {argv[0]}: {exc.strerror or exc}") from None
        with ctx.lock:
            ctx.procs.add(proc)
        try:
            code = proc.wait()
        finally:
            with ctx.lock:
                ctx.procs.discard(proc)
    if code != 0:
        detail = _tail_error(ctx.log_path)
        msg = f"({what}) exited with code {code}"
        raise NodeFailure(f"{msg}: {detail}" if detail else msg, exit_code=code)


def run_script(path: Path, kind: str, ctx: NodeContext) -> None:
    """A Python (``sys.executable``) or R (``Rscript``) script node, as Elyra runs them."""
    argv = [sys.executable, str(path)] if kind == "python" else ["Rscript", str(path)]
    run_process(argv, ctx, path.name)


def collect_outputs(patterns: list[str], base: Path) -> list[dict[str, Any]]:
    """Declared output files (globs allowed) that exist under ``base``, as artifact records."""
    found: list[dict[str, Any]] = []
    for pattern in patterns:
        for match in sorted(glob.glob(str(base / pattern))) or []:
            p = Path(match)
            files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
            for f in files:
                found.append(
                    {"name": str(f.relative_to(base)), "path": str(f), "size": f.stat().st_size}
                )
    return found
