"""``oscar-elyra run X.pipeline``, ``oscar-elyra validate``, ``oscar-elyra describe``."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from tqdm import tqdm

from oscar_elyra.commands._common import CliState, pass_state, writable
from oscar_elyra.pipeline.describe import describe_pipeline, format_description
from oscar_elyra.pipeline.model import load_pipeline
from oscar_elyra.pipeline.runner import run_pipeline
from oscar_elyra.pipeline.validation import (
    parse_param_options,
    resolve_parameters,
    validate_pipeline,
)
from oscar_elyra.redact import redact

_ICONS = {"running": ">", "succeeded": "ok", "failed": "FAILED", "not_run": "not run"}


class _Progress:
    """One line per node state change (stderr) and a bar for the whole run."""

    def __init__(self, quiet: bool, bar: bool) -> None:
        self.quiet = quiet
        self.bar_enabled = bar and not quiet
        self.bar = None
        self.t0 = time.monotonic()

    def _write(self, line: str) -> None:
        line = redact(line)
        if self.bar is not None:
            tqdm.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def __call__(self, kind: str, node: dict[str, Any], record: dict[str, Any]) -> None:
        if self.quiet:
            return
        if self.bar is None and self.bar_enabled and kind != "start":
            total = len(record.get("selected") or [])
            self.bar = tqdm(
                total=total, desc=record.get("name"), unit="node", file=sys.stderr, leave=False
            )
        elapsed = time.monotonic() - self.t0
        label = node.get("label")
        if kind == "start":
            count = len(record.get("selected") or [])
            line = (
                f"[{elapsed:7.1f}s] {record.get('name')}: {count} node(s), "
                f"{record.get('workers')} worker(s), run dir {record.get('run_dir')}"
            )
        elif kind == "running":
            line = f"[{elapsed:7.1f}s] {label}: running"
        elif kind == "succeeded":
            line = f"[{elapsed:7.1f}s] {label}: succeeded in {node.get('seconds', 0):.1f}s"
        else:
            msg = (node.get("error") or {}).get("message", "")
            line = f"[{elapsed:7.1f}s] {label}: {_ICONS.get(kind, kind)}: {msg}"
        self._write(line)
        if self.bar is not None and kind in ("succeeded", "failed", "not_run"):
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command("run")
@click.argument("pipeline", metavar="PIPELINE.pipeline")
@click.option(
    "--workers",
    "-w",
    type=int,
    default=None,
    metavar="N",
    help="Nodes run at once (default: number of cores).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=None,
    callback=writable,
    help="Run directory (default: runs/<pipeline>-<timestamp>).",
)
@click.option(
    "--resume",
    "resume",
    type=click.Path(file_okay=False),
    default=None,
    metavar="RUN_DIR",
    help="Rerun the failed and not-run nodes of a previous run.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NODE",
    help="Run only this node (label or id); repeatable.",
)
@click.option(
    "--from",
    "from_",
    multiple=True,
    metavar="NODE",
    help="Run this node (label or id) and everything downstream of it.",
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a pipeline parameter (typed: String, Integer, Float, Bool).",
)
@click.option(
    "--check-services",
    is_flag=True,
    help="Check first that the OSCAR services the nodes use answer.",
)
@click.option("-q", "--quiet", "quiet_local", is_flag=True, help="No progress output (CI).")
@pass_state
@click.pass_context
def run_file(
    ctx: click.Context,
    state: CliState,
    pipeline: str,
    workers,
    run_dir,
    resume,
    only,
    from_,
    params,
    check_services,
    quiet_local,
) -> None:
    """Run an Elyra .pipeline file as a batch job.

    Independent nodes run in parallel; notebooks run with papermill (the executed copy goes to
    the run directory, the source is not modified), scripts and OSCAR palette components as
    subprocesses. Exit code 0 when every node succeeded, 1 when one failed, 2 when the
    pipeline or the arguments are invalid (nothing runs).
    """
    quiet = state.quiet or quiet_local or state.json
    progress = _Progress(quiet=quiet, bar=state.progress is not False)
    # one run talks to one cluster: the one --cluster/--endpoint/environment/config select
    cluster = state.cluster_config(required=check_services)
    client = state.client() if check_services else None
    try:
        result = run_pipeline(
            pipeline,
            params=parse_param_options(params),
            workers=workers,
            run_dir=run_dir,
            resume=resume,
            only=only,
            from_=from_,
            check_services=check_services,
            client=client,
            cluster=cluster,
            on_event=progress,
        )
    finally:
        progress.close()
    rec = result.record
    counts: dict[str, int] = {}
    for node in rec["nodes"]:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()))
    state.emit(
        {
            "status": rec["status"],
            "run_dir": str(result.run_dir),
            "run_name": rec["run_name"],
            "nodes": [
                {
                    "id": n["id"],
                    "label": n["label"],
                    "status": n["status"],
                    "seconds": n["seconds"],
                    "error": n["error"],
                }
                for n in rec["nodes"]
            ],
        },
        f"{rec['name']}: {rec['status']} ({summary}); report: {result.run_dir / 'report.html'}",
    )
    if not result.ok:
        ctx.exit(1)


@click.command("validate")
@click.argument("pipeline", metavar="PIPELINE.pipeline")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Check with this parameter value.",
)
@click.option("--check-services", is_flag=True, help="Check that the services nodes use answer.")
@pass_state
@click.pass_context
def validate(ctx: click.Context, state: CliState, pipeline: str, params, check_services) -> None:
    """Check a .pipeline file without running it (exit 2 if it has errors)."""
    pl = load_pipeline(pipeline)
    values = resolve_parameters(pl, parse_param_options(params))
    client = state.client() if check_services else None
    issues = validate_pipeline(pl, values, check_services=check_services, client=client)
    errors = [i for i in issues if i.severity == "error"]
    lines = [str(i) for i in issues]
    if not errors:
        lines.append(f"{pl.path.name}: valid ({len(pl.nodes)} nodes)")
    state.emit(
        {"pipeline": str(pl.path), "valid": not errors, "issues": [i.to_dict() for i in issues]},
        "\n".join(lines),
    )
    if errors:
        ctx.exit(2)


@click.command("describe")
@click.argument("pipeline", metavar="PIPELINE.pipeline")
@pass_state
def describe(state: CliState, pipeline: str) -> None:
    """Show a pipeline's nodes, the OSCAR services it uses, its inputs and parameters."""
    info = describe_pipeline(pipeline)
    state.emit(info, format_description(info))
