"""Running pipelines: parallel branches, failure isolation, resume, selection, params, notebooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.pipeline import load_pipeline, read_run, run_pipeline
from oscar_elyra.pipeline.builder import node, pipeline, write_notebook, write_pipeline

# a script that records what it saw: its label (argv-free: from its file name), env and cwd
SCRIPT = """import json, os, pathlib, sys, time
me = pathlib.Path(__file__).stem
t0 = time.time()
time.sleep(float(os.environ.get("SLEEP_" + me, "0")))
keys = ["ELYRA_RUNTIME_ENV", "ELYRA_RUN_NAME", "SIZE", "FLAG", "COLOR", "SHARED", "EMPTY"]
pathlib.Path(me + ".out").write_text(json.dumps(
    {"cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in keys},
     "t0": t0, "t1": time.time()}))
if os.environ.get("FAIL_" + me):
    print("about to fail", flush=True)
    raise RuntimeError("node " + me + " failed on purpose")
"""


def _scripts(d: Path, *names: str) -> None:
    for n in names:
        (d / f"{n}.py").write_text(SCRIPT)


def _seen(d: Path, name: str) -> dict:
    return json.loads((d / f"{name}.out").read_text())


def _interval(rec: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(rec["start"]), datetime.fromisoformat(rec["end"])


def test_fan_out_runs_in_parallel(tmp_path, monkeypatch):
    """src -> 4 sleep-bound branches -> join: the branches' intervals overlap in run.json."""
    names = ["src", "b1", "b2", "b3", "b4", "join"]
    _scripts(tmp_path, *names)
    for b in names[1:5]:
        monkeypatch.setenv(f"SLEEP_{b}", "1.5")
    src = node("src", "src.py")
    branches = [node(b, f"{b}.py", parents=[src]) for b in names[1:5]]
    join = node("join", "join.py", parents=branches)
    path = write_pipeline(tmp_path / "fan.pipeline", pipeline([src, *branches, join]))
    result = run_pipeline(path, workers=4, run_dir=tmp_path / "run")
    assert result.ok
    recs = result.nodes
    byl = {r["label"]: r for r in recs.values()}
    spans = [_interval(byl[b]) for b in names[1:5]]
    # every pair of branches overlaps in time; all start after src ends and end before join
    for i, (s1, e1) in enumerate(spans):
        for s2, e2 in spans[i + 1 :]:
            assert s1 < e2 and s2 < e1
    # and the processes themselves ran at the same time
    seen = [_seen(tmp_path, b) for b in names[1:5]]
    assert max(s["t0"] for s in seen) < min(s["t1"] for s in seen)
    src_end = _interval(byl["src"])[1]
    join_start = _interval(byl["join"])[0]
    assert all(s >= src_end and e <= join_start for s, e in spans)
    # the record on disk is the same as the returned one
    assert read_run(tmp_path / "run")["nodes"] == result.record["nodes"]
    assert (tmp_path / "run" / "report.html").is_file()


