"""``make mutate``: mutation testing of the core modules with mutmut 3.7, on a deterministic
sample, printing killed / survived / timeout per module and the total score.

mutmut copies the tree into ``mutants/`` and, for each mutant, runs only the tests that
called the mutated function during its "stats" run (the tests listed in
``[tool.mutmut] pytest_add_cli_args_test_selection``). This script:

1. generates the mutants of the modules in ``[tool.mutmut] only_mutate``;
2. keeps, per module, the ``--sample`` mutants whose names hash lowest (the same sample on
   every run while the code is unchanged; 0 = all), optionally only those matching the
   given patterns (fnmatch on mutant names, e.g. ``'oscar_elyra.local.jobs*'``; a bare
   module name such as ``oscar_elyra.storage`` means all its mutants);
3. runs ``mutmut run --max-children N <the sample>`` bounded by ``--timeout`` seconds;
4. prints the table, the score ((killed + timeout) / checked, without the mutants listed in
   ``tests/mutation_equivalent.txt``), and the survivors (``mutmut show NAME`` shows one).

The embedded cluster (``oscar_elyra.local.server``) runs in a child process, which mutmut's
stats cannot see: ``mutants/sitecustomize.py`` (written here) makes a child started during
the stats run append the functions it calls to a file that ``tests/conftest.py`` credits to
the running test, so server-side mutants get the tests that reach them.

    python benchmarks/mutate.py [--sample N] [--max-children 2] [--timeout S] [PATTERN ...]
    python benchmarks/mutate.py --report [PATTERN ...]   # results so far, no run

Delete ``mutants/`` after changing ``[tool.mutmut]`` (the stats are cached there).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
HITS = MUTANTS / "subprocess-hits.txt"

#: mutmut exit code -> status (mutmut.__main__.status_by_exit_code, grouped)
KILLED = {1, 3}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}

SITECUSTOMIZE = '''\
"""Written by benchmarks/mutate.py: a child process started during mutmut's stats run
(the embedded cluster) appends each mutated function it calls to $MUTMUT_SUBPROCESS_HITS;
tests/conftest.py credits them to the running test."""
import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get("MUTMUT_SUBPROCESS_HITS"):
    import mutmut.__main__ as _mm

    _record = _mm.record_trampoline_hit
    _fd = os.open(os.environ["MUTMUT_SUBPROCESS_HITS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def record_trampoline_hit(name, caller=None):
        os.write(_fd, (name + "\\n").encode())  # one short append: whole lines across processes
        return _record(name, caller)

    _mm.record_trampoline_hit = record_trampoline_hit
'''


def mutmut_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(MUTANTS)  # the mutated copy, also for child processes
    env["MUTMUT_SUBPROCESS_HITS"] = str(HITS)
    return env


def generate() -> dict[str, dict[str, int | None]]:
    """Create/refresh the mutants (mutmut's own generation, in a child process) and return
    {module file: {mutant name: exit code or None}}."""
    MUTANTS.mkdir(exist_ok=True)
    (MUTANTS / "sitecustomize.py").write_text(SITECUSTOMIZE)
    code = (
        "import os; os.environ['MUTANT_UNDER_TEST'] = 'mutant_generation'\n"
        "from mutmut.__main__ import Config, copy_src_dir, create_mutants\n"
        "Config.ensure_loaded(); copy_src_dir(); create_mutants(2)\n"
    )
    cmd = [sys.executable, "-c", code]
    subprocess.run(cmd, cwd=ROOT, env=mutmut_env(), check=True, stdout=subprocess.DEVNULL)
    return load_results()


def load_results() -> dict[str, dict[str, int | None]]:
    out = {}
    for meta in sorted((MUTANTS / "oscar_elyra").rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        out[str(meta.relative_to(MUTANTS))[: -len(".meta")]] = data["exit_code_by_key"]
    return out


def module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".").removesuffix(".__init__")


def matches(name: str, patterns: list[str]) -> bool:
    if not patterns:
        return True
    for p in patterns:
        if fnmatch.fnmatchcase(name, p) or ("*" not in p and name.startswith(p + ".")):
            return True
    return False


def sample(names: list[str], n: int) -> list[str]:
    if n <= 0 or len(names) <= n:
        return sorted(names)
    return sorted(sorted(names, key=lambda s: hashlib.sha256(s.encode()).hexdigest())[:n])


def load_equivalent() -> dict[str, str]:
    """tests/mutation_equivalent.txt: ``mutant_name  reason`` per line, # comments."""
    if not EQUIVALENT.exists():
        return {}
    out = {}
    for line in EQUIVALENT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip()
    return out


def run_mutmut(names: list[str], max_children: int, timeout: float) -> int:
    log = MUTANTS / "mutmut-run.log"
    cmd = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(max_children)]
    print(f"mutmut run: {len(names)} mutants, {max_children} children (log: {log})", flush=True)
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd + names, cwd=ROOT, env=mutmut_env(), stdout=f, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"stopped after {timeout:.0f} s (--timeout): results so far", flush=True)
            os.killpg(proc.pid, signal.SIGINT)  # mutmut stops its children and saves
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return 124
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if proc.returncode:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-15:]
        print("\n".join(tail))
        print(f"mutmut exited with code {proc.returncode}")
    return proc.returncode


