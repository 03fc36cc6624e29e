"""Run a pipeline as a batch job: ready nodes in parallel, a run directory, resumable.

The run directory holds ``run.json`` (rewritten atomically at every state change), one folder
per node under ``nodes/`` (``log.txt``, the executed notebook, palette component outputs) and
``report.html``. Node environment (as Elyra's local runtime): the process environment, then the
pipeline parameters the node uses, then the node's env vars (over the pipeline defaults), then
``ELYRA_RUNTIME_ENV=local`` and ``ELYRA_RUN_NAME`` (``<pipeline>-<%m%d%H%M%S>``).

Secrets never leave in node output. Nodes are other processes (kernels, scripts), so the
runner learns every secret value a node could print: the secret variables of the node's
environment (``OSCAR_PASSWORD``, ``OSCAR_TOKEN``, ``OSCAR_REFRESH_TOKEN``, AWS keys) and,
from the cluster, its S3 secret key (``/system/config``) and the service tokens and
environment secrets (``/system/services``, read again after each node, which may have
deployed services). After each node it rewrites what the node wrote (its folder: log,
executed notebook, outputs) with those values as ``***``; ``run.json``, ``report.html``
and the progress lines go through the same redaction.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oscar_elyra import __version__
from oscar_elyra._paths import MAX_DEPTH, nesting_depth, write_json_atomic
from oscar_elyra.config import ENV_VARS, ClusterConfig
from oscar_elyra.errors import NodeFailure, OscarError, ValidationError
from oscar_elyra.pipeline.executors import (
    NodeContext,
    _register_engine,
    collect_outputs,
    kernel_name_of,
    papermill_module,
    run_notebook,
    run_process,
    run_script,
)
from oscar_elyra.pipeline.kernels import KernelPool
from oscar_elyra.pipeline.kfp_spec import build_invocation, load_component, ref_name
from oscar_elyra.pipeline.model import Node, Pipeline, load_pipeline, render_value, slug
from oscar_elyra.pipeline.report import write_report
from oscar_elyra.pipeline.schema import schema_error
from oscar_elyra.pipeline.validation import first_error, resolve_parameters, validate_pipeline
from oscar_elyra.redact import redact_data, register_secret, scrub_file
from oscar_elyra.session import connect

RUN_FILE = "run.json"
REPORT_FILE = "report.html"
#: node statuses; "skipped" = not selected for this run, "not_run" = an upstream node failed
STATUSES = ("pending", "running", "succeeded", "failed", "not_run", "skipped")

#: variables of a node's environment whose values are secrets (redacted from its output)
SECRET_ENV = (
    "OSCAR_PASSWORD",
    "OSCAR_TOKEN",
    "OSCAR_REFRESH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)

#: notebook kernels started ahead and not yet used, at most (at least ``workers``): part of a
#: kernel's start waits (its history file, sockets), so several starting at once overlap
KERNELS_AHEAD = 4

EventCallback = Callable[[str, dict[str, Any], dict[str, Any]], None]


_OPT_STR = {"type": ["string", "null"]}
#: the shape of ``run.json`` that ``--resume`` relies on (more keys are allowed)
_RUN_SCHEMA = {
    "type": "object",
    "required": ["name", "run_name", "nodes"],
    "properties": {
        "name": {"type": "string"},
        "run_name": {"type": "string"},
        "attempts": {"type": "integer", "minimum": 1},
        "parameters": {"type": ["object", "null"]},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"enum": list(STATUSES)},
                    "start": _OPT_STR,
                    "end": _OPT_STR,
                    "seconds": {"type": ["number", "null"]},
                    "artifacts": {"type": ["array", "null"], "items": {"type": "object"}},
                    "error": {"type": ["object", "null"]},
                    "attempt": {"type": ["integer", "null"]},
                },
            },
        },
    },
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory (ValidationError if there is none)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ValidationError(f"{run_dir} is not a run directory (no {RUN_FILE} in it)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise ValidationError(f"{path} is not valid JSON: the run record is damaged") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    error = (
        schema_error(_RUN_SCHEMA, record)
        if nesting_depth(record) <= MAX_DEPTH
        else "nested too deeply"
    )
    if error is not None:
        where = "/".join(str(p) for p in getattr(error, "path", ())) or "the record"
        message = getattr(error, "message", error)
        raise ValidationError(f"{path} is not a run record ({where}: {message}): is it damaged?")
    return record


@dataclass
class RunResult:
    """Outcome of :func:`run_pipeline`."""

    run_dir: Path
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when every node selected for this run succeeded."""
        return self.record["status"] == "succeeded"

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """Node records by id."""
        return {n["id"]: n for n in self.record["nodes"]}

    def by_label(self, label: str) -> dict[str, Any]:
        """The node record with this label."""
        return next(n for n in self.record["nodes"] if n["label"] == label)


