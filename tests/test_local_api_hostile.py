"""The embedded cluster's API against hostile requests: credentials before bodies, bounded
bodies, deep JSON, bucket names S3 refuses, bad environment variables, no enumeration.

Every answer here is a 4xx with one line, never a 500 (the server's memory under eight
unauthenticated 50 MB bodies is measured by benchmarks/bench_hostile_bodies.py).
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from urllib.parse import quote, urlsplit

import pytest
import requests

from oscar_elyra.local.api import JSON_BODY_MAX

TIMEOUT = 60
BIG = 50 * 1024 * 1024


def api(cluster, method, path, auth="basic", **kw):
    if auth == "basic":
        auth = (cluster.user, cluster.password)
    return requests.request(method, cluster.endpoint + path, auth=auth, timeout=TIMEOUT, **kw)


def _answer_before_body(cluster, path: str, headers: dict[str, str]) -> bytes:
    """Declare a 50 MB body, send its headers and 256 KiB of it, then read the answer.

    A server that reads the body before answering sends nothing back until all 50 MB
    arrived: the read would run into the deadline (and the test fail).
    """
    url = urlsplit(cluster.endpoint)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {BIG}\r\n"
    head += "Content-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(head.encode() + b"[" * (256 * 1024))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)  # deadline: the socket timeout
            if not chunk:
                break
            answer += chunk
    return answer


def _basic(cluster) -> str:
    return "Basic " + base64.b64encode(f"{cluster.user}:{cluster.password}".encode()).decode()


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/system/services", {}, 401),
        ("/system/services", {"Authorization": "Basic b3NjYXI6d3Jvbmc="}, 401),
        ("/run/cowsay", {}, 401),
        ("/job/cowsay", {"Authorization": "Bearer wrong"}, 401),
        ("/run/no-such-service", {"Authorization": "Bearer wrong"}, 401),
        ("/system/services", "basic", 413),  # authenticated, but over the JSON limit
    ],
)
def test_answered_before_the_body_is_read(cluster, path, headers, status):
    if headers == "basic":
        headers = {"Authorization": _basic(cluster)}
    answer = _answer_before_body(cluster, path, headers)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    # and the server is still fine
    assert api(cluster, "GET", "/health", auth=None).status_code == 200


def test_json_limit_and_nesting(cluster):
    r = api(cluster, "POST", "/system/services", data=b" " * (JSON_BODY_MAX + 1))
    assert r.status_code == 413
    for depth in (65, 5000, 200_000):
        body = "[" * depth + "]" * depth
        for method in ("POST", "PUT"):
            r = api(cluster, method, "/system/services", data=body)
            assert r.status_code == 400 and "nested" in r.text, (depth, r.status_code, r.text)
    deep_field = {"name": "deep", "image": "a", "script": "s", "x": json.loads("[" * 70 + "]" * 70)}
    r = api(cluster, "POST", "/system/services", json=deep_field)
    assert r.status_code == 400 and "nested" in r.text


def _svc(**extra) -> dict:
    name = f"h-{uuid.uuid4().hex[:10]}"
    return {"name": name, "image": "alpine", "script": "echo", **extra}


@pytest.mark.parametrize(
    "path", ["ab.-cd/x", "ab-.cd/x", "192.168.10.20/x", "xn--abc/x", "abc-s3alias/x", "Ab/x"]
)
def test_bucket_names_s3_refuses_are_400(cluster, path):
    svc = _svc(input=[{"storage_provider": "minio.default", "path": path}])
    r = api(cluster, "POST", "/system/services", json=svc)
    assert r.status_code == 400 and "bucket" in r.text, r.text
    assert "\n" not in r.text.strip()
    assert api(cluster, "GET", f"/system/services/{svc['name']}").status_code == 404


@pytest.mark.parametrize(
    "variables",
    [{"A=B": "1"}, {"1A": "1"}, {"": "1"}, {"A B": "1"}, {"A": "x\x00y"}, {"A\x00": "1"}],
)
def test_bad_environment_is_400_at_create_and_update(cluster, variables):
    svc = _svc(environment={"variables": variables})
    r = api(cluster, "POST", "/system/services", json=svc)
    assert r.status_code == 400 and "environment" in r.text, r.text
    good = _svc()
    assert api(cluster, "POST", "/system/services", json=good).status_code == 201
    try:
        r = api(
            cluster, "PUT", "/system/services", json={**good, "environment": svc["environment"]}
        )
        assert r.status_code == 400 and "environment" in r.text, r.text
        secrets_ = {**good, "environment": {"secrets": variables}}
        assert api(cluster, "PUT", "/system/services", json=secrets_).status_code == 400
    finally:
        api(cluster, "DELETE", f"/system/services/{good['name']}")


def test_memory_and_providers_of_the_wrong_type_are_400(cluster):
    for extra in ({"memory": [1]}, {"cpu": {"a": 1}}, {"storage_providers": [1]}):
        r = api(cluster, "POST", "/system/services", json=_svc(**extra))
        assert r.status_code == 400, (extra, r.status_code, r.text)


def test_no_enumeration_of_services_without_credentials(cluster):
    for path in ("/run/cowsay", "/run/nope", "/job/cowsay", "/job/nope"):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            r = api(cluster, "POST", path, auth=None, data="{}", headers=headers)
            assert r.status_code == 401, (path, headers, r.status_code)
        assert api(cluster, "GET", "/system/services/nope", auth=None).status_code == 401


@pytest.mark.parametrize("name", ["ab.-cd", "192.168.1.1", "cow say", "%2e%2e", "xn--abc", "A_b"])
def test_bucket_routes_with_names_s3_refuses_are_4xx(cluster, name):
    path = f"/system/buckets/{quote(name, safe='')}"
    for method, extra in [("GET", {}), ("DELETE", {}), ("POST", {"json": {}})]:
        url = path + ("/presign" if method == "POST" else "")
        r = api(cluster, method, url, **extra)
        assert 400 <= r.status_code < 500, (method, name, r.status_code, r.text)