def report(chosen: dict[str, list[str]], results: dict[str, dict[str, int | None]]) -> float:
    equivalent = load_equivalent()
    rows = []
    total = defaultdict(int)
    survivors = []
    for path, names in chosen.items():
        c = defaultdict(int)
        for name in names:
            code = results.get(path, {}).get(name)
            if name in equivalent:
                c["equivalent"] += 1
            elif code in KILLED:
                c["killed"] += 1
            elif code in TIMEOUT:
                c["timeout"] += 1
            elif code in SURVIVED:
                c["survived"] += 1
                survivors.append(name)
            elif code in NO_TESTS:
                c["no tests"] += 1
                survivors.append(name + "  (no tests)")
            elif code is None:
                c["not run"] += 1
            else:
                c["other"] += 1
                survivors.append(f"{name}  (exit {code})")
        for k, v in c.items():
            total[k] += v
        rows.append((module_name(path), c))
    rows.append(("TOTAL", total))
    cols = ["killed", "timeout", "survived", "no tests", "other", "not run", "equivalent"]
    print()
    print(f"{'module':<34}" + "".join(f"{c:>11}" for c in cols) + f"{'score':>9}")
    score = 0.0
    for mod, c in rows:
        checked = sum(c[k] for k in cols if k not in ("not run", "equivalent"))
        caught = c["killed"] + c["timeout"]
        score = 100.0 * caught / checked if checked else 0.0
        print(f"{mod:<34}" + "".join(f"{c[k]:>11}" for k in cols) + f"{score:>8.1f}%")
    if survivors:
        print("\nsurvivors (mutmut show NAME):")
        for s in survivors:
            print("  " + s)
    stale = [n for n in equivalent if not any(n in names for names in chosen.values())]
    if stale and len(chosen) == len(results):
        print(f"\n{len(stale)} name(s) in {EQUIVALENT.name} are not in this sample (or gone)")
    print(f"\nscore: {score:.1f}% killed (timeouts count as killed; equivalent mutants excluded)")
    return score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="*", help="mutant-name globs or module names (default: all)")
    ap.add_argument("--sample", type=int, default=int(os.environ.get("MUTATE_SAMPLE", 40)))
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("MUTATE_TIMEOUT", 1800)))
    ap.add_argument("--report", action="store_true", help="print the results so far, run nothing")
    args = ap.parse_args()
    patterns = [p for arg in args.patterns for p in arg.split()]

    os.chdir(ROOT)
    start = time.monotonic()
    results = load_results() if args.report else generate()
    chosen = {}
    for path, by_key in results.items():
        names = [n for n in by_key if matches(n, patterns)]
        if names:
            chosen[path] = sample(names, args.sample)
    if not chosen:
        print(f"no mutants match {' '.join(patterns)}", file=sys.stderr)
        return 2
    if not args.report:
        HITS.unlink(missing_ok=True)
        run_mutmut([n for names in chosen.values() for n in names], args.max_children, args.timeout)
        results = load_results()
    report(chosen, results)
    if not args.report:
        took = time.monotonic() - start
        print(f"run time: {took:.0f} s, sample {args.sample or 'all'} per module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
