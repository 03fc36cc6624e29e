"""Faults a real cluster can't produce on demand, from a small real misbehaving HTTP server.

503-then-200, stalls and connection resets check urllib3's Retry with backoff on idempotent
calls, that POST /run, /job and service creation are never retried, and that timeouts and
error messages name the cluster, endpoint and service. The server also answers the old
(< v3.6.4) bare-map job list and a paginated one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig
from oscar_elyra.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    ServiceError,
    TimeoutError,
    UnsafePathError,
)
from oscar_elyra.invoke import run
from oscar_elyra.storage import ObjectStore

SERVICE_TOKEN = "f" * 24 + "0123456789abcdef" * 2 + "e" * 8  # 64 hex chars
PASSWORD = "fault-server-password-31337"


class FaultServer:
    """Routes ``(method, path)`` to a script of actions, consumed in order (the last repeats).

    Actions: ``(status, body)``; ``("stall", seconds, status, body)``; ``("reset",)``;
    ``("cut", status, body, nbytes)``: announce the whole body, send ``nbytes`` of it, close.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple]] = {}
        self.hits: Counter[tuple[str, str]] = Counter()
        self.queries: list[str] = []
        self.auth: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self) -> None:
                path, _, query = self.path.partition("?")
                key = (self.command, path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                elif self.headers.get("Transfer-Encoding") == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        self.rfile.read(size + 2)
                        if size == 0:
                            break
                owner.hits[key] += 1
                owner.queries.append(query)
                owner.auth.append(self.headers.get("Authorization"))
                script = owner.routes.get(key)
                if not script:
                    action: tuple = (404, "404 page not found")
                else:
                    action = script.pop(0) if len(script) > 1 else script[0]
                if action[0] == "reset":
                    # RST instead of FIN: the client sees "connection reset by peer"
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                if action[0] == "stall":
                    time.sleep(action[1])
                    action = action[2:]
                cut = None
                if action[0] == "cut":
                    cut, action = action[3], action[1:3]
                status, body = action
                data = (
                    body
                    if isinstance(body, bytes)
                    else (json.dumps(body) if not isinstance(body, str) else body).encode()
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data if cut is None else data[:cut])
                    if cut is not None:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, *actions: tuple) -> None:
        self.routes[(method, path)] = list(actions)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FaultServer()
    srv.route("GET", "/system/services/svc", (200, {"name": "svc", "token": SERVICE_TOKEN}))
    yield srv
    srv.close()


def client_for(srv: FaultServer, **kwargs) -> OscarClient:
    cfg = ClusterConfig(cluster_id="faulty", endpoint=srv.url, user="oscar", password=PASSWORD)
    kwargs.setdefault("backoff_factor", 0.01)
    return OscarClient(cfg, **kwargs)


def test_get_retried_on_503_then_succeeds(server):
    server.route("GET", "/system/info", (503, "busy"), (503, "busy"), (200, {"version": "9"}))
    assert client_for(server, retries=3).info() == {"version": "9"}
    assert server.hits[("GET", "/system/info")] == 3


def test_backoff_between_retries(server):
    server.route("GET", "/system/info", (503, ""), (503, ""), (503, ""), (200, {"ok": 1}))
    start = time.monotonic()
    client_for(server, retries=3, backoff_factor=0.2).info()
    elapsed = time.monotonic() - start
    # urllib3 2.x: no sleep before the first retry, then 0.4 s, 0.8 s
    assert elapsed >= 1.1, elapsed
    assert server.hits[("GET", "/system/info")] == 4


def test_503_forever_gives_service_error_after_retries(server):
    server.route("GET", "/system/services", (503, "upstream down"))
    with pytest.raises(ServiceError) as info:
        client_for(server, retries=2).list_services()
    msg = str(info.value)
    assert server.hits[("GET", "/system/services")] == 3
    assert "cluster 'faulty'" in msg and server.url in msg and "(503)" in msg
    assert "upstream down" in msg and info.value.status == 503


def test_put_and_delete_are_retried(server):
    server.route("PUT", "/system/services", (502, ""), (204, ""))
    server.route("DELETE", "/system/services/svc", (504, ""), (204, ""))
    client = client_for(server)
    client.update_service({"name": "svc", "image": "alpine", "script": "echo"})
    client.delete_service("svc")
    assert server.hits[("PUT", "/system/services")] == 2
    assert server.hits[("DELETE", "/system/services/svc")] == 2


@pytest.mark.parametrize("path", ["/run/svc", "/job/svc"])
def test_post_run_and_job_never_retried_on_503(server, path):
    server.route("POST", path, (503, "overloaded"), (200, "ok"))
    client = client_for(server, retries=5)
    with pytest.raises(ServiceError) as info:
        if path.startswith("/run"):
            client.post_run("svc", b"payload")
        else:
            client.post_job("svc", b"payload")
    assert server.hits[("POST", path)] == 1
    assert "service 'svc'" in str(info.value) and "(503)" in str(info.value)


