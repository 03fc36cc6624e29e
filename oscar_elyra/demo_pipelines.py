"""Demo: the example Elyra pipelines end to end on the embedded cluster.

``python -m oscar_elyra.demo_pipelines [DATA_DIR]`` starts an embedded OSCAR cluster with the
example services, copies ``notebooks/`` and ``pipelines/`` into a workspace (Elyra's local
runtime runs notebooks in place, so the checkout stays clean), runs
``elyra-pipeline run pipelines/digits_async.pipeline`` and ``digits_sync.pipeline`` there as
subprocesses with the cluster's connection settings, and prints where the reports are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from oscar_elyra.errors import ConfigError, OscarError

PIPELINES = ("digits_async", "digits_sync")


def project_root() -> Path:
    """The source checkout holding ``notebooks/`` and ``pipelines/`` (ConfigError if none)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "notebooks").is_dir() or not (root / "pipelines").is_dir():
        raise ConfigError(
            f"no notebooks/ and pipelines/ next to {root}: run the demo from a source checkout"
        )
    return root


def _elyra_pipeline() -> str:
    exe = Path(sys.executable).parent / "elyra-pipeline"
    found = str(exe) if exe.exists() else shutil.which("elyra-pipeline")
    if not found:
        raise ConfigError("elyra-pipeline not found: pip install 'oscar-elyra[elyra]'")
    return found


def prepare_workspace(workspace: Path) -> Path:
    """Fresh copies of the project's notebooks/ and pipelines/ in ``workspace``."""
    root = project_root()
    workspace.mkdir(parents=True, exist_ok=True)
    for sub in ("notebooks", "pipelines"):
        target = workspace / sub
        if target.exists():
            # keep earlier runs' outputs (notebooks/runs) but refresh everything else
            for item in target.iterdir():
                if item.name != "runs":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        shutil.copytree(root / sub, target, dirs_exist_ok=True)
    return workspace


def pipeline_env(cluster: Any, runtime_dir: Path) -> dict[str, str]:
    """This process's environment pointed at ``cluster`` (no stray OSCAR_/ELYRA_ settings)."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSCAR_", "ELYRA_"))}
    env.update(cluster.env())
    env["JUPYTER_RUNTIME_DIR"] = str(runtime_dir)
    return env


def run_pipeline(name: str, workspace: Path, env: dict[str, str]) -> dict[str, Any]:
    """``elyra-pipeline run pipelines/<name>.pipeline`` in ``workspace``; its report's details."""
    from oscar_elyra.artifacts import read_manifest

    started = time.monotonic()
    proc = subprocess.run(
        [_elyra_pipeline(), "run", f"pipelines/{name}.pipeline"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        from oscar_elyra.redact import redact

        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise OscarError(f"elyra-pipeline run {name}.pipeline failed:\n{redact(tail)}")
    manifest = read_manifest(workspace / "notebooks" / "runs" / "report.manifest.json")
    files = {Path(a.name).suffix.lstrip("."): a for a in manifest.artifacts}
    return {
        "pipeline": f"pipelines/{name}.pipeline",
        "run": manifest.run,
        "seconds": round(time.monotonic() - started, 1),
        "accuracy": manifest.extra.get("accuracy"),
        "report_html": files["html"].path,
        "report_png": files["png"].path,
        "predictions_csv": files["csv"].path,
        "report_uri": files["html"].uri,
    }


def run_demo(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    pipelines: Sequence[str] = PIPELINES,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Start the embedded cluster with examples, run the example pipelines, stop the cluster.

    ``data_dir`` (default: a new temporary folder) holds the cluster's data (``cluster/``)
    and the workspace the pipelines run in (``workspace/``), kept afterwards. Returns
    ``{"workspace", "pipelines": {name: {run, seconds, accuracy, report_html, ...}}}``.
    """
    from oscar_elyra.local import LocalCluster

    base = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="oscar-elyra-demo-"))
    workspace = prepare_workspace(base / "workspace")
    results: dict[str, Any] = {}
    echo(f"Starting the embedded OSCAR cluster in {base / 'cluster'} ...")
    with LocalCluster(base / "cluster") as cluster:
        cluster.deploy_examples()
        env = pipeline_env(cluster, base / "jupyter-runtime")
        echo(f"Cluster up at {cluster.endpoint} (services: cowsay, grayify, digits)")
        for name in pipelines:
            echo(f"elyra-pipeline run pipelines/{name}.pipeline ...")
            info = run_pipeline(name, workspace, env)
            results[name] = info
            accuracy = info["accuracy"]
            score = f", accuracy {accuracy:.0%}" if accuracy is not None else ""
            echo(f"  done in {info['seconds']} s{score}; report: {info['report_html']}")
    echo(f"Workspace (notebooks as executed, manifests, reports): {workspace}")
    return {"workspace": str(workspace), "pipelines": results}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``python -m oscar_elyra.demo_pipelines [DATA_DIR]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run_demo(args[0] if args else None)
    except OscarError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
