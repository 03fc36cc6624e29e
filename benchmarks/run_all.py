"""``make bench``: run every benchmark, then write benchmarks/RESULTS.md (one table).

Each script runs as its own process with sizes chosen to fit the whole set in under
15 minutes on 2 cores; its output goes to ``benchmarks/out/<name>.log`` and its rows
(each figure beside its anchor, measured in the same run) to ``out/<name>.json``. A script
that fails before saving its rows leaves a row saying so (a script may also exit 1 when
it measured a missed goal: its rows are shown). ``--only storage,pipeline`` runs some of
them and keeps the others' rows from their last run (marked as such, with their date and
load). ``SEPARATE`` benchmarks are too long for the regular run (the batch benchmark at the
issue's N = 1,000): ``--only invoke-p3-n1000`` records them, and every later run shows
their rows.

    python benchmarks/run_all.py [--only NAMES]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from _results import HERE, OUT, load, measured

ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"

#: name (of its rows file) -> (script, arguments, what it measures); sizes fit 15 minutes on
#: 2 cores
BENCHES: dict[str, tuple[str, list[str], str]] = {
    "client": ("bench_client.py", ["--rounds", "100"], "sync overhead"),
    "deepaas": ("bench_deepaas.py", ["--n", "10"], "sync overhead (DEEPaaS)"),
    "invoke-p2": ("bench_invoke.py", ["--only", "p2", "--size-mb", "256"], "memory"),
    "invoke-p3-n200": (
        "bench_invoke.py",
        ["--only", "p3", "--n", "200", "--k", "4", "--t", "0.5"],
        "batch",
    ),
    "storage": ("bench_storage.py", ["--repeat", "3"], "transfers"),
    "local": (
        "bench_local.py",
        ["--n", "60", "--prefill", "10000", "--max-jobs", "4", "--repeat", "10"],
        "job start",
    ),
    "pipeline": (
        "bench_pipeline.py",
        ["--ks", "4", "--sleep", "3", "--repeat", "2"],
        "pipeline runner",
    ),
}

#: run only when named in --only (each about 7 minutes); their last rows are always shown
SEPARATE: dict[str, tuple[str, list[str], str]] = {
    "invoke-p3-n1000": (
        "bench_invoke.py",
        ["--only", "p3", "--n", "1000", "--k", "8", "--t", "1"],
        "batch at the issue's size, recorded separately",
    ),
}

#: goals of issue 14 no benchmark measures yet: (what, ours, goal, note)
PENDING: list[tuple[str, str, str, str]] = []


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _run(name: str, script: str, args: list[str]) -> tuple[bool, float]:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").unlink(missing_ok=True)
    log = OUT / f"{name}.log"
    cmd = [sys.executable, str(HERE / script), *args]
    print(f"\n### {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            fh.write(line)
        code = proc.wait()
    return code == 0, time.monotonic() - t0


def _durations(ran: dict[str, tuple[bool, float]], started: float) -> list[str]:
    """How long the whole set took (kept from the last full run) and this run, if partial."""
    minutes = (time.monotonic() - started) / 60
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    full = OUT / "run_all.json"
    if set(BENCHES) <= set(ran):
        minutes = sum(ran[name][1] for name in BENCHES) / 60  # without SEPARATE ones
        full.write_text(json.dumps({"minutes": round(minutes, 1), "date": stamp}) + "\n")
        return [f"- `make bench` (every benchmark) took {minutes:.1f} min"]
    lines = []
    try:
        last = json.loads(full.read_text())
        lines.append(f"- the last full `make bench` took {last['minutes']} min ({last['date']})")
    except (OSError, ValueError, KeyError):
        pass
    return [*lines, f"- this run ({', '.join(ran)} only) took {minutes:.1f} min"]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def write_results(ran: dict[str, tuple[bool, float]], started: float, load_avg: str) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`); every figure is beside its anchor",
        "measured in the same run, on the same machine, the two sides alternating. The machine",
        "is shared with other work, so figures are noisy: each is the best (or the median) of",
        "several runs, as each script says in its docstring; the logs are in `benchmarks/out/`.",
        "",
        f"- machine: {_machine()}",
        f"- load average when the run started: {load_avg}",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- commit: {_git('rev-parse', '--short', 'HEAD')}"
        + (" (with uncommitted changes)" if _git("status", "--porcelain") else ""),
        *_durations(ran, started),
        "",
        "| what | ours | anchor (same run) | ratio | goal | met | benchmark |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (script, _args, topic) in {**BENCHES, **SEPARATE}.items():
        where = f"{topic}: `{script}`"
        rows = load(name)
        if name in ran and not ran[name][0] and rows is None:
            lines.append(f"| {name} | failed: see out/{name}.log | | | | no | {where} |")
            continue
        if rows is None:
            how = f"`run_all.py --only {name}`" if name in SEPARATE else ""
            lines.append(f"| {name} | not run | | | | {how} | {where} |")
            continue
        when = measured(name)
        if name not in ran:
            where += " (rows of an earlier run"
            where += f": {when['date']}, load {when['load']})" if when else ")"
        elif when:
            where += f" (load {when['load']} at its end)"
        for r in rows:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            if r.get("note"):
                met = f"{met} ({r['note']})".strip()
            lines.append(
                f"| {_cell(r['what'])} | {_cell(r['ours'])} | {_cell(r['anchor'])} | {ratio} "
                f"| {_cell(r['goal'])} | {_cell(met)} | {where} |"
            )
    for what, ours, goal, note in PENDING:
        lines.append(f"| {what} | {ours} | | | {goal} | {note} | |")
    lines.append("")
    RESULTS.write_text("\n".join(lines))
    print(f"\nwrote {RESULTS}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    known = {**BENCHES, **SEPARATE}
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(known))
    args = ap.parse_args()
    names = list(BENCHES) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    started = time.monotonic()
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ran = {}
    for name in names:
        script, bargs, _ = known[name]
        ran[name] = _run(name, script, bargs)
        print(f"### {name}: {'ok' if ran[name][0] else 'FAILED'} in {ran[name][1]:.0f} s")
    write_results(ran, started, load_avg)
    return 0 if all(ok for ok, _ in ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
