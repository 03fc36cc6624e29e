"""Only S3, with its keys, reaches the data of the bundled SeaweedFS (``weed mini``).

A local user who is not the cluster's owner can connect to every 127.0.0.1 port that
``weed mini`` opens: master, volume, filer and admin HTTP, and their gRPC ports. Each of
them is tried here as such a user would (curl-like HTTP, the ``weed`` binary's own gRPC
client without the cluster's ``security.toml``, raw TLS): listing, reading and writing
are refused, while minio-py with the S3 keys still works and the owner's ``weed shell``
(with the cluster's certificate) still sees the object, which shows the same probes
would have found it.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import ssl
import stat
import subprocess

import pytest
import requests

from oscar_elyra.local.weed import find_weed

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP_PORTS = ("master.port", "filer.port", "volume.port", "admin.port")
GRPC_PORTS = ("master.port.grpc", "filer.port.grpc", "volume.port.grpc", "s3.port.grpc")


@pytest.fixture(scope="module")
def planted(s3):
    """An object put through S3: (bucket, key, content)."""
    bucket = "sec-" + secrets.token_hex(4)
    key = "in/secret-" + secrets.token_hex(4) + ".txt"
    content = b"MARK" + secrets.token_hex(16).encode() + b"\n"
    client = s3.minio()
    client.make_bucket(bucket)
    client.put_object(bucket, key, io.BytesIO(content), len(content))
    return bucket, key, content


def _shell(s3, script: str, *, owner: bool, cwd, timeout: float = 20.0) -> str:
    """Run ``weed shell`` against the cluster; as the owner (its config dir) or not."""
    p = s3.ports
    master = f"127.0.0.1:{p['master.port']}.{p['master.port.grpc']}"
    filer = f"127.0.0.1:{p['filer.port']}.{p['filer.port.grpc']}"
    cmd = [find_weed()]
    if owner:
        cmd.append(f"-config_dir={s3.data_dir}")
    cmd += ["shell", f"-master={master}", f"-filer={filer}"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(script.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:  # no connection: it retries forever
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
    return out.decode(errors="replace")


@pytest.fixture(scope="module")
def fid(s3, planted, tmp_path_factory):
    """The volume file id of the planted object, read by the owner through gRPC + mTLS."""
    bucket, key, _ = planted
    out = _shell(
        s3, f"fs.meta.cat /buckets/{bucket}/{key}\n", owner=True, cwd=tmp_path_factory.mktemp("o")
    )
    found = re.search(r'"fileId":\s*"([0-9]+,[0-9a-f]+)"', out)
    assert found, f"the owner's weed shell did not show the object: {out[-500:]}"
    return found.group(1)


def test_s3_with_keys_still_works(s3, planted):
    bucket, key, content = planted
    client = s3.minio()
    assert client.get_object(bucket, key).read() == content
    assert [o.object_name for o in client.list_objects(bucket, recursive=True)] == [key]


def test_http_ports_refuse_listing_reading_writing(s3, planted, fid):
    bucket, key, content = planted
    vid = fid.split(",")[0]
    p = s3.ports
    url = {name: f"http://127.0.0.1:{p[name]}" for name in HTTP_PORTS}
    listing = [
        ("filer.port", "GET", "/"),
        ("filer.port", "GET", "/buckets/"),
        ("filer.port", "GET", f"/buckets/{bucket}/"),
        ("filer.port", "GET", f"/buckets/{bucket}/in/?pretty=y"),
        ("master.port", "GET", "/dir/status"),
        ("master.port", "GET", "/vol/status"),
        ("master.port", "GET", "/collection/info"),
        ("master.port", "GET", f"/dir/lookup?volumeId={vid}"),
        ("volume.port", "GET", "/ui/index.html"),
        ("admin.port", "GET", "/api/s3/buckets"),
        ("admin.port", "GET", "/files"),
    ]
    reading = [
        ("filer.port", "GET", f"/buckets/{bucket}/{key}"),
        ("volume.port", "GET", f"/{fid}"),
        ("volume.port", "GET", f"/{vid}/{fid.split(',')[1]}"),
        ("volume.port", "GET", f"/{fid}?jwt=not.a.jwt"),
        ("master.port", "GET", f"/{fid}"),
    ]
    writing = [
        ("master.port", "GET", "/dir/assign"),
        ("master.port", "POST", "/submit"),
        ("filer.port", "POST", f"/buckets/{bucket}/in/evil.txt"),
        ("filer.port", "PUT", f"/buckets/{bucket}/in/evil2.txt"),
        ("volume.port", "POST", f"/{vid},01deadbeef"),
        ("volume.port", "POST", f"/{fid}"),
        ("volume.port", "DELETE", f"/{fid}"),
        ("filer.port", "DELETE", f"/buckets/{bucket}/{key}"),
    ]
    for port, method, path in listing + reading + writing:
        files = {"file": ("evil.txt", b"EVIL")} if method in ("POST", "PUT") else None
        r = requests.request(method, url[port] + path, files=files, timeout=10)
        what = f"{method} {port}{path} -> {r.status_code} {r.text[:200]!r}"
        assert r.status_code in (401, 403, 404, 405), what
        assert content.decode().strip() not in r.text and key not in r.text, what
        assert '"fid"' not in r.text and '"auth"' not in r.text, what  # no write token
    # the unrefused status pages (master UI, volume /status, admin /metrics) name no objects
    status_pages = [("master.port", "/"), ("volume.port", "/status"), ("admin.port", "/metrics")]
    for port, path in status_pages:
        text = requests.get(url[port] + path, timeout=10).text
        assert key not in text and content.decode().strip() not in text
    # nothing was written or deleted behind S3's back
    client = s3.minio()
    assert [o.object_name for o in client.list_objects(bucket, recursive=True)] == [key]
    assert client.get_object(bucket, key).read() == content


def test_filer_unix_socket_is_owner_only(s3):
    path = f"/tmp/seaweedfs-filer-{s3.ports['filer.port']}.sock"
    if not os.path.exists(path):
        pytest.skip("this weed build opens no filer socket")
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
    with socket.socket(socket.AF_UNIX) as sock:  # and the owner gets no HTTP API there either
        sock.connect(path)
        sock.sendall(b"GET /buckets/ HTTP/1.0\r\n\r\n")
        assert sock.recv(100).split(b" ")[1] == b"404"


def _tls(port: int, ca: str, cert: tuple[str, str] | None) -> bytes:
    """Open TLS (ALPN h2) to ``port`` with or without a client certificate; the first bytes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            return tls.recv(64)


