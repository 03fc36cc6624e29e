"""DEEPaaS sync call: ``oe.deepaas.predict`` vs a plain ``/run`` of the same request.

Starts an embedded cluster with the ``deepaas-digits`` example (the real ``deepaas``
package behind ``deepaas-cli``), then times, alternately, ``--n`` calls of each:

* plain: the JSON request (``oscar-files`` built in memory) posted with ``requests`` to
  ``/run/deepaas-digits`` with the service token, the answer read as text;
* oe: ``oscar_elyra.deepaas.predict(...)`` (argument check from the cached ``help``,
  streamed body, answer parsed to the prediction).

Prints the medians and the overhead ratio oe/plain (goal: <= 1.05).

    python benchmarks/bench_deepaas.py            # n=12
    python benchmarks/bench_deepaas.py --n 30
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from _results import row, save

from oscar_elyra import deepaas
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.fdl import load_fdl
from oscar_elyra.local import LocalCluster
from oscar_elyra.local.examples import examples_dir
from oscar_elyra.session import connect


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="calls of each kind")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-deepaas-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster")
        cluster.start()
        try:
            cluster.apply_service(
                next(s for s in _example_services() if s["name"] == "deepaas-digits")
            )
            sess = connect(endpoint=cluster.endpoint, user=cluster.user, password=cluster.password)
            token = sess.client.service_token("deepaas-digits")
            (png,) = sample_digits(Path(tmp) / "digits", count=1)
            body = json.dumps(
                {
                    "top_k": 3,
                    "oscar-files": [
                        {
                            "key": "image",
                            "file_format": "png",
                            "data": base64.b64encode(png.read_bytes()).decode(),
                        }
                    ],
                }
            )
            url = f"{cluster.endpoint}/run/deepaas-digits"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            http = requests.Session()

            def plain() -> None:
                r = http.post(url, data=body, headers=headers, timeout=300)
                r.raise_for_status()
                assert "return:" in r.text

            def oe() -> None:
                pred = deepaas.predict(
                    "deepaas-digits", files={"image": png}, session=sess, top_k=3
                )
                assert pred.json()["digit"] == 0

            plain(), oe()  # warm-up: model trained and cached, help fetched once
            times: dict[str, list[float]] = {"plain": [], "oe": []}
            for _ in range(opts.n):
                for name, fn in (("plain", plain), ("oe", oe)):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
        finally:
            cluster.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["oe"] / med["plain"]
    print(
        json.dumps(
            {
                "n": opts.n,
                "plain_median_s": round(med["plain"], 4),
                "oe_median_s": round(med["oe"], 4),
                "overhead_ratio": round(ratio, 4),
                "goal": "<= 1.05",
            }
        )
    )
    save(
        "deepaas",
        [
            row(
                "DEEPaaS sync predict (deepaas-digits), median",
                f"{med['oe'] * 1e3:.0f} ms",
                f"plain /run POST {med['plain'] * 1e3:.0f} ms",
                ratio,
                "<= 1.05x",
                ratio <= 1.05,
            )
        ],
    )
    return 0 if ratio <= 1.05 else 1


def _example_services() -> list[dict]:
    return load_fdl(examples_dir() / "deepaas-digits" / "deepaas-digits.yaml")


if __name__ == "__main__":
    sys.exit(main())
