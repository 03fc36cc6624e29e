"""P5/P6: ``oscar-elyra run`` vs ``elyra-pipeline run``, measured side by side in one run.

P5  fan-out: a start script then k sleep-bound notebook branches (k = 1, 2, 4, 8). Speed-up =
    elyra wall time / oscar-elyra wall time (goal >= 0.8 * min(k, cores)), with the default
    workers (= cores) and, for information, with --workers k. Best of N runs.
    The k = 4 speed-up must stay >= 2.
P6  per-notebook-node overhead: a chain of 5 trivial notebooks, both runners. A node's
    overhead is the time from the end of the node before it to its own end, read from the
    timestamps papermill writes into each executed notebook (both runners use papermill:
    Elyra writes the notebook back in place, oscar-elyra into the run directory), so it
    holds kernel start-up, the runner's own work between nodes and papermill's, not the
    command's start-up. The figure is the median over the chain's nodes 2-5, then the
    median over the N runs (goal <= 0.35 s a node), beside elyra's, and, for information,
    the median wall time of the whole 5-node command.

Usage: python benchmarks/bench_pipeline.py [--sleep S] [--ks 1,2,4,8] [--repeat N] [--only p6]
The runners are interleaved (elyra, ours, elyra, ours...) so load from other processes hits
both alike. Every command runs as a real subprocess (CLI start-up included) in a fresh copy of
the files, since Elyra overwrites the notebooks it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median

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


def _node_ends(paths: list[Path]) -> list[float]:
    """The papermill end time of each executed notebook (seconds since the epoch)."""
    ends = []
    for path in paths:
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]["papermill"]
        ends.append(datetime.fromisoformat(meta["end_time"]).timestamp())
    return ends


def _once(make, runner: str, workers: int | None = None) -> tuple[float, list[float]]:
    """Wall time of one runner on a fresh copy of the pipeline, and the papermill end time
    of each notebook node (in pipeline order)."""
    with tempfile.TemporaryDirectory(prefix="bench-pl-") as tmp:
        d = Path(tmp)
        path = make(d)
        if runner == "elyra":
            cmd = [str(BIN / "elyra-pipeline"), "run", str(path)]
        else:
            cmd = [str(BIN / "oscar-elyra"), "run", str(path), "-q", "--run-dir", str(d / "run")]
            if workers:
                cmd += ["--workers", str(workers)]
        wall = _time(cmd, d)
        notebooks = [
            n["app_data"]["component_parameters"]["filename"]
            for n in json.loads(path.read_text())["pipelines"][0]["nodes"]
            if n["app_data"]["component_parameters"]["filename"].endswith(".ipynb")
        ]
        if runner == "elyra":
            executed = [d / nb for nb in notebooks]
        else:
            by_name = {p.name: p for p in (d / "run" / "nodes").glob("*/*.ipynb")}
            executed = [by_name[Path(nb).name] for nb in notebooks]
        return wall, _node_ends(executed)


def _measure(jobs: dict[str, tuple], repeat: int) -> dict[str, list[tuple[float, list[float]]]]:
    """Every run of each job ``name -> (make, runner, workers)``, runs interleaved
    (elyra, ours, elyra, ours...) so load from other processes hits both alike."""
    runs: dict[str, list] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, (make, runner, workers) in jobs.items():
            runs[name].append(_once(make, runner, workers))
    return runs


def _chain_overhead(ends: list[float]) -> float:
    """Median time from one node's end to the next's, over the chain (nodes 2..n)."""
    return median(b - a for a, b in zip(ends[:-1], ends[1:], strict=True))


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
        t_el, t_us, t_wk = (min(w for w, _ in t[name]) for name in ("elyra", "ours", "ours_k"))
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
    print(f"\nP6 per-notebook-node overhead, chain of 5 trivial notebooks, {args.repeat} runs")
    chain5 = lambda d: _chain(d, 5)  # noqa: E731
    t = _measure({"elyra": (chain5, "elyra", None), "ours": (chain5, "ours", None)}, args.repeat)
    res = {}
    for runner in ("elyra", "ours"):
        per_run = [_chain_overhead(ends) for _, ends in t[runner]]
        walls = [w for w, _ in t[runner]]
        res[runner] = (median(per_run), median(walls))
        print(
            f"{runner:>6}: per node (median over the chain) "
            + ", ".join(f"{x:.3f}" for x in per_run)
            + f" s -> {res[runner][0]:.3f} s; 5-node command "
            + ", ".join(f"{w:.2f}" for w in walls)
            + f" s -> {res[runner][1]:.2f} s",
            flush=True,
        )
    ours, elyra = res["ours"][0], res["elyra"][0]
    print(
        f"ratio oscar-elyra/elyra: per node {ours / elyra:.2f}, 5-node command"
        f" {res['ours'][1] / res['elyra'][1]:.2f}; goal <= 0.35 s a node:"
        f" {'yes' if ours <= 0.35 else 'NO'}"
    )
    rows.append(
        row(
            "notebook node overhead, chain of 5 (median over the chain)",
            f"{ours:.2f} s a node",
            f"elyra-pipeline run {elyra:.2f} s a node",
            ours / elyra,
            "<= 0.35 s a node",
            ours <= 0.35,
        )
    )
    rows.append(
        row(
            "pipeline chain of 5 trivial notebooks, whole command, median",
            f"{res['ours'][1]:.2f} s",
            f"elyra-pipeline run {res['elyra'][1]:.2f} s",
            res["ours"][1] / res["elyra"][1],
            "information",
            None,
        )
    )
    save("pipeline", rows)
    if ks:
        print(f"\nP5 goal met for every k: {'yes' if p5_ok else 'NO'}")


if __name__ == "__main__":
    main()