def test_grpc_ports_require_the_cluster_certificate(s3):
    tls_dir = s3.data_dir / "tls"
    ca, cert = str(tls_dir / "ca.crt"), (str(tls_dir / "weed.crt"), str(tls_dir / "weed.key"))
    for name in GRPC_PORTS:
        port = s3.ports[name]
        assert _tls(port, ca, cert), f"{name}: the owner's certificate should be accepted"
        with pytest.raises((ssl.SSLError, ConnectionError)):
            got = _tls(port, ca, None)
            if not got:  # closed without a word: refused too
                raise ConnectionError("closed")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # plaintext gRPC
            raw.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            try:
                got = raw.recv(64)
            except ConnectionError:
                got = b""
            assert not got.startswith(b"\x00\x00"), f"{name} answered plaintext HTTP/2"


@pytest.mark.slow
def test_grpc_clients_without_the_certificate_see_nothing(s3, planted, fid, tmp_path):
    bucket, key, content = planted
    owner = _shell(s3, f"fs.ls /buckets/{bucket}/in\n", owner=True, cwd=tmp_path)
    assert key.rsplit("/", 1)[1] in owner  # the probe below would have found it
    script = (
        f"fs.ls /buckets/{bucket}/in\nfs.cat /buckets/{bucket}/{key}\n"
        f"fs.rm /buckets/{bucket}/{key}\nvolume.list\n"
    )
    out = _shell(s3, script, owner=False, cwd=tmp_path, timeout=15)
    assert key.rsplit("/", 1)[1] not in out and content.decode().strip() not in out, out[-500:]
    assert fid not in out
    assert s3.minio().get_object(bucket, key).read() == content


def test_security_files_are_owner_only(s3):
    for path in [s3.data_dir, s3.data_dir / "security.toml", *(s3.data_dir / "tls").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    conf = (s3.data_dir / "security.toml").read_text()
    assert s3.secret_key not in conf
    assert json.dumps(s3.ports)  # every port is known to the caller (printable)