def test_create_service_not_retried(server):
    server.route("POST", "/system/services", (503, ""), (201, ""))
    with pytest.raises(ServiceError):
        client_for(server).create_service({"name": "svc", "image": "alpine", "script": "echo"})
    assert server.hits[("POST", "/system/services")] == 1


def test_connection_reset_retried_for_get_not_for_post(server):
    server.route("GET", "/system/status", ("reset",), (200, {"ok": True}))
    assert client_for(server).status() == {"ok": True}
    assert server.hits[("GET", "/system/status")] == 2

    server.route("POST", "/run/svc", ("reset",), (200, "ok"))
    with pytest.raises(ServiceError) as info:
        client_for(server).post_run("svc", b"x")
    assert server.hits[("POST", "/run/svc")] == 1
    msg = str(info.value)
    assert "cluster 'faulty'" in msg and server.url in msg and "/run/svc" in msg


def test_stall_gives_timeout_error_naming_cluster_and_call(server):
    server.route("GET", "/system/info", ("stall", 1.5, 200, {}))
    client = client_for(server, timeout=(2, 0.3), retries=1)
    # the stalled answer is a 200: only a read timeout (each attempt) makes this raise
    with pytest.raises(TimeoutError) as info:
        client.info()
    assert server.hits[("GET", "/system/info")] == 2  # idempotent: read timeout retried once
    msg = str(info.value)
    assert "cluster 'faulty'" in msg and server.url in msg and "/system/info" in msg
    assert isinstance(info.value, builtins_timeout())


def builtins_timeout() -> type:
    import builtins

    return builtins.TimeoutError


def test_stalled_run_times_out_once_with_service_name(server):
    server.route("POST", "/run/svc", ("stall", 1.5, 200, "late"))
    client = client_for(server, retries=3)
    with pytest.raises(TimeoutError) as info:
        client.post_run("svc", b"x", timeout=0.3)
    assert server.hits[("POST", "/run/svc")] == 1
    msg = str(info.value)
    assert "service 'svc'" in msg
    assert "/run/svc" in msg and "cluster 'faulty'" in msg


def test_sync_answer_cut_mid_stream(server, tmp_path):
    """/run answers 200 with a base64 body announced whole but cut after 4 KiB: an error
    naming the service, and no output file (nothing half-written)."""
    body = base64.b64encode(os.urandom(30_000))
    server.route("POST", "/run/svc", ("cut", 200, body, 4096))
    out = tmp_path / "out"
    with pytest.raises(ServiceError, match="service 'svc': the response was cut off"):
        run("svc", b"x", out / "result.bin", client=client_for(server))
    assert server.hits[("POST", "/run/svc")] == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_connection_refused_message():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    cfg = ClusterConfig(cluster_id="gone", endpoint=f"http://127.0.0.1:{port}")
    client = OscarClient(cfg, retries=1, backoff_factor=0.01)
    with pytest.raises(ServiceError, match=rf"cluster 'gone' \(http://127.0.0.1:{port}\)"):
        client.list_services()
    assert client.health() is False


@pytest.mark.parametrize(
    ("status", "exc", "fragment"),
    [
        (401, AuthError, "(401)"),
        (403, AuthError, "(403)"),
        (404, NotFoundError, "service 'nope' not found (404)"),
        (500, ServiceError, "(500)"),
    ],
)
def test_status_mapping_and_messages(server, status, exc, fragment):
    server.route("GET", "/system/services/nope", (status, f"failure; password={PASSWORD}"))
    with pytest.raises(exc) as info:
        client_for(server, retries=0).get_service("nope")
    msg = str(info.value)
    assert fragment in msg and f"cluster 'faulty' ({server.url})" in msg
    assert PASSWORD not in msg  # a body echoing a secret is redacted


def test_conflict_on_create(server):
    server.route("POST", "/system/services", (409, "A service with the name already exists"))
    with pytest.raises(ConflictError, match="service 'svc' already exists"):
        client_for(server).create_service({"name": "svc", "image": "a", "script": "s"})


def test_long_error_body_is_shortened(server):
    server.route("POST", "/run/svc", (500, "x" * 5000))
    with pytest.raises(ServiceError) as info:
        client_for(server).post_run("svc", b"x")
    assert len(str(info.value)) < 800 and len(info.value.body) <= 501


def test_service_token_fetched_once_and_sent_as_bearer(server):
    server.route("POST", "/run/svc", (200, "hello"))
    client = client_for(server)
    for _ in range(3):
        with client.post_run("svc", iter([b"chunk1", b"chunk2"])) as resp:
            assert resp.text == "hello"
    assert server.hits[("GET", "/system/services/svc")] == 1
    run_auth = [a for a in server.auth if a and a.startswith("Bearer")]
    assert run_auth == [f"Bearer {SERVICE_TOKEN}"] * 3
    assert client.service_token("svc") == SERVICE_TOKEN


def test_refused_service_token_is_forgotten(server):
    server.route("POST", "/run/svc", (401, "invalid token"), (200, "ok"))
    client = client_for(server)
    with pytest.raises(AuthError, match="service token was refused"):
        client.post_run("svc", b"x")
    client.post_run("svc", b"x").close()
    assert server.hits[("GET", "/system/services/svc")] == 2


