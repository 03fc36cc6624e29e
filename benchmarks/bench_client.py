"""P1: sync invoke of a small payload — oscar_elyra vs a raw ``requests.post``, same run.

Starts an embedded cluster in a temp dir, deploys a minimal echo service (``cat`` of the
input, so the script costs as little as possible and client overhead shows), then times,
interleaved round by round on the same ``/run`` endpoint with the same service token:

* ``requests.post``          — a raw POST per call (new connection each time), the baseline;
* ``requests.Session.post``  — raw POST on a kept-alive connection (for reference);
* ``OscarClient.post_run``   — this package's client (pooled session, typed errors);
* ``oscar_elyra.invoke.run`` — the full user-facing call (body prep, streaming decode,
  ``Result``), when available.

Prints medians and ratios to the ``requests.post`` baseline (goal <= 1.05x).

    python benchmarks/bench_client.py [--rounds 60] [--service cowsay]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable

import requests
from _results import row, save

from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig
from oscar_elyra.local import LocalCluster

ECHO = {
    "name": "bench-echo",
    "image": "alpine",
    "script": '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n',
    "memory": "128Mi",
    "cpu": "0.5",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--service", default="bench-echo", help="bench-echo (default) or cowsay")
    args = parser.parse_args()

    payload = {"message": "hello from P1"}
    body = json.dumps(payload).encode()
    with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp, LocalCluster(tmp) as cluster:
        cfg = ClusterConfig(
            cluster_id="local",
            endpoint=cluster.endpoint,
            user=cluster.user,
            password=cluster.password,
            ssl_verify=False,
            source="bench",
        )
        client = OscarClient(cfg)
        if args.service == "bench-echo":
            client.apply_service(ECHO)
        else:
            cluster.deploy_examples()
        name = args.service
        url = f"{client.endpoint}/run/{name}"
        token = client.service_token(name)
        headers = {"Authorization": f"Bearer {token}"}
        session = requests.Session()

        def raw_post() -> bytes:
            r = requests.post(url, data=body, headers=headers, timeout=60)
            r.raise_for_status()
            return r.content

        def raw_session() -> bytes:
            r = session.post(url, data=body, headers=headers, timeout=60)
            r.raise_for_status()
            return r.content

        def post_run() -> bytes:
            with client.post_run(name, body) as r:
                return r.content

        cases: dict[str, Callable[[], object]] = {
            "requests.post": raw_post,
            "requests.Session.post": raw_session,
            "OscarClient.post_run": post_run,
        }
        try:
            from oscar_elyra.invoke import run

            def invoke_run() -> object:
                return run(name, payload, client=client).bytes

            cases["oscar_elyra.invoke.run"] = invoke_run
        except ImportError:
            pass

        expected = raw_post()
        for label, fn in cases.items():
            got = fn()
            if label != "oscar_elyra.invoke.run" and name == "bench-echo":
                assert got == expected, (label, got[:100])
        for _ in range(args.warmup):
            for fn in cases.values():
                fn()
        times: dict[str, list[float]] = {k: [] for k in cases}
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        for i in range(args.rounds):
            order = list(cases.items())
            if i % 2:
                order.reverse()  # no case always goes first
            for label, fn in order:
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
                cpu[label].append(time.process_time() - c0)
        client.close()
        session.close()

    base = statistics.median(times["requests.post"])
    raw = times["requests.post"]
    print(
        f"P1 sync invoke, service {name!r}, payload {len(body)} B, {args.rounds} rounds "
        "(interleaved), embedded cluster"
    )
    print(
        f"{'case':26s} {'median ms':>10s} {'p90 ms':>8s} {'ratio':>7s} {'paired':>7s} "
        f"{'client CPU ms':>14s}"
    )
    verdict = {}
    for label, values in times.items():
        med = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        # paired: median over rounds of (this case / requests.post in the same round)
        paired = statistics.median(v / r for v, r in zip(values, raw, strict=True))
        verdict[label] = paired
        print(
            f"{label:26s} {med * 1e3:10.2f} {p90 * 1e3:8.2f} {med / base:6.3f}x "
            f"{paired:6.3f}x {statistics.median(cpu[label]) * 1e3:14.2f}"
        )
    worst = max(v for k, v in verdict.items() if k != "requests.Session.post")
    rows = [
        row(
            f"sync invoke overhead ({label}), median",
            f"{statistics.median(times[label]) * 1e3:.1f} ms",
            f"requests.post {base * 1e3:.1f} ms",
            verdict[label],
            "<= 1.05x (paired median)",
            verdict[label] <= 1.05,
        )
        for label in times
        if label not in ("requests.post", "requests.Session.post")
    ]
    save("client", rows)
    print(
        f"goal <= 1.05x vs requests.post (paired median): "
        f"{'met' if worst <= 1.05 else 'NOT met'} (worst {worst:.3f}x)"
    )


if __name__ == "__main__":
    main()