def test_failure_isolation_then_resume(tmp_path, monkeypatch):
    """a -> (bad -> bad_child), a -> (good -> good_child); bad fails: its subtree does not run,
    the sibling branch finishes, exit code 1; --resume reruns only the failed subtree."""
    names = ["a", "bad", "bad_child", "good", "good_child"]
    _scripts(tmp_path, *names)
    monkeypatch.setenv("FAIL_bad", "1")
    a = node("a", "a.py")
    bad = node("bad", "bad.py", parents=[a])
    bad_child = node("bad_child", "bad_child.py", parents=[bad])
    good = node("good", "good.py", parents=[a])
    good_child = node("good_child", "good_child.py", parents=[good])
    path = write_pipeline(
        tmp_path / "iso.pipeline", pipeline([a, bad, bad_child, good, good_child])
    )
    run_dir = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", str(path), "--run-dir", str(run_dir), "-q"])
    assert res.exit_code == 1, res.output
    rec = read_run(run_dir)
    status = {n["label"]: n["status"] for n in rec["nodes"]}
    assert status == {
        "a": "succeeded",
        "bad": "failed",
        "bad_child": "not_run",
        "good": "succeeded",
        "good_child": "succeeded",
    }
    bad_rec = next(n for n in rec["nodes"] if n["label"] == "bad")
    assert "failed on purpose" in bad_rec["error"]["message"]
    assert "about to fail" in (run_dir / bad_rec["log"]).read_text()
    assert not (tmp_path / "bad_child.out").exists()
    first_run_name = rec["run_name"]
    before = {n: (tmp_path / f"{n}.out").stat().st_mtime_ns for n in ["a", "good", "good_child"]}

    monkeypatch.delenv("FAIL_bad")
    res = CliRunner().invoke(main, ["run", str(path), "--resume", str(run_dir), "-q"])
    assert res.exit_code == 0, res.output
    rec = read_run(run_dir)
    attempts = {n["label"]: (n["status"], n["attempt"]) for n in rec["nodes"]}
    assert attempts == {
        "a": ("succeeded", 1),
        "bad": ("succeeded", 2),
        "bad_child": ("succeeded", 1),
        "good": ("succeeded", 1),
        "good_child": ("succeeded", 1),
    }
    after = {n: (tmp_path / f"{n}.out").stat().st_mtime_ns for n in ["a", "good", "good_child"]}
    assert after == before  # succeeded nodes did not run again
    assert rec["run_name"] == first_run_name
    assert _seen(tmp_path, "bad_child")["env"]["ELYRA_RUN_NAME"] == first_run_name
    assert rec["attempts"] == 2 and rec["started"] < rec["resumed"] <= rec["ended"]


def test_env_params_and_selection(tmp_path, monkeypatch):
    """Env precedence (process < parameters < pipeline defaults < node env), typed --param,
    --only and --from by label or id."""
    _scripts(tmp_path, "a", "b", "c")
    monkeypatch.setenv("COLOR", "from-process")
    monkeypatch.setenv("SHARED", "from-process")
    a = node("a", "a.py", parameters=["SIZE", "FLAG"], env={"COLOR": "node-a", "EMPTY": ""})
    b = node("b", "b.py", parents=[a], parameters=["SIZE"])
    c = node("c", "c.py", parents=[b])
    doc = pipeline(
        [a, b, c],
        env={"SHARED": "default", "COLOR": "default"},
        parameters=[
            {"name": "SIZE", "type": "Integer", "value": 3},
            {"name": "FLAG", "type": "Bool", "value": False},
        ],
    )
    path = write_pipeline(tmp_path / "env.pipeline", doc)
    result = run_pipeline(path, params={"SIZE": "42", "FLAG": "yes"}, run_dir=tmp_path / "r1")
    assert result.ok
    env_a = _seen(tmp_path, "a")["env"]
    assert env_a == {
        "ELYRA_RUNTIME_ENV": "local",
        "ELYRA_RUN_NAME": result.record["run_name"],
        "SIZE": "42",
        "FLAG": "true",
        "COLOR": "node-a",
        "SHARED": "default",
        "EMPTY": None,
    }
    assert _seen(tmp_path, "b")["env"]["COLOR"] == "default"
    assert _seen(tmp_path, "b")["env"]["FLAG"] is None  # b does not use FLAG
    assert _seen(tmp_path, "a")["cwd"] == str(tmp_path)
    assert result.record["run_name"].startswith("env-")
    assert result.record["parameters"] == {"SIZE": 42, "FLAG": True}

    for f in tmp_path.glob("*.out"):
        f.unlink()
    result = run_pipeline(path, only=["b"], run_dir=tmp_path / "r2")
    assert result.ok and _seen(tmp_path, "b")["env"]["SIZE"] == "3"
    assert {r["label"]: r["status"] for r in result.nodes.values()} == {
        "a": "skipped",
        "b": "succeeded",
        "c": "skipped",
    }

    for f in tmp_path.glob("*.out"):
        f.unlink()
    result = run_pipeline(path, from_=[b["id"]], run_dir=tmp_path / "r3")
    assert result.ok
    assert sorted(p.stem for p in tmp_path.glob("*.out")) == ["b", "c"]


