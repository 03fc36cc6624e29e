"""P2 and P3: invocation benchmarks against the embedded cluster, side by side.

P2  peak RSS above the process's baseline (VmHWM, reset via /proc/self/clear_refs)
    of one sync ``/run`` with a large file input:
    ``oscar_elyra.run`` vs ``oscar-python``'s ``Client.run_service`` (installed by this
    script into its own venv under benchmarks/out/, never into the project). Goal: <= 64 MB.
P3  ``oscar_elyra.map`` of N files through an async service whose jobs take t seconds on a
    cluster running K jobs at once, vs the ideal N*t/K and vs the cluster's own floor (every
    input submitted at once, then waited for). Goals (issue 14, at N = 1,000): exactly K in
    flight within 1.05x the floor and 1.1x the ideal; 2K in flight within 1.1x the ideal.

    python benchmarks/bench_invoke.py                     # P2 with 1024 MB, P3 N=1000 K=8 t=1
    python benchmarks/bench_invoke.py --size-mb 256 --only p2
    python benchmarks/bench_invoke.py --n 200 --k 4 --t 0.5 --only p3

Rows for RESULTS.md: ``out/invoke-p2.json`` and ``out/invoke-p3-n<N>.json`` (one file per N, so
``make bench``'s smaller N never replaces the N = 1,000 figure recorded separately).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import row, save

from oscar_elyra.invoke import map as run_map
from oscar_elyra.invoke import submit, wait
from oscar_elyra.local import LocalCluster
from oscar_elyra.session import connect

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

# Shared by both probes (each runs in its own interpreter): peak RSS, reset to a baseline.
PROBE_HWM = """
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM"))
"""

PROBE_ELYRA = """
import json, sys, time
from oscar_elyra.invoke import run
from oscar_elyra.session import connect
from pathlib import Path
client = connect().client
client.service_token(sys.argv[1])
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # peak RSS (VmHWM) reset to the current RSS: the baseline
base = hwm()
t0 = time.perf_counter()
res = run(sys.argv[1], Path(sys.argv[2]), client=client, timeout=3600)
dt = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"base": base, "peak": peak, "seconds": dt, "answer": res.text.strip()}))
"""

PROBE_OSCAR_PYTHON = """
import json, os, sys, time
from oscar_python.client import Client
client = Client({"cluster_id": "bench", "endpoint": os.environ["OSCAR_ENDPOINT"],
                 "user": os.environ["OSCAR_USER"], "password": os.environ["OSCAR_PASSWORD"],
                 "ssl": False})
token = client._get_token(sys.argv[1])
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # peak RSS (VmHWM) reset to the current RSS: the baseline
base = hwm()
t0 = time.perf_counter()
resp = client.run_service(sys.argv[1], input=sys.argv[2], token=token, timeout=3600)
dt = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"base": base, "peak": peak, "seconds": dt, "answer": resp.text.strip(),
                  "status": resp.status_code}))
