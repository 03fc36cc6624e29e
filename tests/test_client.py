"""OscarClient against the embedded cluster over real HTTP (fixtures from conftest.py)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from oscar_elyra.cli import exit_code
from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig, resolve_cluster
from oscar_elyra.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    ServiceError,
    ValidationError,
    is_bad_input,
)
from oscar_elyra.redact import redact

ECHO_SCRIPT = (
    '#!/bin/sh\ncat "$INPUT_FILE_PATH"\necho "job-log-line $(basename $INPUT_FILE_PATH)" >&2\n'
)


def _svc(name: str, script: str = ECHO_SCRIPT) -> dict:
    return {
        "name": name,
        "image": "ghcr.io/grycap/alpine",
        "script": script,
        "memory": "256Mi",
        "cpu": "0.5",
        "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
    }


def _name(prefix: str = "tb") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def echo(client) -> str:
    name = _name("tb-echo")
    client.create_service(_svc(name))
    yield name
    try:
        client.delete_service(name)
    except NotFoundError:
        pass


def _wait_jobs(client: OscarClient, service: str, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        jobs = client.list_jobs(service)
        done = [j for j in jobs.values() if j.get("status") in ("Succeeded", "Failed")]
        if len(done) >= count:
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not finished: {jobs}")
        time.sleep(0.1)


def test_resolve_from_environment_reaches_cluster(cluster, tmp_path):
    env = {
        **cluster.env(),
        "OSCAR_ELYRA_DATA_DIR": str(tmp_path),
        "OSCAR_CLI_CONFIG": str(tmp_path / "none.yaml"),
    }
    client = OscarClient(resolve_cluster(env=env))
    assert client.endpoint == cluster.endpoint.rstrip("/")
    assert client.cluster.ssl_verify is False
    assert client.info()["version"]


def test_system_calls(cluster, client):
    assert client.health() is True
    info = client.info()
    assert info["version"].startswith("embedded-")
    assert info["serverless_backend"]["name"] == "oscar-elyra-embedded"
    status = client.status()
    assert status["oscar"]["ready"] is True and status["cluster"]["nodes_count"] == 1
    assert status["oscar"]["jobs_count"] == sum(status["oscar"]["pods"]["states"].values())
    cfg = client.config()
    assert cfg["minio_provider"]["endpoint"] == cluster.s3_endpoint
    provider = client.minio_provider()
    assert provider["endpoint"] == cluster.s3_endpoint
    assert provider["access_key"] == cluster.s3_access_key
    assert provider["secret_key"] == cluster.s3_secret_key
    assert provider["secret_key"] not in redact(json.dumps(provider))


def test_list_and_get_examples(client):
    names = {s["name"] for s in client.list_services()}
    assert {"cowsay", "grayify", "digits"} <= names
    svc = client.get_service("cowsay")
    assert svc["name"] == "cowsay" and len(svc.get("token", "")) >= 32
    assert svc["input"][0]["path"].startswith("cowsay")


def test_unknown_service_message(client, cluster):
    with pytest.raises(NotFoundError) as info:
        client.get_service("no-such-service")
    assert str(info.value) == (
        f"cluster 'local' ({cluster.endpoint.rstrip('/')}): service 'no-such-service' "
        "not found (404)"
    )
    assert not is_bad_input(info.value) and exit_code(info.value) == 1
    with pytest.raises(NotFoundError, match="service 'no-such-service' not found"):
        client.post_run("no-such-service", b"{}")


def test_create_update_apply_delete(client):
    name = _name()
    svc = _svc(name)
    client.create_service(svc)
    try:
        with pytest.raises(ConflictError, match=f"service '{name}' already exists"):
            client.create_service(svc)
        token = client.get_service(name)["token"]
        client.update_service({**svc, "memory": "512Mi"})
        after = client.get_service(name)
        assert after["memory"] == "512Mi"
        assert after["token"] == token  # kept on update
        assert client.apply_service({**svc, "cpu": "1"}) == "updated"
        assert client.get_service(name)["cpu"] == "1"
    finally:
        client.delete_service(name)
    with pytest.raises(NotFoundError):
        client.get_service(name)
    with pytest.raises(NotFoundError):
        client.delete_service(name)
    with pytest.raises(NotFoundError):
        client.update_service(svc)
    assert client.apply_service(svc) == "created"
    client.delete_service(name)


def test_invalid_service_is_refused_before_sending(client):
    with pytest.raises(ValidationError, match="name"):
        client.create_service({"name": "Bad_Name!", "image": "x", "script": "y"})
    with pytest.raises(ValidationError, match="script"):
        client.apply_service({"name": "ok-name", "image": "x"})
    assert "ok-name" not in {s["name"] for s in client.list_services()}


def test_apply_bundled_example_fdl(client):
    from oscar_elyra.local.examples import fdl_paths

    paths = fdl_paths()
    assert paths
    for path in paths:
        results = client.apply_fdl(path)
        assert results and all(action == "updated" for _, action in results)  # already deployed


def test_apply_fdl_file_creates_then_updates(client, tmp_path):
    name = _name("tb-fdl")
    (tmp_path / "echo.sh").write_text(ECHO_SCRIPT)
    fdl = tmp_path / "svc.yaml"
    fdl.write_text(
        "functions:\n  oscar:\n  - my-cluster:\n      name: " + name + "\n"
        "      image: alpine\n      memory: 128Mi\n      cpu: '0.5'\n"
        "      script: echo.sh\n"
        "      input:\n      - storage_provider: minio.default\n        path: " + name + "/in\n"
    )
    try:
        assert client.apply_fdl(fdl) == [(name, "created")]
        assert client.get_service(name)["script"] == ECHO_SCRIPT
        assert client.apply_fdl(fdl) == [(name, "updated")]
    finally:
        client.delete_service(name)
    bad = tmp_path / "bad.yaml"
    bad.write_text("functions:\n  oscar:\n  - c:\n      name: x\n")
    with pytest.raises(ValidationError):
        client.apply_fdl(bad)


def test_post_run_streams_response(client, echo):
    payload = {"message": "héllo wörld", "n": 3}
    with client.post_run(echo, json.dumps(payload).encode()) as resp:
        assert resp.status_code == 200
        assert json.loads(b"".join(resp.iter_content(1024))) == payload
    with client.post_run(echo, iter([b'{"a"', b": 1}"])) as resp:  # chunked upload
        assert json.loads(resp.content) == {"a": 1}


def test_post_run_cowsay(client):
    with client.post_run("cowsay", json.dumps({"message": "moo-from-b"}).encode()) as resp:
        text = resp.text
    assert "moo-from-b" in text


def test_service_token_cached(client, echo):
    token = client.service_token(echo)
    assert token == client.get_service(echo)["token"]
    assert client._tokens[echo] == token
    assert client.service_token(echo) is token


def test_wrong_password_is_auth_error_without_secret(cluster):
    wrong = "wrong-password-" + uuid.uuid4().hex
    cfg = ClusterConfig(
        cluster_id="local",
        endpoint=cluster.endpoint,
        user=cluster.user,
        password=wrong,
        ssl_verify=False,
    )
    with pytest.raises(AuthError) as info:
        OscarClient(cfg).list_services()
    msg = str(info.value)
    assert "(401)" in msg and "OSCAR_PASSWORD" in msg
    assert wrong not in msg and cluster.password not in msg


def test_wrong_service_token_is_auth_error(client, echo):
    client._tokens[echo] = "0" * 64
    with pytest.raises(AuthError, match=f"service '{echo}'"):
        client.post_run(echo, b"{}")
    with client.post_run(echo, b"{}") as resp:  # token forgotten and fetched again
        assert resp.status_code == 200


def test_jobs_list_log_delete(client, echo):
    client.delete_jobs(echo, all=True)
    for i in range(2):
        client.post_job(echo, json.dumps({"job": i}).encode())
    jobs = _wait_jobs(client, echo, 2)
    assert len(jobs) == 2
    first, second = sorted(jobs)
    assert all(j["status"] == "Succeeded" for j in jobs.values())
    log = client.get_job_log(echo, first)
    assert "job-log-line" in log
    client.delete_job(echo, first)
    assert set(client.list_jobs(echo)) == {second}
    with pytest.raises(NotFoundError, match=f"job '{first}' of service '{echo}'"):
        client.get_job_log(echo, first)
    client.delete_jobs(echo)  # succeeded ones
    assert client.list_jobs(echo) == {}
    with pytest.raises(NotFoundError):
        client.list_jobs("no-such-service")


def test_list_jobs_paginated_past_one_page(client):
    """OSCAR pages the job list 70 at a time (v3.6.4+); all pages are followed."""
    name = _name("tb-many")
    client.create_service(_svc(name, "#!/bin/sh\ntrue\n"))
    try:
        n = 75
        for _ in range(n):
            client.post_job(name, b"{}")
        import requests

        raw = requests.get(
            f"{client.endpoint}/system/logs/{name}",
            auth=(client.cluster.user, client.cluster.password),
            timeout=30,
        ).json()
        assert set(raw) <= {"jobs", "next_page", "remaining_jobs"} and raw.get("next_page")
        assert len(raw["jobs"]) < n
        jobs = client.list_jobs(name)
        assert len(jobs) == n
    finally:
        client.delete_service(name)


def test_post_job_unknown_service(client):
    with pytest.raises(NotFoundError, match="service 'nope-nope' not found"):
        client.post_job("nope-nope", b"{}")


def test_client_not_picklable(client):
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(client)


def test_server_error_body_excerpt(client, cluster):
    # a body that is neither JSON nor base64 is refused by the cluster with 400
    with pytest.raises(ServiceError) as info:
        client.post_run("grayify", b"\x00\x01 not base64 !!")
    assert info.value.status == 400 and info.value.body
    msg = str(info.value)
    assert "service 'grayify'" in msg and cluster.endpoint.rstrip("/") in msg and "(400)" in msg


def test_ssl_verify_defaults_on():
    cfg = ClusterConfig(cluster_id="x", endpoint="https://example.invalid")
    assert OscarClient(cfg)._session.verify is True


def test_example_fdl_paths_exist():
    from oscar_elyra.local.examples import fdl_paths

    paths = fdl_paths()
    assert sorted(Path(p).stem for p in paths) == ["cowsay", "deepaas-digits", "digits", "grayify"]
    assert all(Path(p).is_file() for p in paths)


def test_secrets_absent_from_logs_output_and_errors(cluster, client, echo, caplog, capsys):
    import logging

    from oscar_elyra.redact import install_log_redaction

    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    token = client.service_token(echo)
    s3_secret = client.minio_provider()["secret_key"]
    secrets = [cluster.password, token, s3_secret, cluster.s3_secret_key]
    texts = [repr(client), repr(client.cluster), str(client.cluster)]
    client.info()
    client.list_services()
    client.get_service(echo)
    with client.post_run(echo, b'{"x": 1}') as resp:
        resp.content  # noqa: B018
    client.list_jobs(echo)
    logging.getLogger("oscar_elyra.test").debug("config %s %s", client.cluster, client.config())
    for bad in (
        lambda: client.get_service("nope-x"),
        lambda: client.post_run("nope-x", b"{}"),
        lambda: OscarClient(client.cluster.with_(password=cluster.password + "x")).list_services(),
    ):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any typed error
            bad()
        texts.append(str(info.value) + repr(info.value))
    out = capsys.readouterr()
    texts += [caplog.text, out.out, out.err]
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert "***" in caplog.text  # the config dump was logged, redacted
    for secret in secrets:
        assert secret not in blob
