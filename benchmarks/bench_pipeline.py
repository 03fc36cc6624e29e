"""P5/P6: ``oscar-elyra run`` vs ``elyra-pipeline run``, measured side by side in one run.

P5  fan-out: a start script then k sleep-bound notebook branches (k = 1, 2, 4, 8). Speed-up =
    elyra wall time / oscar-elyra wall time (goal >= 0.8 * min(k, cores)), with the default
    workers (= cores) and, for information, with --workers k.
    The k = 4 speed-up must stay >= 2.
P6  per-notebook-node overhead: chains of 1 and 5 trivial notebooks, both runners;
    overhead per node = (T5 - T1) / 4 (goal <= 0.35 s), beside elyra's, plus the ratio
    of the 5-node totals.

Usage: python benchmarks/bench_pipeline.py [--sleep S] [--ks 1,2,4,8] [--repeat N] [--only p6]
Each figure is the best of N runs, the runners interleaved.
Every command runs as a real subprocess (CLI start-up included) in a fresh copy of the files,
since Elyra overwrites the notebooks it runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import row, save

from oscar_elyra.pipeline.builder import node, pipeline, write_notebook, write_pipeline

BIN = Path(sys.executable).parent


def _fan_out(d: Path, k: int, sleep: float) -> Path:
    (d / "start.py").write_text("print('start')\n")
    write_notebook(d / "branch.ipynb", f"import time\ntime.sleep({sleep})\nprint('done')")
    start = node("start", "start.py")
    branches = []
    for i in range(k):
        # one notebook file per branch: Elyra writes each notebook back in place
        shutil.copy(d / "branch.ipynb", d / f"branch{i}.ipynb")
        branches.append(node(f"branch{i}", f"branch{i}.ipynb", parents=[start]))
    return write_pipeline(d / f"fan{k}.pipeline", pipeline([start, *branches], name=f"fan{k}"))


def _chain(d: Path, n: int) -> Path:
    nodes = []
    for i in range(n):
        write_notebook(d / f"nb{i}.ipynb", f"x = {i}\nprint(x)")
        nodes.append(node(f"nb{i}", f"nb{i}.ipynb", parents=nodes[-1:]))
    return write_pipeline(d / f"chain{n}.pipeline", pipeline(nodes, name=f"chain{n}"))


def _time(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return elapsed


def _once(make, runner: str, workers: int | None = None) -> float:
    """Wall time of one runner on a fresh copy of the pipeline."""
    with tempfile.TemporaryDirectory(prefix="bench-pl-") as tmp:
        d = Path(tmp)
        path = make(d)
        if runner == "elyra":
            cmd = [str(BIN / "elyra-pipeline"), "run", str(path)]
        else:
            cmd = [str(BIN / "oscar-elyra"), "run", str(path), "-q", "--run-dir", str(d / "run")]
            if workers:
                cmd += ["--workers", str(workers)]
        return _time(cmd, d)


def _measure(jobs: dict[str, tuple], repeat: int) -> dict[str, float]:
    """Best wall time of each job ``name -> (make, runner, workers)``, runs interleaved
    (elyra, ours, elyra, ours...) so load from other processes hits both alike."""
    best = {name: float("inf") for name in jobs}
    for _ in range(repeat):
        for name, (make, runner, workers) in jobs.items():
            best[name] = min(best[name], _once(make, runner, workers))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sleep", type=float, default=3.0, help="seconds each branch sleeps")
    ap.add_argument("--ks", default="1,2,4,8", help="fan-out widths")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    ap.add_argument("--only", choices=("p5", "p6"), help="one of the two benchmarks")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    ks = [int(k) for k in args.ks.split(",")] if args.only != "p6" else []
    rows: list[dict] = []

    if ks:
        print(f"P5 fan-out, {args.sleep:g} s sleep per notebook branch, {cores} cores")
        print(
            f"{'k':>3} {'elyra s':>8} {'ours s':>8} {'speed-up':>9} {'goal':>6} {'ok':>3}"
            f" {'ours -w k':>10} {'speed-up':>9}"
        )
    p5_ok = True
    for k in ks:
        make = lambda d, k=k: _fan_out(d, k, args.sleep)  # noqa: E731
        t = _measure(
            {
                "elyra": (make, "elyra", None),
                "ours": (make, "ours", None),
                "ours_k": (make, "ours", k),
            },
            args.repeat,
        )
        t_el, t_us, t_wk = t["elyra"], t["ours"], t["ours_k"]
        goal = 0.8 * min(k, cores)
        if k == 4:
            goal = max(goal, 2.0)  # issue 14: k = 4 stays >= 2x faster than elyra
        ok = t_el / t_us >= goal
        p5_ok &= ok
        rows.append(
            row(
                f"pipeline fan-out k={k} ({args.sleep:g} s notebooks), wall",
                f"{t_us:.2f} s",
                f"elyra-pipeline run {t_el:.2f} s",
                t_el / t_us,
                f">= {goal:.2g}x faster",
                ok,
            )
        )
        print(
            f"{k:>3} {t_el:8.2f} {t_us:8.2f} {t_el / t_us:9.2f} {goal:6.2f}"
            f" {'yes' if ok else 'NO':>3} {t_wk:10.2f} {t_el / t_wk:9.2f}",
            flush=True,
        )

    if args.only == "p5":
        save("pipeline", rows)
        print(f"\nP5 goal met for every k: {'yes' if p5_ok else 'NO'}")
        return
    print("\nP6 per-notebook-node overhead, chains of trivial notebooks")
    chain1 = lambda d: _chain(d, 1)  # noqa: E731
    chain5 = lambda d: _chain(d, 5)  # noqa: E731
    t = _measure(
        {
            "elyra1": (chain1, "elyra", None),
            "ours1": (chain1, "ours", None),
            "elyra5": (chain5, "elyra", None),
            "ours5": (chain5, "ours", None),
        },
        args.repeat,
    )
    res = {}
    for runner in ("elyra", "ours"):
        t1, t5 = t[f"{runner}1"], t[f"{runner}5"]
        res[runner] = (t1, t5, (t5 - t1) / 4)
        print(
            f"{runner:>6}: 1 node {t1:6.2f} s, 5 nodes {t5:6.2f} s,"
            f" per node {(t5 - t1) / 4:5.2f} s",
            flush=True,
        )
    per_node = res["ours"][2] / res["elyra"][2]
    total = res["ours"][1] / res["elyra"][1]
    print(
        f"ratio oscar-elyra/elyra: per node {per_node:.2f}, 5-node total {total:.2f};"
        f" goal <= 0.35 s a node: {'yes' if res['ours'][2] <= 0.35 else 'NO'}"
    )
    # a chain of 5 faster than a chain of 1 means the machine stalled during the
    # measurement: the figure says nothing then (rerun)
    sane = all(r[2] > 0 for r in res.values())
    rows.append(
        row(
            "notebook node overhead, chain of 5",
            f"{res['ours'][2]:.2f} s a node",
            f"elyra-pipeline run {res['elyra'][2]:.2f} s a node",
            per_node if sane else None,
            "<= 0.35 s a node",
            res["ours"][2] <= 0.35 if sane else None,
            "" if sane else "invalid: a 1-node run was slower than a 5-node run (machine stall)",
        )
    )
    save("pipeline", rows)
    if ks:
        print(f"\nP5 goal met for every k: {'yes' if p5_ok else 'NO'}")


if __name__ == "__main__":
    main()