"""


def oscar_python_venv() -> Path:
    """A venv with oscar-python (benchmark-only dependency), created once."""
    venv = OUT / "venv-oscar-python"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import oscar_python"], capture_output=True).returncode:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "oscar-python"], check=True)
    return py


def make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(block)


def probe(python: str, code: str, service: str, src: Path, env: dict) -> dict:
    p = subprocess.run(
        [python, "-c", code, service, str(src)],
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def p2(size_mb: int, work: Path) -> dict:
    print(f"\n== P2: peak RSS of a {size_mb} MB sync input ==", flush=True)
    opy = oscar_python_venv()
    src = work / "input.bin"
    make_file(src, size_mb)
    with LocalCluster(work / "cluster") as c:
        c.apply_service(
            {"name": "bench-size", "image": "local", "script": 'wc -c < "$INPUT_FILE_PATH"'}
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSCAR_")}
        env.update(c.env())
        rows = {}
        for name, py, code in [
            ("oscar_elyra.run", sys.executable, PROBE_HWM + PROBE_ELYRA),
            ("oscar-python run_service", str(opy), PROBE_HWM + PROBE_OSCAR_PYTHON),
        ]:
            r = probe(py, code, "bench-size", src, env)
            rows[name] = r
            if "error" in r:
                print(f"{name:<26} ERROR {r['error']}", flush=True)
                continue
            delta = (r["peak"] - r["base"]) / 2**20
            r["delta_mb"] = round(delta, 1)
            ok = r["answer"].strip() == str(size_mb << 20)
            print(
                f"{name:<26} peak over baseline {delta:8.1f} MB   {r['seconds']:6.1f} s"
                f"   answer ok={ok}",
                flush=True,
            )
    a, b = rows["oscar_elyra.run"], rows["oscar-python run_service"]
    if "delta_mb" in a and "delta_mb" in b:
        print(
            f"ratio oscar_elyra/oscar-python memory: {a['delta_mb'] / max(b['delta_mb'], 1):.3f}"
            f"   (goal: oscar_elyra <= 64 MB: {'met' if a['delta_mb'] <= 64 else 'MISSED'})"
        )
        print(f"ratio oscar_elyra/oscar-python time:   {a['seconds'] / b['seconds']:.3f}")
    src.unlink(missing_ok=True)
    return rows


def p3(n: int, k: int, t: float, concurrency: list[int], work: Path) -> dict:
    print(f"\n== P3: map of {n} files, async, K={k} concurrent jobs of t={t} s ==", flush=True)
    src = work / "p3-in"
    src.mkdir(exist_ok=True)
    for i in range(n):
        (src / f"f{i:05d}.txt").write_text(str(i))
    ideal = n * t / k
    rows = {}
    with LocalClusterK(work / "cluster-p3", k) as c:
        c.apply_service(
            {
                "name": "bench-sleep",
                "image": "local",
                "script": 'sleep "$T"; n=$(basename "$INPUT_FILE_PATH"); echo "$n";'
                ' cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/${n%.*}.out"',
                "environment": {"variables": {"T": str(t)}},
                "input": [{"storage_provider": "minio.default", "path": "bench-sleep/in"}],
                "output": [{"storage_provider": "minio.default", "path": "bench-sleep/out"}],
            }
        )
        client = connect(
            endpoint=c.endpoint, user=c.user, password=c.password, ssl_verify=False
        ).client
        # the cluster's own floor: every input submitted at once, then waited for
        t0 = time.perf_counter()
        jobs = submit("bench-sleep", sorted(src.iterdir()), client=client)
        wait(jobs, timeout=3600)
        dt = time.perf_counter() - t0
        rows["all-at-once"] = {"seconds": dt, "ideal": ideal, "ratio": dt / ideal}
        print(
            f"submit all + wait (floor) {dt:6.1f} s   ideal N*t/K {ideal:7.1f} s   "
            f"ratio {dt / ideal:.3f}",
            flush=True,
        )
        client.delete_jobs("bench-sleep", all=True)
        for conc in concurrency:
            out = work / f"p3-out-{conc}"
            t0 = time.perf_counter()
            res = run_map(
                "bench-sleep",
                src,
                concurrency=conc,
                output_dir=out,
                client=client,
                progress=False,
                timeout=600,
            )
            dt = time.perf_counter() - t0
            counts = res.counts()
            rows[conc] = {"seconds": dt, "ideal": ideal, "ratio": dt / ideal, "counts": counts}
            print(
                f"map concurrency={conc:<3} {dt:8.1f} s   ideal N*t/K {ideal:7.1f} s   "
                f"ratio {dt / ideal:.3f}   vs floor {dt / rows['all-at-once']['seconds']:.3f}"
                f"   {counts}   "
                f"(goal <= 1.1: {'met' if dt / ideal <= 1.1 else 'MISSED'})",
                flush=True,
            )
            client.delete_jobs("bench-sleep", all=True)
    return rows


class LocalClusterK:
    """A LocalCluster with max_jobs=K (context manager)."""

    def __init__(self, data_dir: Path, k: int) -> None:
        self.c = LocalCluster(data_dir, max_jobs=k)

    def __enter__(self):
        return self.c.start()

    def __exit__(self, *exc) -> None:
        self.c.stop()


def rows_of(results: dict, args: argparse.Namespace) -> list[dict]:
    """Result rows for RESULTS.md."""
    rows = []
    if "p2" in results:
        a = results["p2"]["oscar_elyra.run"]
        b = results["p2"]["oscar-python run_service"]
        if "delta_mb" in a:
            rows.append(
                row(
                    f"sync /run of a {args.size_mb} MB input: peak RSS above baseline",
                    f"{a['delta_mb']:.0f} MB",
                    f"oscar-python {b['delta_mb']:.0f} MB"
                    if "delta_mb" in b
                    else "oscar-python failed",
                    a["delta_mb"] / max(b["delta_mb"], 1) if "delta_mb" in b else None,
                    "<= 64 MB",
                    a["delta_mb"] <= 64,
                )
            )
    if "p3" in results:
        p3r = results["p3"]
        floor = p3r["all-at-once"]
        label = f"N={args.n}, K={args.k}, t={args.t:g} s"
        rows.append(
            row(
                f"cluster floor: submit all then wait ({label})",
                f"{floor['ratio']:.3f}x ideal",
                f"ideal N*t/K {floor['ideal']:.1f} s",
                floor["ratio"],
                "information",
                None,
            )
        )
        for conc, r in p3r.items():
            if conc == "all-at-once":
                continue
            vs_floor = r["seconds"] / floor["seconds"]
            exact = int(conc) == args.k
            if args.n < 1000:  # the goals are at the size: information here
                goal, met = "information (the goals are at N=1,000)", None
            elif exact:
                goal, met = (
                    "<= 1.05x floor and <= 1.1x ideal",
                    vs_floor <= 1.05 and r["ratio"] <= 1.1,
                )
            else:
                goal, met = "<= 1.1x ideal", r["ratio"] <= 1.1
            rows.append(
                row(
                    f"map, exactly K = {conc} in flight ({label})"
                    if exact
                    else f"map, {conc} in flight ({label})",
                    f"{r['ratio']:.3f}x ideal",
                    f"floor {floor['ratio']:.3f}x ideal",
                    vs_floor,
                    goal,
                    met,
                    "map starts jobs by POST /job" if exact else "",
                )
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="P2 input size (MB)")
    ap.add_argument("--n", type=int, default=1000, help="P3 number of files")
    ap.add_argument("--k", type=int, default=8, help="P3 cluster job slots")
    ap.add_argument("--t", type=float, default=1.0, help="P3 seconds per job")
    ap.add_argument("--concurrency", type=int, nargs="*", help="P3 map concurrency (default K, 2K)")
    ap.add_argument("--only", choices=["p2", "p3"])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        work = Path(tmp)
        if args.only in (None, "p2"):
            results["p2"] = p2(args.size_mb, work)
        if args.only in (None, "p3"):
            conc = args.concurrency or [args.k, 2 * args.k]
            results["p3"] = p3(args.n, args.k, args.t, conc, work)
    rows = rows_of(results, args)
    if "p2" in results:
        save("invoke-p2", [r for r in rows if r["what"].startswith("sync /run")])
    if "p3" in results:
        save(f"invoke-p3-n{args.n}", [r for r in rows if not r["what"].startswith("sync /run")])
    dest = OUT / "bench_invoke.json"
    previous = json.loads(dest.read_text()) if dest.exists() else {}
    previous.update(results)  # --only keeps the other benchmark's last figures
    dest.write_text(json.dumps(previous, indent=2, default=str))
    print(f"\nresults: {OUT / 'bench_invoke.json'}")


if __name__ == "__main__":
    main()
