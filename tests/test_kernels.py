"""Notebook kernels forked from the run's zygote: one per node, isolated, all stopped.

Real kernels (ipykernel), real papermill, the real runner: each notebook reports what it
can see of the process it runs in, and the test compares the reports.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import psutil
import pytest

from oscar_elyra.pipeline.builder import node, pipeline, write_notebook, write_pipeline
from oscar_elyra.pipeline.runner import run_pipeline

pytest.importorskip("papermill")

REPORT = """
import json, os, random, sys
seen = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "sid": os.getsid(0),
    "cwd": os.getcwd(),
    "mine": os.environ.get("MINE"),
    "other": os.environ.get("OTHER"),
    "leak_env": os.environ.get("LEAK"),
    "leak_global": "leak" in globals(),
    "leak_module": hasattr(json, "leak"),
    "helper": __import__("helper").VALUE,
    "random": random.random(),
    "parent_pid": os.environ.get("JPY_PARENT_PID"),
    "connection": json.load(open(__import__("ipykernel").get_connection_file())),
}
open(os.environ["REPORT_TO"], "w").write(json.dumps(seen))
"""

# what a node leaves behind that the next one must not see
LEAK = """
import json, os
leak = 1
json.leak = 1
os.environ["LEAK"] = "1"
os.chdir("/")
"""


def _run(tmp_path: Path, env_b: dict[str, str] | None = None):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "helper.py").write_text("VALUE = 'from the notebook dir'\n")
    for name in ("a", "b", "c"):
        write_notebook(nbs / f"{name}.ipynb", REPORT, LEAK)
    a = node("a", "nbs/a.ipynb", env={"MINE": "a", "REPORT_TO": str(tmp_path / "a.json")})
    b = node(
        "b",
        "nbs/b.ipynb",
        parents=[a],
        env={"MINE": "b", "REPORT_TO": str(tmp_path / "b.json"), **(env_b or {})},
    )
    c = node(
        "c", "nbs/c.ipynb", parents=[a], env={"MINE": "c", "REPORT_TO": str(tmp_path / "c.json")}
    )
    path = write_pipeline(tmp_path / "k.pipeline", pipeline([a, b, c], name="kernels"))
    result = run_pipeline(path, run_dir=tmp_path / "run", workers=2)
    assert result.ok, result.record
    return {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc"}, nbs


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_each_node_gets_its_own_forked_kernel(tmp_path):
    seen, nbs = _run(tmp_path)
    pids = {s["pid"] for s in seen.values()}
    assert len(pids) == 3  # one kernel process per node, never shared
    parents = {s["ppid"] for s in seen.values()}
    # forked by the run's zygote, not started by this process as a new interpreter
    assert len(parents) == 1 and os.getpid() not in parents
    assert {s["parent_pid"] for s in seen.values()} == {str(p) for p in parents}
    for name, s in seen.items():
        assert s["sid"] == s["pid"]  # its own session: interrupts reach only this kernel
        assert s["cwd"] == str(nbs)  # the notebook's directory, not the previous node's "/"
        assert s["mine"] == name and s["other"] is None
        assert s["helper"] == "from the notebook dir"  # imports from the notebook's dir
        # nothing the node before left behind: globals, module attributes, environment
        assert not s["leak_global"] and not s["leak_module"] and s["leak_env"] is None
    assert len({s["random"] for s in seen.values()}) == 3  # random reseeded in each fork
    for pid in pids | parents:  # every kernel and the zygote stopped with the run
        assert _gone(pid), pid
    for s in seen.values():
        # Unix sockets named after the kernel (no TCP port another process could take
        # between jupyter_client picking it and the kernel binding it), removed after
        conn = s["connection"]
        assert conn["transport"] == "ipc" and os.path.isabs(conn["ip"]), conn
        assert not glob.glob(glob.escape(conn["ip"]) + "-*")


def test_other_interpreter_settings_get_a_new_interpreter(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "only_here.py").write_text("")
    seen, _ = _run(tmp_path, env_b={"PYTHONPATH": str(extra)})
    # b's PYTHONPATH differs from the run's: a fork could not honour it, so b's kernel is a
    # new interpreter started by this process; a and c still come from the zygote
    assert seen["b"]["ppid"] == os.getpid()
    assert seen["a"]["ppid"] == seen["c"]["ppid"] != os.getpid()
    assert seen["b"]["mine"] == "b" and not seen["b"]["leak_env"]
    assert seen["b"]["connection"]["transport"] == "ipc"
