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
3. keeps, for each mutated function, only the tests of its module's own test files
   (``[tool.oscar-elyra.mutate.tests]``), fastest first, up to ``max_test_seconds`` (or the
   module's entry in ``max_test_seconds_by_module``);
4. runs ``mutmut run --max-children N <the sample>``, all bounded by ``--timeout`` seconds;
5. prints the table, the score ((killed + timeout) / checked, without the mutants listed in
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

try:
    import tomllib
except ImportError:  # Python 3.10: mutmut depends on toml there
    import toml as tomllib

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
HITS = MUTANTS / "subprocess-hits.txt"
STATS = MUTANTS / "mutmut-stats.json"
STATS_FULL = MUTANTS / "mutmut-stats.full.json"

#: mutmut exit code -> status (mutmut.__main__.status_by_exit_code, grouped)
KILLED = {1, 3}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}

SITECUSTOMIZE = '''\
"""Written by benchmarks/mutate.py for the child processes of a mutmut run (the embedded
cluster, the CLI, pipeline nodes), which find it through PYTHONPATH=mutants."""
import os

if "MUTANT_UNDER_TEST" in os.environ and os.environ.get("MUTMUT_PROJECT_DIR"):
    # mutated modules import mutmut, whose configuration is read from the current folder:
    # read it from the project's, whatever folder this child runs in
    import mutmut.configuration as _conf

    _cwd = os.getcwd()
    os.chdir(os.environ["MUTMUT_PROJECT_DIR"])
    try:
        _conf.Config.ensure_loaded()
    finally:
        os.chdir(_cwd)

if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get("MUTMUT_SUBPROCESS_HITS"):
    # stats run: append each mutated function this process calls to the file that
    # tests/conftest.py credits to the running test
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
    env["MUTMUT_PROJECT_DIR"] = str(ROOT)
    return env


#: mutmut run's first steps (3.7): generate the mutants, then, unless cached and still valid,
#: run the test selection once to learn which tests reach which function ("stats")
PREPARE = """\
import os, sys
os.environ["MUTANT_UNDER_TEST"] = "mutant_generation"
from mutmut.__main__ import (Config, PytestRunner, collect_or_load_stats, copy_also_copy_files,
    copy_src_dir, create_mutants, setup_source_paths)
Config.ensure_loaded(); copy_src_dir(); copy_also_copy_files(); setup_source_paths()
create_mutants(2)
if sys.argv[1] == "stats":
    runner = PytestRunner(); runner.prepare_main_test_run()
    collect_or_load_stats(runner, apply_config_invalidation=True)
"""


#: ``mutmut run``, whose own test runs (the clean run, the forced failure) go to a subprocess:
#: mutmut forks a child per mutant from this process, and a process that has used obstore
#: (oscar_elyra.storage) cannot use it again in a forked child (its runtime's threads are gone)
RUN = """\
import os, subprocess, sys
import mutmut.__main__ as mm
parent = os.getpid()
in_process = mm.PytestRunner.execute_pytest

def execute_pytest(self, params, **kwargs):
    if os.getpid() != parent or kwargs:  # a mutant's child, or a stats run (plugins)
        return in_process(self, params, **kwargs)
    full = ["--rootdir=.", "--tb=native", *params, *self._pytest_add_cli_args]
    code = subprocess.run([sys.executable, "-m", "pytest", *full]).returncode
    if code == 4:
        raise mm.BadTestExecutionCommandsException(full)
    return code

mm.PytestRunner.execute_pytest = execute_pytest
sys.argv = ["mutmut", *sys.argv[1:]]
mm.cli()
"""


def prepare(what: str, timeout: float) -> dict[str, dict[str, int | None]]:
    """Create/refresh the mutants (and with ``what="stats"`` the stats) and return
    {module file: {mutant name: exit code or None}}."""
    MUTANTS.mkdir(exist_ok=True)
    (MUTANTS / "sitecustomize.py").write_text(SITECUSTOMIZE)
    if what == "stats":
        if STATS_FULL.exists():
            STATS.write_text(STATS_FULL.read_text())  # mutmut adds new tests to the full map
        HITS.unlink(missing_ok=True)
    log = MUTANTS / f"mutmut-{what}.log"
    if run_mutmut([sys.executable, "-c", PREPARE, what], timeout, log):
        sys.exit(1)
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


def run_mutmut(args: list[str], timeout: float, log: Path) -> int:
    """``mutmut ARGS`` in its own process group, output to ``log``; stopped (SIGINT: mutmut
    stops its children and keeps the results so far) after ``timeout`` seconds."""
    cmd = (
        args if args[0] == sys.executable else [str(Path(sys.executable).parent / "mutmut"), *args]
    )
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=mutmut_env(), stdout=f, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"stopped after {timeout:.0f} s (--timeout): results so far", flush=True)
            os.killpg(proc.pid, signal.SIGINT)
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
        print(f"mutmut exited with code {proc.returncode} (log: {log})")
    return proc.returncode


def selection() -> tuple[dict[str, list[str]], float, dict[str, float]]:
    """``[tool.oscar-elyra.mutate]``: per module, the test files that judge its mutants, the
    estimated test seconds per mutant, and the modules with a budget of their own."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["oscar-elyra"]["mutate"]
    by_module = {m: float(s) for m, s in conf.get("max_test_seconds_by_module", {}).items()}
    return conf.get("tests", {}), float(conf.get("max_test_seconds", 60)), by_module


def trim_stats() -> tuple[int, float]:
    """Keep, for each mutated function, only the tests of its module's own test files that
    reached it, fastest first, up to the time budget; mutmut runs those for each mutant.
    The full map (which mutmut extends when tests are added) is kept in STATS_FULL.
    Returns (functions with tests, estimated seconds of tests per surviving mutant, max)."""
    tests_for, default_budget, budget_for = selection()
    data = json.loads(STATS.read_text())
    STATS_FULL.write_text(json.dumps(data))
    duration = data["duration_by_test"]
    trimmed, worst = {}, 0.0
    for func, tests in data["tests_by_mangled_function_name"].items():
        module = func.rsplit(".", 1)[0]
        files = tests_for.get(module)
        budget = budget_for.get(module, default_budget)
        if files is not None:
            tests = [t for t in tests if t.split("::")[0] in files]
        kept, total = [], 0.0
        for t in sorted(tests, key=lambda t: duration.get(t, 0.0)):
            if kept and total + duration.get(t, 0.0) > budget:
                break
            kept.append(t)
            total += duration.get(t, 0.0)
        trimmed[func] = kept
        worst = max(worst, total)
    data["tests_by_mangled_function_name"] = trimmed
    STATS.write_text(json.dumps(data, indent=1))
    return sum(1 for v in trimmed.values() if v), worst


def run(names: list[str], max_children: int, deadline: float) -> None:
    funcs, worst = trim_stats()
    print(f"    {funcs} functions reached by tests, at most {worst:.0f} s of tests per mutant")
    log = MUTANTS / "mutmut-run.log"
    print(f"mutmut run: {len(names)} mutants, {max_children} children (log: {log})", flush=True)
    run_mutmut(
        [sys.executable, "-c", RUN, "run", "--max-children", str(max_children), *names],
        deadline - time.monotonic(),
        log,
    )


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
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("MUTATE_TIMEOUT", 5400)))
    ap.add_argument("--report", action="store_true", help="print the results so far, run nothing")
    args = ap.parse_args()
    patterns = [p for arg in args.patterns for p in arg.split()]

    os.chdir(ROOT)
    # started as a background job (SIGINT ignored, and so in mutmut and the tests' children):
    # Ctrl-C and the --timeout stop must still reach mutmut, and tests send SIGINT to children
    signal.signal(signal.SIGINT, signal.default_int_handler)
    start = time.monotonic()
    deadline = start + args.timeout
    if args.report:
        results = load_results()
    else:
        print(
            f"mutants and stats (the first time: the whole test selection, once; log in {MUTANTS})"
        )
        results = prepare("stats", args.timeout)
        print(f"    {time.monotonic() - start:.0f} s", flush=True)
    chosen = {}
    for path, by_key in results.items():
        names = [n for n in by_key if matches(n, patterns)]
        if names:
            chosen[path] = sample(names, args.sample)
    if not chosen:
        print(f"no mutants match {' '.join(patterns)}", file=sys.stderr)
        return 2
    if not args.report:
        run([n for names in chosen.values() for n in names], args.max_children, deadline)
        results = load_results()
    report(chosen, results)
    if not args.report:
        took = time.monotonic() - start
        print(f"run time: {took:.0f} s, sample {args.sample or 'all'} per module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
