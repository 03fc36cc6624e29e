"""The main job (``make demo`` / ``python -m oscar_elyra.demo``).

Starts the embedded OSCAR-compatible cluster in a temporary data dir, deploys the bundled
example services and invokes each over the real OSCAR REST API, printing what came back:

- ``cowsay`` synchronously with a message,
- ``grayify`` synchronously with a generated colour image (the grayscale PNG is saved),
- ``digits`` synchronously with handwritten digits from scikit-learn's data set, and once
  asynchronously by uploading an image to its input bucket and waiting for the output.

Then stops the cluster. Uses plain ``requests`` and ``minio`` only.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import requests


def _digit_png(image_8x8, scale: int = 4) -> bytes:
    """A digit of sklearn's data set (8x8, values 0..16) as a PNG, upscaled."""
    import numpy as np
    from PIL import Image

    arr = (np.asarray(image_8x8, dtype=float) * (255.0 / 16.0)).clip(0, 255).astype("uint8")
    img = Image.fromarray(arr, mode="L").resize((8 * scale, 8 * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _colour_png(size: int = 96) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 255 // size, y * 255 // size, 160) for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _run(endpoint: str, service: tuple[str, str], body: bytes | str) -> requests.Response:
    """POST ``body`` to ``/run/<name>`` with its bearer token; ``service=(name, token)``."""
    name, token = service
    r = requests.post(
        f"{endpoint}/run/{name}",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    r.raise_for_status()
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oscar_elyra.demo", description=__doc__)
    parser.add_argument("--output-dir", default="runs/demo", help="where outputs are saved")
    args = parser.parse_args(argv)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    from minio import Minio
    from PIL import Image
    from sklearn.datasets import load_digits

    from oscar_elyra.local import LocalCluster

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oscar-elyra-demo-") as data_dir:
        print("== Starting the embedded OSCAR cluster (SeaweedFS S3 + OSCAR REST API) ...")
        with LocalCluster(data_dir) as cluster:
            print(f"   API {cluster.endpoint}   S3 {cluster.s3_endpoint}")
            names = cluster.deploy_examples()
            print(f"== Deployed example services: {', '.join(names)}")
            with cluster.session() as s:
                services = {
                    svc["name"]: svc for svc in s.get(f"{cluster.endpoint}/system/services").json()
                }
            tok = {n: (n, services[n]["token"]) for n in names}
            for n in names:
                print(f"   {n:8s} image {services[n]['image']}")

            print('\n== cowsay (sync) <- {"message": "Hello from oscar-elyra!"}')
            r = _run(
                cluster.endpoint, tok["cowsay"], json.dumps({"message": "Hello from oscar-elyra!"})
            )
            print(r.text.rstrip("\n"))

            print("\n== grayify (sync) <- a 96x96 colour gradient PNG")
            r = _run(cluster.endpoint, tok["grayify"], base64.b64encode(_colour_png()))
            png = base64.b64decode(r.text)
            dest = out_dir / "grayify-gradient.png"
            dest.write_bytes(png)
            with Image.open(io.BytesIO(png)) as img:
                print(
                    f"   got a {img.format} {img.size[0]}x{img.size[1]} mode {img.mode} "
                    f"({len(png)} bytes) -> {dest}"
                )

            print("\n== digits (sync) <- handwritten digits from scikit-learn's data set")
            digits = load_digits()
            correct = 0
            picks = [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
            for i in picks:
                r = _run(
                    cluster.endpoint, tok["digits"], base64.b64encode(_digit_png(digits.images[i]))
                )
                res = json.loads(base64.b64decode(r.text))
                ok = res["digit"] == int(digits.target[i])
                correct += ok
                print(
                    f"   sample {i:3d}: true {digits.target[i]}  predicted {res['digit']}  "
                    f"p={max(res['probabilities']):.2f}  {'ok' if ok else 'MISS'}"
                )
            print(f"   {correct}/{len(picks)} correct")

            print(
                "\n== digits (async) <- upload digits/in/seven.png, wait for digits/out/seven.json"
            )
            s3 = Minio(
                cluster.s3_endpoint.split("://", 1)[1],
                cluster.s3_access_key,
                cluster.s3_secret_key,
                secure=False,
            )
            seven = next(i for i, t in enumerate(digits.target) if t == 7)
            data = _digit_png(digits.images[seven])
            t1 = time.monotonic()
            s3.put_object(
                "digits", "in/seven.png", io.BytesIO(data), len(data), content_type="image/png"
            )
            result = None
            while time.monotonic() - t1 < 60:
                try:
                    result = json.loads(s3.get_object("digits", "out/seven.json").read())
                    break
                except Exception:
                    time.sleep(0.2)
            if result is None:
                print("   no output within 60 s", file=sys.stderr)
                return 1
            with cluster.session() as s:
                jobs = s.get(f"{cluster.endpoint}/system/logs/digits").json()["jobs"]
            print(f"   output after {time.monotonic() - t1:.1f} s: {json.dumps(result)[:90]}...")
            states = ", ".join(f"{k}={v['status']}" for k, v in jobs.items())
            print(f"   jobs: {states}")
            print("\n== Stopping the cluster")
    print(f"== Done in {time.monotonic() - t0:.1f} s; outputs in {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