def _default_run_dir(pipeline: Pipeline) -> Path:
    base = Path.cwd() / "runs" / f"{pipeline.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, i = base, 1
    while candidate.exists():
        i += 1
        candidate = base.with_name(f"{base.name}-{i}")
    return candidate


def select_nodes(
    pipeline: Pipeline,
    only: list[str] | tuple[str, ...] = (),
    from_: list[str] | tuple[str, ...] = (),
) -> set[str] | None:
    """Ids chosen by ``--only`` (those nodes) and ``--from`` (those and their descendants)."""
    if not only and not from_:
        return None
    chosen = {pipeline.find(ref).id for ref in only}
    starts = {pipeline.find(ref).id for ref in from_}
    return chosen | starts | pipeline.descendants(starts)


class _Run:
    def __init__(
        self,
        pipeline: Pipeline,
        record: dict[str, Any],
        run_dir: Path,
        selected: set[str],
        parameters: dict[str, Any],
        workers: int,
        on_event: EventCallback | None,
        kernel_pool: KernelPool | None = None,
        cluster: ClusterConfig | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.record = record
        self.run_dir = run_dir
        self.selected = selected
        self.parameters = parameters
        self.workers = max(1, workers)
        self.on_event = on_event
        self.cluster = cluster
        self.nodes = {n["id"]: n for n in record["nodes"]}
        self.contexts: dict[str, NodeContext] = {}
        #: kernels started ahead of time for notebook nodes (futures of kernels.Kernel)
        self.kernels: dict[str, Future] = {}
        #: starts the kernels of notebook nodes ahead (None: papermill starts each one)
        self.kernel_pool = kernel_pool
        self._secrets_lock = threading.Lock()
        self._cluster_client: Any = None
        self._ask_cluster = True

    # -- secrets ----------------------------------------------------------------------------
    def learn_secrets(self) -> None:
        """Register what a node could print: its cluster's S3 secret key, service tokens and
        environment secrets (best effort: a cluster that cannot be reached is asked no more).
        """
        with self._secrets_lock:
            if not self._ask_cluster:
                return
            try:
                if self._cluster_client is None:
                    self._cluster_client = connect(self.cluster).client
                self._cluster_client.config()  # registers the S3 secret key
                self._cluster_client.list_services()  # registers tokens and env secrets
            except (OscarError, OSError, ValueError):
                self._ask_cluster = False

    def scrub(self, node: Node) -> None:
        """Rewrite what the node wrote in its folder with every known secret as ``***``."""
        for path in sorted(self.node_dir(node).rglob("*")):
            if path.is_file() and not path.is_symlink():
                try:
                    scrub_file(path)
                except OSError:
                    continue

    # -- bookkeeping (main thread only) ---------------------------------------------------
    def save(self) -> None:
        write_json_atomic(self.run_dir / RUN_FILE, redact_data(self.record), fsync=False)

    def event(self, kind: str, nid: str) -> None:
        self.save()
        if self.on_event:
            self.on_event(kind, self.nodes[nid], self.record)

    def node_dir(self, node: Node) -> Path:
        return self.run_dir / "nodes" / slug(node)

    def env_for(self, node: Node) -> dict[str, str]:
        env = os.environ.copy()
        for name in node.parameter_refs:
            value = self.parameters.get(name)
            if value is not None and render_value(value) != "":
                env[name] = render_value(value)
        env.update(node.env)
        if self.cluster is not None:  # the run's cluster, whatever the environment says
            for name in ENV_VARS:
                env.pop(name, None)
            env.update(self.cluster.to_env())
        env["ELYRA_RUNTIME_ENV"] = "local"
        env["ELYRA_RUN_NAME"] = self.record["run_name"]
        for name in SECRET_ENV:
            register_secret(env.get(name))
        return env

    # -- execution (worker threads) --------------------------------------------------------
    def output_path(self, up_id: str, option: str) -> Path:
        up = self.pipeline.nodes[up_id]
        spec = load_component(up)
        name = spec.output_for_option(option) or option
        path = self.node_dir(up) / "outputs" / ref_name(name)
        if not path.exists():  # a file, or a folder (a KFP folder artifact)
            raise NodeFailure(
                f"output '{name}' of node '{up.display}' is missing: that node has not "
                "succeeded in this run directory (run it, or use --resume RUN_DIR)"
            )
        return path

    def execute(self, node: Node, ctx: NodeContext, kernel: Any = None) -> list[dict[str, Any]]:
        if node.kind in ("notebook", "python", "r"):
            source = self.pipeline.resolve(node.filename or "")
            if node.kind == "notebook":
                rec = self.nodes[node.id]
                executed = self.run_dir / rec["notebook"]
                retire = self.kernel_pool.retire if self.kernel_pool is not None else None
                run_notebook(source, executed, ctx, kernel=kernel, retire=retire)
            else:
                run_script(source, node.kind, ctx)
            return collect_outputs(node.outputs, source.parent)
        spec = load_component(node)
        try:
            inv = build_invocation(
                node,
                spec,
                self.pipeline,
                self.parameters,
                self.output_path,
                self.node_dir(node) / "outputs",
            )
        except ValidationError as exc:
            raise NodeFailure(str(exc)) from None
        run_process(inv.argv, ctx, spec.path.name)
        artifacts = []
        for name, path in inv.outputs.items():
            if not path.exists():
                raise NodeFailure(f"({spec.path.name}) did not write its output '{name}'")
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            artifacts.append({"name": name, "path": str(path), "size": size})
        return artifacts

    def work(
        self, node: Node, kernel: Future | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float, str]:
        ctx = self.contexts[node.id]
        started = _now()
        t0 = time.monotonic()
        started_kernel = None
        if kernel is not None:
            try:
                started_kernel = kernel.result()
            except Exception:  # noqa: BLE001 - papermill then starts its own kernel
                started_kernel = None
            if started_kernel is not None and not started_kernel.is_alive():
                self.kernel_pool.retire(started_kernel)  # its client and files too
                started_kernel = None
        try:
            artifacts = self.execute(node, ctx, started_kernel)
            error = None
        except NodeFailure as exc:
            artifacts, error = [], exc.error
        except Exception as exc:  # noqa: BLE001 - a node's failure must not stop the run
            artifacts, error = [], {"message": f"{type(exc).__name__}: {exc}"}
        self.learn_secrets()  # the node may have deployed services: their tokens too
        self.scrub(node)
        if error:
            error = redact_data(error)
        return artifacts, error, time.monotonic() - t0, started

    # -- scheduling -----------------------------------------------------------------------
    def context(self, node: Node) -> NodeContext:
        """The node's context (its folder made, its log emptied), once per attempt."""
        if node.id not in self.contexts:
            ndir = self.node_dir(node)
            ndir.mkdir(parents=True, exist_ok=True)
            log = ndir / "log.txt"
            log.write_bytes(b"")
            cwd = self.pipeline.dir
            if node.kind in ("notebook", "python", "r"):
                cwd = self.pipeline.resolve(node.filename or "").parent
            self.contexts[node.id] = NodeContext(
                env=self.env_for(node), cwd=cwd, log_path=log, node_dir=ndir
            )
        return self.contexts[node.id]

    def prewarm(self, order: list[str]) -> None:
        """Start kernels for the next notebook nodes (every parent running, done or itself
        holding a kernel started ahead), at most ``KERNELS_AHEAD`` (or ``workers``) unused at a
        time, so kernel start-up overlaps the running nodes, also down a chain of notebooks."""
        if self.kernel_pool is None:
            return
        for nid in order:
            if len(self.kernels) >= max(self.workers, KERNELS_AHEAD):  # (as many start at once)
                return
            node = self.pipeline.nodes[nid]
            if (
                node.kind != "notebook"
                or nid in self.kernels
                or nid in self.contexts
                or self.nodes[nid]["status"] != "pending"
                or not all(
                    self.nodes[p]["status"] in ("running", "succeeded") or p in self.kernels
                    for p in node.parents
                    if p in self.selected
                )
            ):
                continue
            name = kernel_name_of(self.pipeline.resolve(node.filename or ""))
            if name:
                ctx = self.context(node)
                self.kernels[nid] = self.kernel_pool.start(name, ctx.env, ctx.cwd, ctx.log_path)

    def drop_kernel(self, nid: str) -> None:
        """Stop the kernel started for a node that will not run."""
        fut = self.kernels.pop(nid, None)
        if fut is not None and self.kernel_pool is not None:
            self.kernel_pool.drop(fut)

    def start(self, pool: ThreadPoolExecutor, nid: str) -> Future:
        node = self.pipeline.nodes[nid]
        rec = self.nodes[nid]
        self.context(node)
        kernel = self.kernels.pop(nid, None)
        rec.update(
            status="running",
            start=_now(),
            end=None,
            seconds=None,
            error=None,
            artifacts=[],
            attempt=rec.get("attempt", 0) + 1,
        )
        self.event("running", nid)
        return pool.submit(self.work, node, kernel)

    def finish(self, nid: str, artifacts, error, seconds: float, started: str) -> None:
        rec = self.nodes[nid]
        rec.update(
            start=started,
            end=_now(),
            seconds=round(seconds, 3),
            artifacts=artifacts,
            error=error,
            status="failed" if error else "succeeded",
        )
        self.event(rec["status"], nid)

    def blocked_by(self, nid: str) -> str | None:
        for parent in self.pipeline.nodes[nid].parents:
            if parent in self.selected and self.nodes[parent]["status"] in ("failed", "not_run"):
                return parent
        return None

    def ready(self, nid: str) -> bool:
        return all(
            self.nodes[p]["status"] == "succeeded"
            for p in self.pipeline.nodes[nid].parents
            if p in self.selected
        )

    def loop(self) -> None:
        order = self.pipeline.topological_order()
        running: dict[Future, str] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="node")
        try:
            while True:
                changed = True
                while changed:  # propagate "not run" down from failures
                    changed = False
                    for nid in order:
                        if self.nodes[nid]["status"] == "pending":
                            parent = self.blocked_by(nid)
                            if parent:
                                self.nodes[nid].update(
                                    status="not_run",
                                    error={
                                        "message": "upstream node "
                                        f"'{self.pipeline.nodes[parent].display}' did not succeed"
                                    },
                                )
                                self.event("not_run", nid)
                                self.drop_kernel(nid)
                                changed = True
                self.prewarm(order)  # ready nodes too: their kernels come from the pool
                for nid in order:
                    if len(running) >= self.workers:
                        break
                    if self.nodes[nid]["status"] == "pending" and self.ready(nid):
                        running[self.start(pool, nid)] = nid
                self.prewarm(order)
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    nid = running.pop(fut)
                    self.finish(nid, *fut.result())
        except KeyboardInterrupt:
            for ctx in self.contexts.values():
                with ctx.lock:
                    for proc in list(ctx.procs):
                        proc.terminate()
            for nid in running.values():
                self.nodes[nid].update(
                    status="failed", end=_now(), error={"message": "interrupted"}
                )
            for rec in self.nodes.values():
                if rec["status"] == "pending":
                    rec.update(status="not_run", error={"message": "interrupted"})
            self.record["status"] = "interrupted"
            self.record["ended"] = _now()
            self.save()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            for nid in list(self.kernels):
                self.drop_kernel(nid)
            if self.kernel_pool is not None:
                self.kernel_pool.close()
        pool.shutdown(wait=True)


