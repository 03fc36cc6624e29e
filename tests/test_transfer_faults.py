"""Download faults a real S3 server does not produce on demand, from a small real proxy in
front of a real SeaweedFS: the object replaced between the parts of one download, a ranged
answer shorter than asked, a body cut mid-stream, and one failing file among many (the
others not started are cancelled). The objects are stored without a sha256 (as any other
S3 client leaves them), so the final checksum cannot hide a missed fault."""

from __future__ import annotations

import io
import os
import ssl
import uuid

import pytest
from s3_proxy import S3Proxy

from oscar_elyra.errors import AuthError, IntegrityError, StorageError
from oscar_elyra.storage import MiB, ObjectStore

BUCKET = "faults"


@pytest.fixture(scope="module")
def upstream(s3):
    mc = s3.minio()
    if not mc.bucket_exists(BUCKET):
        mc.make_bucket(BUCKET)
    return mc


@pytest.fixture
def proxy(s3):
    p = S3Proxy(s3.endpoint)
    yield p
    p.close()


@pytest.fixture
def store(s3, proxy):
    return ObjectStore(
        proxy.url, s3.access_key, s3.secret_key, progress=False, part_size=5 * MiB, workers=4
    )


def _put(mc, key: str, data: bytes) -> None:
    """Stored by a plain S3 client: no sha256 metadata."""
    mc.put_object(BUCKET, key, io.BytesIO(data), len(data))


def _key(name: str) -> str:
    return f"{uuid.uuid4().hex[:10]}/{name}"


def _pattern(size: int, byte: int) -> bytes:
    return bytes([byte]) * size


def test_object_replaced_during_download_is_refused(upstream, store, proxy, tmp_path):
    """12 MiB: a first part, then ranged GETs pinned to its ETag. The object is replaced
    (same size, other bytes) right after the first part: no file mixing two versions."""
    key = _key("big.bin")
    _put(upstream, key, _pattern(12 * MiB, 1))

    def replace():
        _put(upstream, key, _pattern(12 * MiB, 2))

    proxy.fault = lambda m, k, h, n: ("after", replace) if k == key and n == 1 else None
    with pytest.raises(StorageError, match="changed while it was being read; retry"):
        store.get_file(f"{BUCKET}/{key}", tmp_path / "big.bin")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file


@pytest.mark.parametrize("size", [7 * MiB, 12 * MiB], ids=["one-rest-get", "parallel-ranges"])
def test_short_range_answer_is_refused(upstream, store, proxy, tmp_path, size):
    """A ranged GET answered with fewer bytes than asked (a consistent 206): an error, no
    file with a hole in it."""
    key = _key("short.bin")
    _put(upstream, key, os.urandom(size))
    proxy.fault = lambda m, k, h, n: ("short", 1 * MiB) if k == key and n == 2 else None
    with pytest.raises(IntegrityError, match=r"retry"):
        store.get_file(f"{BUCKET}/{key}", tmp_path / "short.bin")
    assert proxy.hits["GET", key] >= 2, "the fault never fired"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("nth", [1, 2], ids=["first-part", "a-later-range"])
def test_body_cut_mid_stream_is_resumed(upstream, store, proxy, tmp_path, nth):
    """The connection closes once after part of a body whose length was announced: the rest
    is asked again (of the same version) and the file is complete."""
    key = _key("cut.bin")
    data = os.urandom(12 * MiB)
    _put(upstream, key, data)
    proxy.fault = lambda m, k, h, n: ("cut", 1 * MiB) if k == key and n == nth else None
    out = store.get_file(f"{BUCKET}/{key}", tmp_path / "cut.bin")
    assert out.read_bytes() == data
    assert proxy.hits["GET", key] > 3, "the cut body was not asked again"  # 3 parts of 5 MiB
    assert [p.name for p in tmp_path.iterdir()] == ["cut.bin"]


@pytest.mark.parametrize("size", [300_000, 12 * MiB], ids=["small", "ranged"])
def test_body_cut_every_time_is_refused(upstream, store, proxy, tmp_path, size):
    """Every answer cut mid-body: after the retries, an error and no file."""
    key = _key("cut.bin")
    _put(upstream, key, os.urandom(size))
    proxy.fault = lambda m, k, h, n: ("cut", 1000) if k == key else None
    with pytest.raises(IntegrityError, match="the connection closed mid-body; retry"):
        store.get_file(f"{BUCKET}/{key}", tmp_path / "cut.bin")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(IntegrityError, match="the connection closed mid-body; retry"):
        store.get_bytes(f"{BUCKET}/{key}")


def test_first_failure_cancels_the_files_not_started(upstream, store, proxy, tmp_path):
    """40 files, 4 at a time, the first one refused: the error comes out and most of the
    other files are never requested (without cancellation all 40 would be)."""
    prefix = uuid.uuid4().hex[:10]
    keys = [f"{prefix}/f{i:02d}.bin" for i in range(40)]
    for k in keys:
        _put(upstream, k, b"x" * 1000)
    proxy.fault = lambda m, k, h, n: ("deny",) if k == keys[0] else None
    with pytest.raises(AuthError, match="AccessDenied"):
        store.download_dir(f"{BUCKET}/{prefix}", tmp_path / "out")
    requested = [k for k in keys if proxy.hits["GET", k]]
    assert keys[0] in requested
    assert len(requested) < 20, f"{len(requested)} of 40 files were still fetched"


def test_tls_verified_by_default_and_with_the_given_ca(s3, upstream, self_signed, tmp_path):
    """An HTTPS endpoint with a certificate of a private CA: refused by default, accepted
    with that CA's bundle or with verification off, for listings and object bodies alike."""
    key_pem, cert, ca = self_signed
    p = S3Proxy(s3.endpoint)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key_pem)
    p.socket = ctx.wrap_socket(p.socket, server_side=True)
    url = p.url.replace("http://", "https://")
    prefix = uuid.uuid4().hex[:10]
    _put(upstream, f"{prefix}/a.bin", b"a" * 100)
    try:
        default = ObjectStore(url, s3.access_key, s3.secret_key, progress=False)
        refused = r"TLS error at https://.*: certificate UnknownIssuer; .*verify=PATH"
        with pytest.raises(StorageError, match=refused):
            default.get_bytes(f"{BUCKET}/{prefix}/a.bin")
        with pytest.raises(StorageError, match=refused):
            default.put_bytes(b"x", f"{BUCKET}/{prefix}/b.bin")
        with pytest.raises(StorageError, match="cannot talk to S3 at https://"):
            list(default.list(f"{BUCKET}/{prefix}/"))
        assert p.hits["PUT", f"{prefix}/b.bin"] == 0  # refused before any request was sent
        for verify in (str(ca), False):
            st = ObjectStore(url, s3.access_key, s3.secret_key, progress=False, verify=verify)
            st.put_bytes(b"b" * 50, f"{BUCKET}/{prefix}/b.bin")
            out = st.download_dir(f"{BUCKET}/{prefix}", tmp_path / str(verify is False))
            assert sorted((q.name, q.read_bytes()) for q in out) == [
                ("a.bin", b"a" * 100),
                ("b.bin", b"b" * 50),
            ]
    finally:
        p.close()
