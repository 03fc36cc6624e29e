"""The embedded cluster's data dir is its owner's only: 0700, files 0600, also when the
directory existed before with loose modes (fixed on start), and for what jobs write."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import time

import requests
from minio import Minio
from test_local_async import service_token

from oscar_elyra.local import LocalCluster


def _loose(root) -> list[str]:
    """Paths under ``root`` that give group or others any access (symlinks aside)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                found.append(f"{path} {oct(stat.S_IMODE(st.st_mode))}")
    return found


def test_existing_loose_data_dir_is_fixed_on_start(tmp_path):
    data = tmp_path / "cluster"
    (data / "logs").mkdir(parents=True)
    (data / "services").mkdir()
    for path in (data, data / "logs", data / "services"):
        os.chmod(path, 0o755)
    (data / "logs" / "old.log").write_text("old")
    os.chmod(data / "logs" / "old.log", 0o644)
    script = data / "services" / "tool.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    outside = tmp_path / "outside.txt"  # a symlink in the data dir is not followed
    outside.write_text("x")
    os.chmod(outside, 0o644)
    (data / "link").symlink_to(outside)
    with LocalCluster(data) as cluster:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert _loose(data) == []
        assert stat.S_IMODE(script.stat().st_mode) == 0o700  # the owner's x bit is kept
        assert stat.S_IMODE(outside.stat().st_mode) == 0o644
        # the event stream position (where a restart resumes) is where the docs say
        assert (data / "watch" / "position.json").is_file()
        # what the cluster writes while it runs: service, job record and log, outputs
        cluster.deploy_examples()
        auth = (cluster.user, cluster.password)
        token = service_token(cluster, "cowsay")
        r = requests.post(
            f"{cluster.endpoint}/job/cowsay",
            data=b'{"message": "modes"}',
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 201
        host = cluster.s3_endpoint.split("://", 1)[1]
        minio = Minio(host, cluster.s3_access_key, cluster.s3_secret_key, secure=False)
        minio.put_object("cowsay", "input/x.txt", io.BytesIO(b"hi"), 2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the job finished: record, log, outputs written
            jobs = requests.get(
                f"{cluster.endpoint}/system/logs/cowsay", auth=auth, timeout=30
            ).json()["jobs"]
            states = [j["status"] for j in jobs.values()]
            if states and all(s in ("Succeeded", "Failed") for s in states):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"jobs did not finish: {jobs}")
        loose = [p for p in _loose(data) if not p.rsplit(" ", 1)[0].endswith(".vif")]
        assert loose == [], loose  # (SeaweedFS chmods its .vif files 0644 itself)


def test_server_log_cluster_file_and_a_second_server(tmp_path):
    """What the server says and leaves: its log lines (time, level, logger), cluster.json
    while it runs (what clients read) and not after a stop; a second server on the same data
    dir exits 3 naming the running one's pid."""
    data = tmp_path / "cluster"
    with LocalCluster(data, max_jobs=2, job_timeout=7) as cluster:
        info = json.loads((data / "cluster.json").read_text())
        endpoints = (cluster.endpoint, cluster.s3_endpoint)
        assert info["pid"] == cluster.pid and info["endpoint"] == cluster.endpoint
        assert info["s3_endpoint"] == cluster.s3_endpoint and info["user"] == cluster.user
        assert (info["max_jobs"], info["job_timeout"], info["compat"]) == (2, 7.0, "embedded")
        assert info["credentials_file"] == str(data / "credentials.json")
        second = subprocess.run(
            [sys.executable, "-m", "oscar_elyra.local.server", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3, second.stderr
        assert (
            f"error: a cluster is already running from {data.resolve()} (pid {cluster.pid}); "
            "stop it with 'oscar-elyra local down'"
        ) in second.stderr
    assert not (data / "cluster.json").exists()
    lines = (data / "logs" / "server.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO oscar_elyra\.local: "
    started = "OSCAR API on {}, S3 on {}".format(*map(re.escape, endpoints))
    assert any(re.fullmatch(stamp + started + ", max_jobs=2", line) for line in lines), lines
    assert re.fullmatch(stamp + "stopped", lines[-1]), lines[-3:]
    assert "Logging error" not in "\n".join(lines)
