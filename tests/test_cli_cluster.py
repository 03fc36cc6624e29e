"""CLI `cluster`, `services`, `logs` against the embedded cluster (CliRunner and subprocess)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.client import OscarClient

SCRIPT = '#!/bin/sh\ncat "$INPUT_FILE_PATH"\necho "cli-job-log" >&2\n'


def _fdl(path: Path, name: str) -> Path:
    (path.parent / "echo.sh").write_text(SCRIPT)
    path.write_text(
        f"functions:\n  oscar:\n  - local:\n      name: {name}\n      image: alpine\n"
        f"      script: echo.sh\n      memory: 128Mi\n      cpu: '0.5'\n"
        f"      input:\n      - storage_provider: minio.default\n        path: {name}/in\n"
        f"      environment:\n        secrets:\n          API_KEY: svc-env-secret-{name}\n"
    )
    return path


@pytest.fixture(scope="module")
def isolated(tmp_path_factory) -> dict:
    """Env overrides: no OSCAR_* from the caller, no oscar-cli file, own data dir."""
    tmp = tmp_path_factory.mktemp("cli-iso")
    env = {k: None for k in os.environ if k.startswith("OSCAR_")}
    env.update(OSCAR_CLI_CONFIG=str(tmp / "no-oscar-cli.yaml"), OSCAR_ELYRA_DATA_DIR=str(tmp))
    return env


@pytest.fixture(scope="module")
def env(cluster, isolated) -> dict:
    return {**isolated, **cluster.env()}


@pytest.fixture(scope="module")
def secrets(cluster, client) -> list[str]:
    """Known secrets that must never be printed."""
    return [
        cluster.password,
        cluster.s3_secret_key,
        client.get_service("cowsay")["token"],
        client.minio_provider()["secret_key"],
    ]


def run(env: dict, *args: str, code: int = 0):
    result = CliRunner(mix_stderr=False).invoke(main, list(args), env=env, catch_exceptions=True)
    assert result.exit_code == code, (
        result.exit_code,
        result.stdout,
        result.stderr,
        result.exception,
    )
    return result


def assert_clean(result, secrets: list[str], extra: str = "") -> None:
    text = (
        result.stdout
        + result.stderr
        + extra
        + (
            repr(result.exception)
            if result.exception and not isinstance(result.exception, SystemExit)
            else ""
        )
    )
    for secret in secrets:
        assert secret not in text


def test_cluster_info(env, cluster, secrets):
    r = run(env, "cluster", "info")
    assert cluster.endpoint.rstrip("/") in r.stdout and "version:" in r.stdout
    assert_clean(r, secrets)
    data = json.loads(run(env, "--json", "cluster", "info").stdout)
    assert data["endpoint"] == cluster.endpoint.rstrip("/")
    assert data["cluster"] == "local" and data["info"]["version"]


def test_services_ls_and_get(env, secrets):
    r = run(env, "services", "ls")
    header, *rows = r.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "IMAGE"]
    assert {"cowsay", "digits", "grayify"} <= {row.split()[0] for row in rows}
    assert_clean(r, secrets)
    listed = json.loads(run(env, "--json", "services", "ls").stdout)
    cowsay = next(s for s in listed if s["name"] == "cowsay")
    assert cowsay["token"] == "***"

    r = run(env, "services", "get", "cowsay")
    assert "name: cowsay" in r.stdout and "token: '***'" in r.stdout
    assert_clean(r, secrets)
    got = json.loads(run(env, "--json", "services", "get", "cowsay").stdout)
    assert got["name"] == "cowsay" and got["token"] == "***"


def test_unknown_service_exit_1(env, cluster):
    r = run(env, "services", "get", "no-such-svc", code=1)
    assert r.stderr.strip() == (
        f"Error: cluster 'local' ({cluster.endpoint.rstrip('/')}): "
        "service 'no-such-svc' not found (404)"
    )
    assert r.stdout == ""


def test_services_apply_rm(env, tmp_path, secrets):
    name = f"tb-cli-{uuid.uuid4().hex[:8]}"
    fdl = _fdl(tmp_path / "svc.yaml", name)
    secret = f"svc-env-secret-{name}"
    try:
        r = run(env, "services", "apply", str(fdl))
        assert r.stdout.strip() == f"created {name}"
        out = json.loads(run(env, "--json", "services", "apply", str(fdl)).stdout)
        assert out == [{"name": name, "action": "updated", "cluster": "local"}]
        got = run(env, "services", "get", name)
        assert "API_KEY: '***'" in got.stdout
        assert_clean(got, [*secrets, secret])
        assert_clean(run(env, "--json", "services", "ls"), [*secrets, secret])
    finally:
        r = run(env, "services", "rm", name)
    assert r.stdout.strip() == f"deleted {name}"
    r = run(env, "services", "rm", name, code=1)
    assert "not found (404)" in r.stderr


def test_services_apply_bad_input_exit_2(env, tmp_path):
    r = run(env, "services", "apply", str(tmp_path / "missing.yaml"), code=2)
    assert "does not exist" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("functions:\n  oscar:\n  - c:\n      name: Not_A_DNS_Name\n")
    r = run(env, "services", "apply", str(bad), code=2)
    assert r.stderr.startswith("Error: ") and "bad.yaml" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Missing argument 'NAME" in run(env, "services", "rm", code=2).stderr


def _wait(client: OscarClient, service: str, n: int) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = client.list_jobs(service)
        if sum(j.get("status") in ("Succeeded", "Failed") for j in jobs.values()) >= n:
            return jobs
        time.sleep(0.1)
    raise AssertionError("jobs did not finish")


def test_logs_ls_get_rm(env, client, tmp_path, secrets):
    name = f"tb-logs-{uuid.uuid4().hex[:8]}"
    client.apply_fdl(_fdl(tmp_path / "svc.yaml", name))
    try:
        for i in range(3):
            client.post_job(name, json.dumps({"i": i}).encode())
        jobs = _wait(client, name, 3)
        r = run(env, "logs", "ls", name)
        assert r.stdout.splitlines()[0].split()[:2] == ["JOB", "STATUS"]
        assert set(jobs) <= set(r.stdout.split())
        listed = json.loads(run(env, "--json", "logs", "ls", name).stdout)
        assert set(listed) == set(jobs) and all(j["status"] == "Succeeded" for j in listed.values())
        first, second, third = sorted(jobs)
        r = run(env, "logs", "get", name, first)
        assert "cli-job-log" in r.stdout
        assert json.loads(run(env, "--json", "logs", "get", name, first).stdout)["job"] == first
        assert_clean(r, secrets)

        both = "give job names, or exactly one of --succeeded / --all"
        assert both in run(env, "logs", "rm", name, code=2).stderr  # neither jobs nor a flag
        assert both in run(env, "logs", "rm", name, first, "--all", code=2).stderr
        r = run(env, "logs", "rm", name, first)
        assert r.stdout.strip() == f"deleted {first}"
        assert set(client.list_jobs(name)) == {second, third}
        run(env, "logs", "get", name, first, code=1)
        out = json.loads(run(env, "--json", "logs", "rm", name, "--succeeded").stdout)
        assert out == {"service": name, "deleted": "succeeded"}
        assert client.list_jobs(name) == {}
        client.post_job(name, b"{}")
        _wait(client, name, 1)
        run(env, "logs", "rm", name, "--all")
        assert client.list_jobs(name) == {}
        assert json.loads(run(env, "--json", "logs", "ls", name).stdout) == {}
    finally:
        client.delete_service(name)
    run(env, "logs", "ls", name, code=1)


def test_no_cluster_configured_exit_2(isolated):
    r = run(isolated, "services", "ls", code=2)
    assert "no OSCAR cluster configured" in r.stderr
    assert "OSCAR_ENDPOINT" in r.stderr and "oscar-elyra local up" in r.stderr


def test_bad_ssl_verify_env_exit_2(env):
    r = run({**env, "OSCAR_SSL_VERIFY": "sometimes"}, "cluster", "info", code=2)
    assert "OSCAR_SSL_VERIFY" in r.stderr


def test_cluster_selection_from_oscar_cli_config(cluster, isolated, tmp_path, secrets):
    path = tmp_path / "config.yaml"
    path.write_text(
        "oscar:\n"
        f"  mine:\n    endpoint: {cluster.endpoint}\n    auth_user: {cluster.user}\n"
        f"    auth_password: {cluster.password}\n    ssl_verify: false\n"
        "  other:\n    endpoint: http://127.0.0.1:9\n    auth_user: x\n"
        "    auth_password: other-password\n"
        "default: other\n"
    )
    env = {**isolated, "OSCAR_CLI_CONFIG": str(path)}
    data = json.loads(run(env, "--cluster", "mine", "--json", "cluster", "info").stdout)
    assert data["cluster"] == "mine" and str(path) in data["source"]
    r = run(env, "--cluster", "nope", "cluster", "info", code=2)
    assert "'nope' is not in" in r.stderr and "mine, other" in r.stderr
    r = run(env, "cluster", "info", code=1)  # default 'other' is unreachable
    assert "cluster 'other' (http://127.0.0.1:9)" in r.stderr
    assert_clean(r, [*secrets, "other-password"])


def test_wrong_password_exit_1_and_no_secret(env, caplog):
    wrong = "wrong-cli-password-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    r = run({**env, "OSCAR_PASSWORD": wrong}, "-vv", "services", "ls", code=1)
    assert "(401)" in r.stderr and "OSCAR_PASSWORD" in r.stderr
    assert_clean(r, [wrong], caplog.text)


def test_secrets_never_printed_verbose(env, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    for args in (
        ["cluster", "info"],
        ["services", "ls"],
        ["services", "get", "cowsay"],
        ["--json", "services", "get", "digits"],
        ["logs", "ls", "cowsay"],
    ):
        r = run(env, "-vv", *args)
        assert_clean(r, secrets, caplog.text)
        for record in caplog.records:
            for secret in secrets:
                assert secret not in record.getMessage()


def _exe() -> list[str]:
    script = Path(sys.executable).with_name("oscar-elyra")
    if script.exists():
        return [str(script)]
    found = shutil.which("oscar-elyra")
    assert found, "oscar-elyra entry point not installed"
    return [found]


def test_real_subprocess(cluster_env, isolated, secrets):
    env = {k: v for k, v in cluster_env.items()}
    env.update({k: v for k, v in isolated.items() if v is not None})
    p = subprocess.run(
        [*_exe(), "-vv", "--json", "services", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "cowsay" in {s["name"] for s in json.loads(p.stdout)}
    p2 = subprocess.run(
        [*_exe(), "services", "get", "no-such"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p2.returncode == 1 and "not found (404)" in p2.stderr
    bare = {k: v for k, v in env.items() if not k.startswith("OSCAR_") or k in isolated}
    p3 = subprocess.run(
        [*_exe(), "cluster", "info"], env=bare, capture_output=True, text=True, timeout=120
    )
    assert p3.returncode == 2 and "oscar-elyra local up" in p3.stderr
    for proc in (p, p2, p3):
        for secret in secrets:
            assert secret not in proc.stdout + proc.stderr


def test_running_embedded_cluster_found_without_settings(cluster, isolated):
    """With nothing configured, the embedded cluster recorded in the data dir is used."""
    env = {**isolated, "OSCAR_ELYRA_DATA_DIR": str(cluster.data_dir)}
    data = json.loads(run(env, "--json", "cluster", "info").stdout)
    assert data["cluster"] == "local"
    assert data["endpoint"] == cluster.endpoint.rstrip("/")
    assert "embedded cluster" in data["source"]
    # --endpoint of that cluster without credentials borrows the recorded ones
    out = run(env, "--endpoint", cluster.endpoint, "--json", "services", "ls").stdout
    assert "cowsay" in {s["name"] for s in json.loads(out)}
    # ... but another endpoint gets none
    r = run(env, "--endpoint", "http://127.0.0.1:9", "services", "ls", code=1)
    assert "cluster 'local' (http://127.0.0.1:9)" in r.stderr