def test_notebooks_source_unchanged_and_failing_cell(tmp_path, monkeypatch):
    """Notebook nodes: executed copy in the run dir, source untouched, cwd = notebook dir,
    a failing cell is reported with its number; the downstream node does not run."""
    sub = tmp_path / "nbs"
    sub.mkdir()
    ok = write_notebook(
        sub / "ok.ipynb",
        "import os\nprint('RUN', os.environ['ELYRA_RUN_NAME'])",
        "open('ok.txt', 'w').write(os.getcwd())",
    )
    bad = write_notebook(sub / "bad.ipynb", "x = 1", "raise ValueError('broken cell')", "y = 2")
    # next and after get their kernels started while ok and bad run (prewarm): next must
    # still see ok's file, its own env and cwd; after's kernel must be stopped unused
    nxt = write_notebook(
        sub / "next.ipynb",
        "import os\nseen = open('ok.txt').read()",
        "open('next.txt', 'w').write(seen + '|' + os.getcwd() + '|' + os.environ['COLOR'])",
    )
    after = write_notebook(tmp_path / "after.ipynb", "open('after.out', 'w').write('ran')")
    originals = {p: p.read_bytes() for p in (ok, bad, nxt, after)}
    n_ok = node("ok", "nbs/ok.ipynb", outputs=["ok.txt"])
    n_bad = node("bad", "nbs/bad.ipynb")
    n_next = node("next", "nbs/next.ipynb", parents=[n_ok], env={"COLOR": "blue"})
    n_after = node("after", "after.ipynb", parents=[n_bad])
    path = write_pipeline(tmp_path / "nb.pipeline", pipeline([n_ok, n_bad, n_next, n_after]))
    result = run_pipeline(path, run_dir=tmp_path / "run", workers=2)
    assert not result.ok
    assert {p: p.read_bytes() for p in originals} == originals
    assert (sub / "next.txt").read_text() == f"{sub}|{sub}|blue"
    assert result.by_label("next")["status"] == "succeeded"
    assert (tmp_path / "run" / result.by_label("after")["log"]).exists()  # kernel was started
    kernels = [
        p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())
    ]
    assert not kernels  # every kernel started for the run was stopped
    rec_ok, rec_bad = result.by_label("ok"), result.by_label("bad")
    assert rec_ok["status"] == "succeeded"
    assert (sub / "ok.txt").read_text() == str(sub)
    executed = json.loads((tmp_path / "run" / rec_ok["notebook"]).read_text())
    outputs = "".join(
        "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
    )
    assert f"RUN {result.record['run_name']}" in outputs
    assert rec_ok["artifacts"][0]["name"] == "ok.txt"
    assert rec_bad["status"] == "failed"
    cell = rec_bad["error"]["cell"]
    assert cell["execution_count"] == 2 and cell["ename"] == "ValueError"
    assert "broken cell" in rec_bad["error"]["message"]
    assert "raise ValueError" in cell["source"]
    assert (tmp_path / "run" / rec_bad["notebook"]).is_file()
    assert result.by_label("after")["status"] == "not_run"
    assert not (tmp_path / "after.out").exists()
    report = (tmp_path / "run" / "report.html").read_text()
    assert "broken cell" in report and "://" not in report.split("<body>")[0]  # no CDN


