"""The main job (``make demo`` / ``python -m oscar_elyra.demo``).

1. Starts the embedded OSCAR-compatible cluster (SeaweedFS S3 + OSCAR REST API) in a fresh
   temporary data dir and deploys the bundled example services.
2. Invokes each service through the client library, printing what came back: ``cowsay`` with
   a message, ``grayify`` with a colour image, ``digits`` with handwritten digits.
3. Runs the example pipelines ``pipelines/digits_async.pipeline`` and
   ``pipelines/digits_sync.pipeline`` end to end with plain ``elyra-pipeline run`` in a copy of
   the project's notebooks (``--workspace``, default ``runs/demo``) and prints where the
   reports are. Then stops the cluster.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from oscar_elyra.errors import OscarError


def _colour_png(size: int = 96) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 255 // size, y * 255 // size, 160) for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def invoke_examples(client, out_dir: Path, echo=print) -> None:
    """Call cowsay, grayify and digits once each (digits on ten samples) and print the answers."""
    from oscar_elyra.invoke import run
    from oscar_elyra.ops import sample_digits

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

    from oscar_elyra.client import OscarClient
    from oscar_elyra.config import resolve_cluster
    from oscar_elyra.demo_pipelines import PIPELINES, pipeline_env, prepare_workspace, run_pipeline
    from oscar_elyra.local import LocalCluster

    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="oscar-elyra-demo-") as data_dir:
            print("== Starting the embedded OSCAR cluster (SeaweedFS S3 + OSCAR REST API) ...")
            with LocalCluster(data_dir) as cluster:
                print(f"   API {cluster.endpoint}   S3 {cluster.s3_endpoint}")
                print(f"== Deployed example services: {', '.join(cluster.deploy_examples())}")
                client = OscarClient(resolve_cluster(env=cluster.env()))
                invoke_examples(client, workspace / "examples")
                if not args.no_pipelines:
                    prepare_workspace(workspace)
                    env = pipeline_env(cluster, Path(data_dir) / "jupyter-runtime")
                    for name in PIPELINES:
                        print(f"\n== elyra-pipeline run pipelines/{name}.pipeline ...")
                        info = run_pipeline(name, workspace, env)
                        acc = info["accuracy"]
                        score = f", accuracy {acc:.0%}" if acc is not None else ""
                        print(f"   done in {info['seconds']} s{score}")
                        print(f"   report: {info['report_html']}")
                        print(f"   stored: {info['report_uri']}")
                print("\n== Stopping the cluster")
    except OscarError as exc:
        from oscar_elyra.redact import redact

        print(f"Error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    print(f"== Done in {time.monotonic() - t0:.0f} s; outputs in {workspace}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