def _new_node_record(node: Node, pipeline: Pipeline) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": node.id,
        "label": node.display,
        "op": node.op,
        "kind": node.kind,
        "file": node.filename or node.component_id,
        "parents": list(node.parents),
        "status": "pending",
        "start": None,
        "end": None,
        "seconds": None,
        "artifacts": [],
        "error": None,
        "attempt": 0,
        "log": f"nodes/{slug(node)}/log.txt",
        "notebook": None,
    }
    if node.kind == "notebook" and node.filename:
        rec["notebook"] = f"nodes/{slug(node)}/{Path(node.filename).name}"
    return rec


def prepare(
    pipeline_path: str | Path,
    *,
    params: dict[str, str] | None = None,
    resume: str | Path | None = None,
    check_services: bool = False,
    client: Any = None,
) -> tuple[Pipeline, dict[str, Any], dict[str, Any] | None]:
    """Load and validate: (pipeline, resolved parameters, previous run record or None).

    Raises ValidationError (exit code 2) with one clear line when anything is wrong.
    """
    pipeline = load_pipeline(pipeline_path)
    previous = read_run(resume) if resume else None
    if previous is not None and previous.get("name") != pipeline.name:
        raise ValidationError(
            f"{resume} is a run of pipeline '{previous.get('name')}', not '{pipeline.name}'"
        )
    parameters = resolve_parameters(
        pipeline, params, (previous or {}).get("parameters") if previous else None
    )
    issues = validate_pipeline(pipeline, parameters, check_services=check_services, client=client)
    error = first_error(issues, pipeline)
    if error:
        raise error
    return pipeline, parameters, previous


