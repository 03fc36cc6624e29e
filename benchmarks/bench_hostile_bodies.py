"""H1: the API server's memory while unauthenticated clients send big bodies.

Starts an embedded cluster in a temp dir, measures the API server's RSS (the server
process alone, not SeaweedFS) at rest, then sends ``--clients`` unauthenticated POSTs of
``--mb`` MB each at once (to ``/system/services``, ``/run/<service>`` and ``/job/<service>``
in turn), sampling the RSS every 10 ms until all are answered. Prints idle and peak RSS,
the growth (goal: under 20 MB for 8 x 50 MB), the answers' status codes, how many bytes
each client had sent when its answer came (credentials are checked on the headers: the
answer comes before the body is read) and how much of the body it could send in all (the
clients are naive: they go on sending after the answer; the server reads and drops it).

    python benchmarks/bench_hostile_bodies.py [--clients 8] [--mb 50]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from urllib.parse import urlsplit

import psutil

from oscar_elyra.local import LocalCluster

CHUNK = b"x" * (256 * 1024)


def send(endpoint: str, path: str, size: int, out: list, i: int) -> None:
    """POST ``size`` bytes without credentials, all of them whatever the answer; record
    (status line, bytes sent when it came, bytes sent in all)."""
    url = urlsplit(endpoint)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {size}\r\n\r\n"
    sent, status, at = 0, b"", -1
    with socket.create_connection((url.hostname, url.port), timeout=120) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        while sent < size:
            try:
                sent += sock.send(CHUNK[: min(len(CHUNK), size - sent)])
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
            if not status:
                try:
                    status, at = sock.recv(64).split(b"\r\n", 1)[0], sent
                except BlockingIOError:
                    pass
                except OSError:
                    break
        sock.setblocking(True)
        if not status:
            try:
                status, at = sock.recv(64).split(b"\r\n", 1)[0], sent
            except OSError as exc:
                status = repr(exc).encode()
    out[i] = (status.decode(errors="replace"), at, sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--mb", type=int, default=50)
    args = ap.parse_args()
    size = args.mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(tmp) as cluster:
        cluster.deploy_examples()
        proc = psutil.Process(cluster.pid)
        time.sleep(1.0)  # let start-up allocations settle before the idle figure
        idle = proc.memory_info().rss
        paths = ["/system/services", "/run/cowsay", "/job/cowsay", "/run/no-such-service"]
        out: list = [None] * args.clients
        threads = [
            threading.Thread(target=send, args=(cluster.endpoint, paths[i % 4], size, out, i))
            for i in range(args.clients)
        ]
        peak = idle
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)
        peak = max(peak, proc.memory_info().rss)
    mib = 1024 * 1024
    print(f"clients: {args.clients} x {args.mb} MB, unauthenticated")
    print(f"server RSS idle {idle / mib:.1f} MiB, peak {peak / mib:.1f} MiB")
    print(f"growth {(peak - idle) / mib:.1f} MiB (goal < 20 MiB)")
    for i, (status, at, sent) in enumerate(out):
        print(
            f"  {paths[i % 4]:<24} {status:<28} answered after {at / mib:.1f} MiB, "
            f"{sent / mib:.1f} MiB sent in all"
        )


if __name__ == "__main__":
    main()