def test_list_jobs_bare_map_of_old_versions(server):
    bare = {
        "svc-job-a": {"status": "Succeeded", "creation_time": "t1"},
        "svc-job-b": {"status": "Failed"},
    }
    server.route("GET", "/system/logs/svc", (200, bare))
    assert client_for(server).list_jobs("svc") == bare


def test_list_jobs_follows_pages(server):
    server.route(
        "GET",
        "/system/logs/svc",
        (200, {"jobs": {"j1": {"status": "Running"}}, "next_page": "p2", "remaining_jobs": 2}),
        (200, {"jobs": {"j2": {"status": "Pending"}}, "next_page": "p3", "remaining_jobs": 1}),
        (200, {"jobs": {"j3": {"status": "Succeeded"}}, "next_page": "", "remaining_jobs": 0}),
    )
    jobs = client_for(server).list_jobs("svc")
    assert list(jobs) == ["j1", "j2", "j3"]
    assert server.queries[-3:] == ["", "page=p2", "page=p3"]


def test_list_jobs_repeated_page_token_stops(server):
    server.route(
        "GET",
        "/system/logs/svc",
        (200, {"jobs": {"j1": {}}, "next_page": "same", "remaining_jobs": 5}),
    )
    with pytest.raises(ServiceError, match="repeats page"):
        client_for(server).list_jobs("svc")


def test_non_json_answer(server):
    server.route("GET", "/system/info", (200, "<html>proxy login</html>"))
    with pytest.raises(ServiceError, match="non-JSON"):
        client_for(server).info()


def test_minio_provider_both_shapes_and_secret_registered(server):
    from oscar_elyra.redact import redact

    provider = {
        "endpoint": "http://s3",
        "access_key": "ak",
        "secret_key": "s3-secret-xyz-1",
        "region": "r1",
        "verify": False,
    }
    server.route(
        "GET",
        "/system/config",
        (200, {"config": {"minio_provider": provider}}),
        (200, {"minio_provider": provider}),
    )
    client = client_for(server)
    assert client.minio_provider() == provider
    assert client.minio_provider()["region"] == "r1"
    assert redact("key s3-secret-xyz-1") == "key ***"


def test_oidc_token_used_for_run_instead_of_service_token(server):
    server.route("POST", "/run/svc", (200, "ok"))
    server.route("POST", "/job/svc", (201, ""))
    cfg = ClusterConfig(cluster_id="faulty", endpoint=server.url, token="oidc-access-token-1")
    client = OscarClient(cfg)
    client.post_run("svc", b"{}").close()
    client.post_job("svc", b"{}")
    assert server.hits[("GET", "/system/services/svc")] == 0
    assert server.auth[-2:] == ["Bearer oidc-access-token-1"] * 2


@pytest.fixture
def tls_server(self_signed):
    key, cert, _ = self_signed
    srv = FaultServer()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.httpd.socket = ctx.wrap_socket(srv.httpd.socket, server_side=True)
    srv.url = srv.url.replace("http://", "https://")
    srv.route("GET", "/system/info", (200, {"version": "tls"}))
    srv.route("GET", "/health", (200, "Ok"))
    yield srv, cert
    srv.close()


def test_tls_verification_on_by_default(tls_server):
    srv, cert = tls_server
    cfg = ClusterConfig(cluster_id="tls", endpoint=srv.url, user="u", password=PASSWORD)
    with pytest.raises(ServiceError, match=r"cluster 'tls'.*TLS error.*OSCAR_SSL_VERIFY"):
        OscarClient(cfg, retries=0).info()
    assert OscarClient(cfg, retries=0).health() is False
    # off only when asked (also with REQUESTS_CA_BUNDLE set, which requests would let win)
    insecure = OscarClient(cfg.with_(ssl_verify=False))
    assert insecure.info() == {"version": "tls"}
    assert insecure.health() is True


# ---------------------------------------------------------------- S3 listings AWS allows


def _listing(bucket: str, keys: list[str]) -> bytes:
    items = "".join(
        f"<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        f'<ETag>"0123456789abcdef0123456789abcdef"</ETag><Size>4</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for k in keys
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix>tree/</Prefix><KeyCount>{len(keys)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
    ).encode()


@pytest.mark.parametrize(
    "bad_key", ["tree/a/../../../outside/x.txt", "tree/../x.txt", "tree//abs/x.txt"]
)
def test_download_dir_refuses_keys_leaving_the_folder(server, tmp_path, bad_key):
    """AWS S3 stores keys with ``..`` or a leading ``/`` after the prefix: download_dir refuses
    them before anything is fetched or written."""
    server.route("GET", "/bkt", (200, _listing("bkt", ["tree/ok.txt", bad_key])))
    store = ObjectStore(
        server.url, "ak-fault", "sk-fault-secret", region="us-east-1", progress=False
    )
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(UnsafePathError, match="refusing"):
        store.download_dir("bkt/tree", dest)
    assert [k for k in server.hits if k[1] != "/bkt"] == []  # no object was fetched
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == []
