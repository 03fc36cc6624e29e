"""Secrets never leave in node output: a notebook node that prints the cluster password,
a service (with its token), the cluster's S3 secret key, and raises an error containing
the password leaves none of them in any file of the run directory or the CLI's output."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import requests

from oscar_elyra.client import Service
from oscar_elyra.pipeline.builder import node, pipeline, write_notebook, write_pipeline

BIN = Path(sys.executable).parent

CELL_PRINT = """import os
print("password:", os.environ["OSCAR_PASSWORD"])
from oscar_elyra.session import connect
client = connect().client
svc = client.get_service("cowsay")
print(svc)
print("token is", svc["token"], "and", svc.token)
print("config", client.config())
svc"""
CELL_RAISE = """raise RuntimeError("bad password " + os.environ["OSCAR_PASSWORD"])"""
SCRIPT = """import os, sys
print("script sees", os.environ["OSCAR_PASSWORD"])
print("to stderr", os.environ["OSCAR_PASSWORD"], file=sys.stderr)
"""


def test_no_secret_in_any_file_or_output(cluster, cluster_env, tmp_path):
    token = requests.get(
        f"{cluster.endpoint}/system/services/cowsay",
        auth=(cluster.user, cluster.password),
        timeout=30,
    ).json()["token"]
    secrets = [cluster.password, token, cluster.s3_secret_key]
    forms = secrets + [base64.b64encode(s.encode()).decode() for s in secrets]
    write_notebook(tmp_path / "leak.ipynb", CELL_PRINT, CELL_RAISE)
    (tmp_path / "leak.py").write_text(SCRIPT)
    path = write_pipeline(
        tmp_path / "leak.pipeline",
        pipeline([node("script", "leak.py"), node("notebook", "leak.ipynb")]),
    )
    proc = subprocess.run(
        [str(BIN / "oscar-elyra"), "run", str(path), "--run-dir", str(tmp_path / "run")],
        cwd=tmp_path,
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    run_dir = tmp_path / "run"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"run.json", "report.html", "log.txt", "leak.ipynb"} <= names, names
    # the nodes did print them: the redacted places show ***
    executed = (run_dir / "nodes").rglob("leak.ipynb").__next__().read_text()
    assert "password: ***" in executed and "'token': '***'" in executed
    assert "bad password ***" in proc.stderr
    for where, text in [("stdout", proc.stdout), ("stderr", proc.stderr)] + [
        (str(p), p.read_bytes().decode("utf-8", "replace")) for p in files
    ]:
        for secret in forms:
            assert secret not in text, f"a secret leaked into {where}"


def test_service_repr_hides_token():
    svc = Service(name="x", token="t0ps3cr3t-token", environment={"secrets": {"K": "v4lue-s3cr3t"}})
    for text in (repr(svc), str(svc), f"{svc}", repr([svc])):
        assert "t0ps3cr3t" not in text and "v4lue-s3cr3t" not in text
    assert svc.token == svc["token"] == "t0ps3cr3t-token"
    assert dict(svc)["environment"]["secrets"]["K"] == "v4lue-s3cr3t"