def run_pipeline(
    pipeline_path: str | Path,
    *,
    params: dict[str, str] | None = None,
    workers: int | None = None,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    only: list[str] | tuple[str, ...] = (),
    from_: list[str] | tuple[str, ...] = (),
    check_services: bool = False,
    client: Any = None,
    cluster: ClusterConfig | None = None,
    on_event: EventCallback | None = None,
    prewarm: bool = True,
) -> RunResult:
    """Validate then run a ``.pipeline`` file; returns the run record.

    ``params``: ``--param`` values as strings (typed against the pipeline's parameters).
    ``resume``: a previous run directory; its failed and not-run nodes run again in it, with
    the same ``ELYRA_RUN_NAME``. ``only``/``from_``: node labels or ids. ``prewarm``: start
    the kernel of a notebook node while its parents still run (its cells wait for them).
    ``cluster``: the OSCAR cluster every node talks to (passed in each node's environment,
    never written to a file); None leaves the nodes to resolve their own.
    A failed node stops its descendants; other branches finish. ValidationError (nothing
    executed) when the pipeline or the arguments are invalid.
    """
    pipeline, parameters, previous = prepare(
        pipeline_path, params=params, resume=resume, check_services=check_services, client=client
    )
    selected = select_nodes(pipeline, only, from_)
    if workers is not None and workers < 1:
        raise ValidationError("--workers must be at least 1")
    workers = workers or os.cpu_count() or 1

    if previous is not None:
        rdir = Path(resume).resolve()
        old = {n["id"]: n for n in previous.get("nodes", [])}
        nodes = []
        for nid in pipeline.topological_order():
            rec = _new_node_record(pipeline.nodes[nid], pipeline)
            prior = old.get(nid)
            if prior:
                rec.update(
                    {
                        k: prior.get(k)
                        for k in (
                            "status",
                            "start",
                            "end",
                            "seconds",
                            "artifacts",
                            "error",
                            "attempt",
                        )
                    }
                )
                rec["attempt"] = rec.get("attempt") or 0
            nodes.append(rec)
        if selected is None:
            selected = {n["id"] for n in nodes if n["status"] != "succeeded"}
        record = dict(previous)
        record.update(
            nodes=nodes,
            parameters=parameters,
            status="running",
            workers=workers,
            resumed=_now(),
            pipeline=str(pipeline.path),
        )
        record["attempts"] = int(previous.get("attempts", 1)) + 1
    else:
        rdir = Path(run_dir).resolve() if run_dir else _default_run_dir(pipeline)
        if (rdir / RUN_FILE).exists():
            raise ValidationError(
                f"{rdir} already holds a run: use --resume {rdir} or another --run-dir"
            )
        if selected is None:
            selected = set(pipeline.nodes)
        record = {
            "pipeline": str(pipeline.path),
            "name": pipeline.name,
            "run_name": f"{pipeline.name}-{datetime.now().strftime('%m%d%H%M%S')}",
            "run_dir": str(rdir),
            "status": "running",
            "started": _now(),
            "ended": None,
            "workers": workers,
            "parameters": parameters,
            "attempts": 1,
            "oscar_elyra": __version__,
            "nodes": [
                _new_node_record(pipeline.nodes[n], pipeline) for n in pipeline.topological_order()
            ],
        }
    for rec in record["nodes"]:
        if rec["id"] in selected:
            rec.update(status="pending", error=None)
        elif previous is None:
            rec["status"] = "skipped"
    record["selected"] = sorted(selected)
    rdir.mkdir(parents=True, exist_ok=True)
    record["run_dir"] = str(rdir)

    notebooks = any(pipeline.nodes[n].kind == "notebook" for n in selected)
    # the pool's zygote imports ipykernel while this process imports papermill
    ahead = max(workers, KERNELS_AHEAD)
    kernel_pool = KernelPool(ahead) if notebooks and prewarm else None
    try:
        if notebooks:
            _register_engine(papermill_module())  # import once, before node clocks start
        run = _Run(
            pipeline, record, rdir, selected, parameters, workers, on_event, kernel_pool, cluster
        )
        run.learn_secrets()
        run.save()
        if on_event:
            on_event("start", {}, record)
        try:
            run.loop()
        finally:
            if record["status"] == "running":
                failed = [
                    n for n in record["nodes"] if n["id"] in selected and n["status"] != "succeeded"
                ]
                record["status"] = "failed" if failed else "succeeded"
                record["ended"] = _now()
                run.save()
            write_report(rdir, record)
    finally:
        if kernel_pool is not None:
            kernel_pool.close()  # (the loop closes it when it ran: a no-op then)
    return RunResult(run_dir=rdir, record=record)
