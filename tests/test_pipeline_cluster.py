"""One run talks to one cluster: the cluster the CLI resolves reaches every node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline

BIN = Path(sys.executable).parent

# a node that connects the way notebooks do (no arguments) and records what it reached
NODE = """import pathlib
from oscar_elyra.session import connect
client = connect().client
names = sorted(s["name"] for s in client.list_services())
pathlib.Path("seen.txt").write_text(client.endpoint + "\\n" + ",".join(names))
"""


def _pipeline(tmp_path: Path) -> Path:
    (tmp_path / "probe.py").write_text(NODE)
    return write_pipeline(tmp_path / "p.pipeline", pipeline([node("probe", "probe.py")]))


def _run(args: list[str], tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "oscar-elyra"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _nowhere_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSCAR_", "ELYRA_"))}
    env["OSCAR_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there
    env["OSCAR_CLI_CONFIG"] = str(tmp_path / "none.yaml")
    env["OSCAR_ELYRA_DATA_DIR"] = str(tmp_path / "no-cluster")
    return env


def _secrets_absent(run_dir: Path, *secrets: str) -> None:
    for path in run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a secret leaked into {path}"


def test_endpoint_option_reaches_the_nodes(cluster, tmp_path):
    env = _nowhere_env(tmp_path)
    env.update(OSCAR_USER=cluster.user, OSCAR_PASSWORD=cluster.password)
    path = _pipeline(tmp_path)
    res = _run(
        ["--endpoint", cluster.endpoint, "run", str(path), "-q", "--run-dir", "run"],
        tmp_path,
        env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    endpoint, names = (tmp_path / "seen.txt").read_text().splitlines()
    assert endpoint == cluster.endpoint
    assert {"cowsay", "grayify", "digits"} <= set(names.split(","))
    _secrets_absent(tmp_path / "run", cluster.password)

    # without --endpoint the same environment points nowhere: the node fails, the run says so
    (tmp_path / "seen.txt").unlink()
    res = _run(["run", str(path), "-q", "--run-dir", "run2"], tmp_path, env)
    assert res.returncode == 1 and not (tmp_path / "seen.txt").exists()


def test_cluster_option_reaches_the_nodes(cluster, tmp_path):
    env = _nowhere_env(tmp_path)
    config = {
        "oscar": {
            "lab": {
                "endpoint": cluster.endpoint,
                "auth_user": cluster.user,
                "auth_password": cluster.password,
                "ssl_verify": False,
            },
            "other": {"endpoint": "http://127.0.0.1:9", "auth_user": "x", "auth_password": "y"},
        },
        "default": "other",  # what a node would pick on its own
    }
    (tmp_path / "oscar-cli.yaml").write_text(yaml.safe_dump(config))
    env["OSCAR_CLI_CONFIG"] = str(tmp_path / "oscar-cli.yaml")
    del env["OSCAR_ENDPOINT"]
    path = _pipeline(tmp_path)
    res = _run(["--cluster", "lab", "run", str(path), "-q", "--run-dir", "run"], tmp_path, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "seen.txt").read_text().splitlines()[0] == cluster.endpoint
    _secrets_absent(tmp_path / "run", cluster.password)