def _max_overlap(spans: list[tuple]) -> int:
    """The largest number of [start, end) intervals open at the same instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    open_, most = 0, 0
    for _, step in events:  # an end sorts before a start at the same instant (-1 < 1)
        open_ += step
        most = max(most, open_)
    return most


def test_failure_stops_every_descendant(tmp_path, monkeypatch):
    """a fails: its child, grandchild and great-grandchild are all not_run (not left pending),
    each naming the upstream node that stopped it; the run is failed."""
    names = ["a", "b", "c", "d"]
    _scripts(tmp_path, *names)
    monkeypatch.setenv("FAIL_a", "1")
    a = node("a", "a.py")
    b = node("b", "b.py", parents=[a])
    c = node("c", "c.py", parents=[b])
    d = node("d", "d.py", parents=[c])
    path = write_pipeline(tmp_path / "chain.pipeline", pipeline([a, b, c, d]))
    result = run_pipeline(path, run_dir=tmp_path / "run", workers=2)
    assert result.record["status"] == "failed"
    status = {r["label"]: r["status"] for r in read_run(tmp_path / "run")["nodes"]}
    assert status == {"a": "failed", "b": "not_run", "c": "not_run", "d": "not_run"}
    assert result.by_label("b")["error"]["message"] == "upstream node 'a' did not succeed"
    assert result.by_label("d")["error"]["message"] == "upstream node 'c' did not succeed"
    assert sorted(p.stem for p in tmp_path.glob("*.out")) == ["a"]


def test_resume_counts_attempts_and_reruns_only_what_did_not_succeed(tmp_path, monkeypatch):
    """One node fails, a resume runs it again (attempt 2 of the node, attempts 2 of the run), a
    second resume of the finished run runs nothing (attempts 3, the node's record unchanged)."""
    _scripts(tmp_path, "a")
    monkeypatch.setenv("FAIL_a", "1")
    path = write_pipeline(tmp_path / "p.pipeline", pipeline([node("a", "a.py")]))
    run_dir = tmp_path / "run"
    assert run_pipeline(path, run_dir=run_dir).record["status"] == "failed"
    monkeypatch.delenv("FAIL_a")
    first = run_pipeline(path, resume=run_dir).record
    assert (first["status"], first["attempts"], first["selected"]) == (
        "succeeded",
        2,
        [first["nodes"][0]["id"]],
    )
    assert (first["nodes"][0]["status"], first["nodes"][0]["attempt"]) == ("succeeded", 2)
    assert first["started"] < first["resumed"] <= first["ended"]
    ran = (tmp_path / "a.out").stat().st_mtime_ns
    again = run_pipeline(path, resume=run_dir).record
    assert (again["status"], again["attempts"], again["selected"]) == ("succeeded", 3, [])
    assert again["nodes"] == first["nodes"] and again["started"] == first["started"]
    assert (tmp_path / "a.out").stat().st_mtime_ns == ran  # not run again
    assert read_run(run_dir) == json.loads(json.dumps(again))


def test_workers_bound_running_nodes(tmp_path, monkeypatch):
    """5 independent nodes, --workers 2: at most 2 are running at any instant, both in the
    run record and in the node processes' own clocks; all 5 succeed."""
    names = [f"n{i}" for i in range(5)]
    _scripts(tmp_path, *names)
    for n in names:
        monkeypatch.setenv(f"SLEEP_{n}", "0.5")
    path = write_pipeline(tmp_path / "wide.pipeline", pipeline([node(n, f"{n}.py") for n in names]))
    result = run_pipeline(path, workers=2, run_dir=tmp_path / "run")
    assert result.ok
    recorded = [_interval(result.by_label(n)) for n in names]
    assert _max_overlap(recorded) == 2  # the limit is used, and never exceeded
    processes = [(_seen(tmp_path, n)["t0"], _seen(tmp_path, n)["t1"]) for n in names]
    assert _max_overlap(processes) <= 2


def test_resume_damaged_run_record(tmp_path):
    """--resume on a run dir whose run.json is cut short: one clear line, exit 2, the damaged
    record left as it was (nothing run, nothing rewritten)."""
    _scripts(tmp_path, "a")
    path = write_pipeline(tmp_path / "p.pipeline", pipeline([node("a", "a.py")]))
    run_dir = tmp_path / "run"
    assert run_pipeline(path, run_dir=run_dir).ok
    (tmp_path / "a.out").unlink()
    damaged = (run_dir / "run.json").read_bytes()[:40]
    (run_dir / "run.json").write_bytes(damaged)
    res = CliRunner().invoke(main, ["run", str(path), "--resume", str(run_dir)])
    assert res.exit_code == 2, res.output
    assert f"{run_dir / 'run.json'} is not valid JSON: the run record is damaged" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert (run_dir / "run.json").read_bytes() == damaged
    assert not (tmp_path / "a.out").exists()


HANG = """import os, pathlib, time
pathlib.Path("hang.pid").write_text(str(os.getpid()))
time.sleep(600)
"""


def test_ctrl_c_stops_nodes_and_records_interruption(tmp_path):
    """SIGINT to `oscar-elyra run` while a node runs: the node's process is stopped, run.json
    says interrupted (the running node failed, the one after it not_run), exit code not 0."""
    (tmp_path / "hang.py").write_text(HANG)
    _scripts(tmp_path, "after")
    hang = node("hang", "hang.py")
    path = write_pipeline(
        tmp_path / "int.pipeline", pipeline([hang, node("after", "after.py", parents=[hang])])
    )
    run_dir = tmp_path / "run"
    # Ctrl-C as in a terminal, even when this test runs with SIGINT ignored (a background job)
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    cmd = [sys.executable, "-c", code + "from oscar_elyra.cli import main; main()"]
    proc = subprocess.Popen(
        [*cmd, "run", str(path), "--run-dir", str(run_dir)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node_proc = None
    try:
        deadline = time.monotonic() + 60
        pid_file = tmp_path / "hang.pid"
        while not (pid_file.is_file() and pid_file.read_text()):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the node never started"
            time.sleep(0.05)
        node_proc = psutil.Process(int(pid_file.read_text()))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0, out.decode()
        try:
            node_proc.wait(timeout=30)
        except psutil.TimeoutExpired:
            raise AssertionError("the interrupted run left its node process running") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if node_proc is not None and node_proc.is_running():
            node_proc.kill()
    rec = read_run(run_dir)
    assert rec["status"] == "interrupted"
    assert rec["started"] <= rec["nodes"][0]["start"] <= rec["nodes"][0]["end"] <= rec["ended"]
    status = {n["label"]: (n["status"], (n["error"] or {}).get("message")) for n in rec["nodes"]}
    assert status == {"hang": ("failed", "interrupted"), "after": ("not_run", "interrupted")}
    assert not (tmp_path / "after.out").exists()


LAZY_COMPONENT = """name: Lazy
inputs: []
outputs:
- {name: result, type: String}
implementation:
  container:
    image: python:3.11
    command: [python3, -c, "import sys; print('not written:', sys.argv[1])", {outputPath: result}]
"""


def test_a_component_that_writes_no_output(tmp_path, monkeypatch):
    """A component that exits 0 without writing its declared output: its node fails naming
    the output, the node after it does not run, the run is not ok (CLI exit 1)."""
    folder = tmp_path / "components"
    folder.mkdir()
    (folder / "lazy.yaml").write_text(LAZY_COMPONENT)
    monkeypatch.setenv("OSCAR_ELYRA_COMPONENTS", str(folder))
    _scripts(tmp_path, "after")
    lazy = node("Lazy", component="user/lazy.yaml")
    path = write_pipeline(
        tmp_path / "lazy.pipeline", pipeline([lazy, node("after", "after.py", parents=[lazy])])
    )
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", str(path), "--run-dir", str(run_dir)])
    assert res.exit_code == 1, res.output
    rec = read_run(run_dir)
    status = {n["label"]: (n["status"], (n["error"] or {}).get("message")) for n in rec["nodes"]}
    assert status["Lazy"] == ("failed", "(lazy.yaml) did not write its output 'result'")
    assert status["after"][0] == "not_run"
    assert "did not write its output 'result'" in res.output
    assert not (tmp_path / "after.out").exists()


def test_run_record_events_and_refusals(tmp_path, monkeypatch):
    """What a user reads in run.json and gets from on_event for a two-node run, and the one-line
    refusals of run_pipeline/read_run (nothing run)."""
    from oscar_elyra import __version__
    from oscar_elyra.errors import ValidationError
    from oscar_elyra.pipeline.runner import RunResult, select_nodes

    monkeypatch.chdir(tmp_path)
    _scripts(tmp_path, "a", "b")
    (tmp_path / "a.py").write_text(SCRIPT + "print('log line of a')\n")
    a = node("a", "a.py", node_id="aaaa-1", outputs=["a.out"])
    b = node("b", "b.py", node_id="bbbb-2", parents=[a])
    path = write_pipeline(tmp_path / "two.pipeline", pipeline([a, b]))
    events, threads = [], set()

    def on_event(kind, n, rec):
        events.append((kind, n.get("label"), n.get("status")))
        if kind == "succeeded":  # the worker thread that ran the node (as py-spy shows it)
            threads.update(t.name for t in threading.enumerate())

    result = run_pipeline(path, workers=1, on_event=on_event)
    assert events == [
        ("start", None, None),
        ("running", "a", "running"),
        ("succeeded", "a", "succeeded"),
        ("running", "b", "running"),
        ("succeeded", "b", "succeeded"),
    ]
    assert "node_0" in threads
    rec = result.record
    assert sorted(rec) == sorted(
        ["pipeline", "name", "run_name", "run_dir", "status", "started", "ended", "workers"]
        + ["parameters", "attempts", "oscar_elyra", "nodes", "selected"]
    )
    run_dir = Path(rec["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("two-")
    assert result.run_dir == run_dir and result.ok
    assert rec["status"] == "succeeded" and rec["ended"] is not None
    assert (rec["name"], rec["workers"], rec["attempts"], rec["parameters"]) == ("two", 1, 1, {})
    assert rec["oscar_elyra"] == __version__ and rec["pipeline"] == str(path)
    assert rec["selected"] == ["aaaa-1", "bbbb-2"]
    na, nb = rec["nodes"]
    assert {k: na[k] for k in ("id", "label", "op", "kind", "file", "parents", "attempt")} == {
        "id": "aaaa-1",
        "label": "a",
        "op": "execute-python-node",
        "kind": "python",
        "file": "a.py",
        "parents": [],
        "attempt": 1,
    }
    assert (na["log"], na["notebook"], na["error"]) == ("nodes/a-aaaa-1/log.txt", None, None)
    assert [x["name"] for x in na["artifacts"]] == ["a.out"]
    assert nb["parents"] == ["aaaa-1"] and nb["log"] == "nodes/b-bbbb-2/log.txt"
    assert "log line of a" in (run_dir / na["log"]).read_text()
    assert rec["started"] <= na["start"] <= na["end"] <= nb["start"] <= nb["end"] <= rec["ended"]
    for n in (na, nb):  # the node's own time, within its recorded start and end
        start, end = _interval(n)
        assert 0 < n["seconds"] <= (end - start).total_seconds() + 0.001
    assert result.nodes["bbbb-2"] is nb and result.by_label("b") is nb
    assert read_run(run_dir) == json.loads(json.dumps(rec))
    # a second default run dir of the same second gets a suffix, never the same folder
    again = run_pipeline(path, workers=1, only=["b"])
    assert again.run_dir != run_dir and again.record["selected"] == ["bbbb-2"]
    assert [n["status"] for n in again.record["nodes"]] == ["skipped", "succeeded"]
    assert not RunResult(run_dir, {"status": "failed"}).ok

    pl = load_pipeline(path)
    assert select_nodes(pl) is None
    assert select_nodes(pl, only=["a"]) == {"aaaa-1"}
    assert select_nodes(pl, from_=["a"]) == {"aaaa-1", "bbbb-2"}
    assert select_nodes(pl, only=["b"], from_=["b"]) == {"bbbb-2"}

    def refused(**kw) -> str:
        try:
            run_pipeline(path, **kw)
        except ValidationError as exc:
            return str(exc)
        raise AssertionError(f"run_pipeline({kw}) was not refused")

    assert refused(workers=0) == "--workers must be at least 1"
    assert refused(run_dir=run_dir) == (
        f"{run_dir} already holds a run: use --resume {run_dir} or another --run-dir"
    )
    other = write_pipeline(tmp_path / "other.pipeline", pipeline([node("a", "a.py")]))
    try:
        run_pipeline(other, resume=run_dir)
        raise AssertionError("resume of another pipeline's run")
    except ValidationError as exc:
        assert str(exc) == f"{run_dir} is a run of pipeline 'two', not 'other'"
    assert refused(resume=tmp_path) == f"{tmp_path} is not a run directory (no run.json in it)"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text(json.dumps({"name": "two", "nodes": []}))
    assert refused(resume=bad) == (
        f"{bad / 'run.json'} is not a run record (the record: 'run_name' is a required "
        "property): is it damaged?"
    )
    (bad / "run.json").write_text(
        json.dumps({"name": "two", "run_name": "r", "nodes": [{"id": "a", "status": "weird"}]})
    )
    assert refused(resume=bad) == (
        f"{bad / 'run.json'} is not a run record (nodes/0/status: 'weird' is not one of "
        "['pending', 'running', 'succeeded', 'failed', 'not_run', 'skipped']): is it damaged?"
    )
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        [run_dir.name, again.run_dir.name]
    )


def test_r_node_runs_rscript_in_its_folder(tmp_path, monkeypatch):
    """An R node runs ``Rscript FILE`` in the script's folder, with the node environment (R is
    not installed here: an ``Rscript`` on the PATH that records what it was given)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rscript = bin_dir / "Rscript"
    rscript.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib, sys\n"
        "pathlib.Path('seen.json').write_text(json.dumps({'argv': sys.argv[1:], "
        "'cwd': os.getcwd(), 'color': os.environ.get('COLOR')}))\n"
        "print('R says hello')\n"
    )
    rscript.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "fit.r").write_text("cat('hello')\n")
    path = write_pipeline(
        tmp_path / "r.pipeline", pipeline([node("fit", "r/fit.r", env={"COLOR": "red"})])
    )
    result = run_pipeline(path, run_dir=tmp_path / "run")
    assert result.ok and result.by_label("fit")["kind"] == "r"
    seen = json.loads((tmp_path / "r" / "seen.json").read_text())
    assert seen == {
        "argv": [str(tmp_path / "r" / "fit.r")],
        "cwd": str(tmp_path / "r"),
        "color": "red",
    }
    assert "R says hello" in (tmp_path / "run" / result.by_label("fit")["log"]).read_text()


MAKE_COMPONENT = """name: Make
inputs: []
outputs:
- {name: result, type: String}
implementation:
  container:
    image: python:3.11
    command: [python3, -c, "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('made')",
              {outputPath: result}]
"""

USE_COMPONENT = """name: Use
inputs:
- {name: data, type: String}
outputs:
- {name: copy, type: String}
implementation:
  container:
    image: python:3.11
    command: [python3, -c, "import pathlib, sys; p = pathlib.Path(sys.argv[1]);
              pathlib.Path(sys.argv[2]).write_text(f'{p}|{p.read_text()}')",
              {inputPath: data}, {outputPath: copy}]
"""


def test_component_reads_its_parents_output(tmp_path, monkeypatch):
    """A palette component's inputPath is the file its parent wrote in the run directory
    (``nodes/<node>/outputs/<output>``), listed in the parent's artifacts."""
    folder = tmp_path / "components"
    folder.mkdir()
    (folder / "make.yaml").write_text(MAKE_COMPONENT)
    (folder / "use.yaml").write_text(USE_COMPONENT)
    monkeypatch.setenv("OSCAR_ELYRA_COMPONENTS", str(folder))
    make = node("Make", component="user/make.yaml", node_id="make-1")
    use = node(
        "Use", component="user/use.yaml", parents=[make], inputs={"data": ("from", make, "result")}
    )
    path = write_pipeline(tmp_path / "chain.pipeline", pipeline([make, use]))
    run_dir = tmp_path / "run"
    result = run_pipeline(path, run_dir=run_dir)
    assert result.ok, result.record
    made = run_dir / "nodes" / "Make-make-1" / "outputs" / "result"
    assert result.by_label("Make")["artifacts"] == [
        {"name": "result", "path": str(made), "size": len("made")}
    ]
    (copy,) = result.by_label("Use")["artifacts"]
    assert Path(copy["path"]).read_text() == f"{made}|made"
