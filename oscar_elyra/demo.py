"""The main job (``make demo`` / ``python -m oscar_elyra.demo``).

1. Starts the embedded OSCAR-compatible cluster (SeaweedFS S3 + OSCAR REST API) in a fresh
   temporary data dir and deploys the bundled example services.
2. Invokes each service through the client library, printing what came back: ``cowsay`` with
   a message, ``grayify`` with a colour image, ``digits`` with handwritten digits.
3. Runs the example pipelines ``pipelines/digits_async.pipeline`` and
   ``pipelines/digits_sync.pipeline`` end to end with plain ``elyra-pipeline run`` in a copy of
   the project's notebooks (``--workspace``, default ``runs/demo``; Elyra's local runtime runs
   notebooks in place, so the checkout stays clean) and prints where the reports are. Then
   stops the cluster.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from oscar_elyra.artifacts import read_manifest
from oscar_elyra.errors import ConfigError, OscarError, is_bad_input
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.invoke import run
from oscar_elyra.local import LocalCluster
from oscar_elyra.redact import redact
from oscar_elyra.session import connect

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


def run_with_elyra(name: str, workspace: Path, env: dict[str, str]) -> dict[str, Any]:
    """``elyra-pipeline run pipelines/<name>.pipeline`` in ``workspace``; its report's details."""
    started = time.monotonic()
    proc = subprocess.run(
        [_elyra_pipeline(), "run", f"pipelines/{name}.pipeline"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
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


def _colour_png(size: int = 96) -> bytes:
    from PIL import Image  # optional heavy dependency (local extra)

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 255 // size, y * 255 // size, 160) for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def invoke_examples(client, out_dir: Path, echo=print) -> None:
    """Call cowsay, grayify and digits once each (digits on ten samples) and print the answers."""
    echo('\n== cowsay (sync) <- {"message": "Hello from oscar-elyra!"}')
    echo(run("cowsay", {"message": "Hello from oscar-elyra!"}, client=client).text.rstrip())

    echo("\n== grayify (sync) <- a 96x96 colour gradient PNG")
    res = run("grayify", _colour_png(), out_dir / "grayify-gradient.png", client=client)
    echo(f"   got {res.path.stat().st_size} bytes of PNG -> {res.path}")

    echo("\n== digits (sync) <- handwritten digits from scikit-learn's data set")
    correct = 0
    samples = sample_digits(out_dir / "digits", count=10)
    for png in samples:
        answer = run("digits", png, client=client).json()
        truth = int(png.stem.split("-")[1])
        correct += answer["digit"] == truth
        mark = "ok" if answer["digit"] == truth else "MISS"
        p = max(answer["probabilities"])
        echo(f"   {png.name:16s} predicted {answer['digit']}  p={p:.2f}  {mark}")
    echo(f"   {correct}/{len(samples)} correct")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oscar_elyra.demo", description=__doc__)
    parser.add_argument("--workspace", default="runs/demo", help="where outputs and reports go")
    parser.add_argument(
        "--no-pipelines", action="store_true", help="only invoke the example services"
    )
    args = parser.parse_args(argv)
    workspace = Path(args.workspace).resolve()

    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="oscar-elyra-demo-") as data_dir:
            print("== Starting the embedded OSCAR cluster (SeaweedFS S3 + OSCAR REST API) ...")
            with LocalCluster(data_dir) as cluster:
                print(f"   API {cluster.endpoint}   S3 {cluster.s3_endpoint}")
                print(f"== Deployed example services: {', '.join(cluster.deploy_examples())}")
                client = connect(
                    endpoint=cluster.endpoint, user=cluster.user, password=cluster.password
                ).client
                invoke_examples(client, workspace / "examples")
                if not args.no_pipelines:
                    prepare_workspace(workspace)
                    env = pipeline_env(cluster, Path(data_dir) / "jupyter-runtime")
                    for name in PIPELINES:
                        print(f"\n== elyra-pipeline run pipelines/{name}.pipeline ...")
                        info = run_with_elyra(name, workspace, env)
                        acc = info["accuracy"]
                        score = f", accuracy {acc:.0%}" if acc is not None else ""
                        print(f"   done in {info['seconds']} s{score}")
                        print(f"   report: {info['report_html']}")
                        print(f"   stored: {info['report_uri']}")
                print("\n== Stopping the cluster")
    except OscarError as exc:
        print(f"Error: {redact(str(exc))}", file=sys.stderr)
        return 2 if is_bad_input(exc) else 1
    print(f"== Done in {time.monotonic() - t0:.0f} s; outputs in {workspace}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
