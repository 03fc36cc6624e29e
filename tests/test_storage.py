"""ObjectStore against a real SeaweedFS S3 server (fixture ``s3``)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import uuid
from pathlib import Path

import pytest
from s3_proxy import S3Proxy

from oscar_elyra._paths import safe_join
from oscar_elyra._paths import safe_join_fast as _safe_join_fast
from oscar_elyra.errors import (
    AuthError,
    IntegrityError,
    NotFoundError,
    StorageError,
    UnsafePathError,
    ValidationError,
)
from oscar_elyra.storage import MiB, ObjectStore, parse_uri


@pytest.fixture(scope="module")
def store(s3):
    st = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, progress=False, part_size=5 * MiB)
    st.ensure_bucket("ctest")
    return st


@pytest.fixture()
def prefix():
    return f"ctest/{uuid.uuid4().hex[:10]}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- URIs and paths


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b1b/k/x.txt", ("b1b", "k/x.txt")),
        ("minio.default:svc/in/a.png", ("svc", "in/a.png")),
        ("minio:svc/in", ("svc", "in")),
        ("svc/in/", ("svc", "in/")),
        ("bucket", ("bucket", "")),
        ("s3://bucket", ("bucket", "")),
    ],
)
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


def test_parse_uri_default_bucket_and_errors():
    assert parse_uri("file.txt", default_bucket="svc") == ("svc", "file.txt")
    assert parse_uri("s3://other", default_bucket="svc") == ("other", "")
    for bad in ["", "   ", "http://host/b/k", "s3:///k", "bad bucket/k"]:
        with pytest.raises(ValidationError):
            parse_uri(bad)


def _open_mode(tmp_path: Path) -> int:
    """The mode open() gives a new file here (0666 & ~umask), found without the code under test."""
    probe = tmp_path / f"probe-{uuid.uuid4().hex}"
    probe.write_bytes(b"")
    mode = probe.stat().st_mode & 0o777
    probe.unlink()
    mask = os.umask(0o022)
    os.umask(mask)
    assert mode == 0o666 & ~mask
    return mode


def test_safe_join(tmp_path):
    assert safe_join(tmp_path, "a/b.txt") == tmp_path.resolve() / "a" / "b.txt"
    assert safe_join(tmp_path, "./a//c") == tmp_path.resolve() / "a" / "c"
    for bad in ["../x", "a/../../x", "/etc/passwd", "C:\\win", "a\\..\\..\\x", "", "..", "a/\x00"]:
        with pytest.raises(UnsafePathError):
            safe_join(tmp_path, bad)
        with pytest.raises(UnsafePathError):  # the per-key check download_dir uses
            _safe_join_fast(tmp_path, bad)
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(UnsafePathError, match="outside"):
        safe_join(tmp_path, "link/x")


# ---------------------------------------------------------------- objects


def test_bytes_roundtrip_stat_exists_delete(store, prefix):
    data = "héllo wörld ✓".encode()
    info = store.put_bytes(data, f"{prefix}/t.txt")
    assert info.sha256 == sha(data) and info.size == len(data)
    st = store.stat(f"s3://{prefix}/t.txt")
    assert (st.size, st.sha256) == (len(data), sha(data))
    assert st.content_type.startswith("text/plain")
    assert store.get_bytes(f"minio.default:{prefix}/t.txt") == data
    assert store.exists(f"{prefix}/t.txt") and store.exists("ctest")
    assert not store.exists(f"{prefix}/nope.txt")
    assert store.delete(f"{prefix}/t.txt") == 1
    assert not store.exists(f"{prefix}/t.txt")
    with pytest.raises(NotFoundError, match="not found"):
        store.get_bytes(f"{prefix}/t.txt")
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-zz' does not exist"):
        store.get_bytes("no-such-bucket-zz/x")


def test_empty_object(store, prefix, tmp_path):
    store.put_bytes(b"", f"{prefix}/empty")
    assert store.get_bytes(f"{prefix}/empty") == b""
    out = store.get_file(f"{prefix}/empty", tmp_path / "e")
    assert out.read_bytes() == b""


def test_file_roundtrip_multipart_and_ranged(store, prefix, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(12 * MiB + 123)
    src.write_bytes(data)
    info = store.put_file(src, f"{prefix}/")
    assert info.key.endswith("/big.bin") and info.sha256 == sha(data)
    st = store.stat(info.uri)
    assert st.sha256 == sha(data) and st.etag.endswith("-3")  # 3 parts of 5 MiB
    dest = tmp_path / "down"
    dest.mkdir()
    out = store.get_file(info.uri, dest)  # directory target keeps the name; parallel ranges
    assert out == dest / "big.bin" and sha(out.read_bytes()) == sha(data)
    assert out.stat().st_mode & 0o777 == _open_mode(tmp_path)  # like open(), not mkstemp's 0600
    out2 = store.get_file(info.uri, tmp_path / "x" / "serial.bin", _parallel=1)
    assert sha(out2.read_bytes()) == sha(data)
    with store.open(info.uri) as body:
        assert body.read(10) == data[:10]


def test_put_stream(store, prefix):
    data = os.urandom(300_000)
    info = store.put_stream(io.BytesIO(data), f"{prefix}/s1")  # spooled, digest computed
    assert store.stat(info.uri).sha256 == sha(data)
    info = store.put_stream(io.BytesIO(data), f"{prefix}/s2", len(data), sha256=sha(data))
    assert store.get_bytes(info.uri) == data
    # streamed straight through: the content type still comes from the key's extension
    info = store.put_stream(io.BytesIO(b"{}"), f"{prefix}/s.json", 2, sha256=sha(b"{}"))
    assert (info.content_type, store.stat(info.uri).content_type) == ("application/json",) * 2
    with pytest.raises(IntegrityError):
        store.put_stream(io.BytesIO(data), f"{prefix}/s3", len(data), sha256="0" * 64)
    assert not store.exists(f"{prefix}/s3")


def test_corrupt_object_detected_and_nothing_left(s3, store, prefix, tmp_path):
    bucket, key = parse_uri(f"{prefix}/bad.bin")
    # an object whose stored checksum does not match its content
    store._mc.put_object(bucket, key, io.BytesIO(b"abc"), 3, metadata={"sha256": "f" * 64})
    with pytest.raises(IntegrityError, match="sha256"):
        store.get_file(f"{prefix}/bad.bin", tmp_path / "bad.bin")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file
    with pytest.raises(IntegrityError):
        store.get_bytes(f"{prefix}/bad.bin")


def test_missing_local_file_and_bad_uri(store, tmp_path, prefix):
    with pytest.raises(ValidationError, match="does not exist"):
        store.put_file(tmp_path / "missing.txt", f"{prefix}/x")
    with pytest.raises(ValidationError, match="key"):
        store.put_bytes(b"x", "ctest")


def test_directory_roundtrip_with_checksums(store, prefix, tmp_path):
    src = tmp_path / "src"
    expected = {}
    for i in range(25):
        rel = Path(f"d{i % 3}") / f"sub{i % 2}" / f"f{i}.bin"
        data = os.urandom(1000 + i * 97)
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        expected[rel.as_posix()] = sha(data)
    infos = store.upload_dir(src, f"{prefix}/tree")
    assert {i.key.split("/tree/", 1)[1]: i.sha256 for i in infos} == expected
    listed = {o.key for o in store.list(f"{prefix}/tree/")}
    assert len(listed) == 25
    top = list(store.list(f"{prefix}/tree/", recursive=False))
    assert sorted(o.key.rsplit("/", 2)[-2] for o in top if o.is_dir) == ["d0", "d1", "d2"]
    dest = tmp_path / "dest"
    paths = store.download_dir(f"{prefix}/tree", dest)
    got = {p.relative_to(dest).as_posix(): sha(p.read_bytes()) for p in paths}
    assert got == expected
    assert not [p for p in dest.rglob("*.part")]
    assert store.delete(f"{prefix}/tree", recursive=True) == 25
    assert list(store.list(f"{prefix}/tree/")) == []


def test_list_pagination_past_1000(s3, store, tmp_path):
    st = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, progress=False, workers=32)
    prefix = f"ctest/many-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "many"
    src.mkdir()
    for i in range(1001):
        (src / f"{i:04d}").write_bytes(b"%d" % i)
    st.upload_dir(src, prefix)
    keys = [o.key for o in st.list(prefix + "/")]
    assert len(keys) == 1001 and len(set(keys)) == 1001
    assert st.delete(prefix, recursive=True) == 1001


def test_wrong_secret_is_auth_error_without_secret(s3, store, prefix):
    secret = "wrong-secret-" + uuid.uuid4().hex
    bad = ObjectStore(s3.endpoint, s3.access_key, secret, progress=False)
    assert secret not in repr(bad) and s3.secret_key not in repr(bad)
    with pytest.raises(AuthError) as ei:
        bad.put_bytes(b"x", f"{prefix}/x")
    assert secret not in str(ei.value)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(bad)


def test_endpoint_validation():
    with pytest.raises(ValidationError):
        ObjectStore("http://h:1/path", "a", "b")
    st = ObjectStore("example.org:9000", "a", "secret-xyz")
    assert st.endpoint == "https://example.org:9000" and st.secure
    from oscar_elyra.redact import redact

    assert "secret-xyz" not in redact("key secret-xyz")


def test_progress_bar_on_request(s3, store, tmp_path, capsys):
    st = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, progress=True)
    f = tmp_path / "p.bin"
    f.write_bytes(os.urandom(50_000))
    st.put_file(f, "ctest/progress/p.bin")
    st.get_file("ctest/progress/p.bin", tmp_path / "back.bin")
    err = capsys.readouterr().err
    assert "upload p.bin" in err and "download back.bin" in err
    quiet = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, progress=False)
    quiet.get_file("ctest/progress/p.bin", tmp_path / "again.bin")
    assert capsys.readouterr().err == ""


def test_small_reads_take_one_request_each(s3, store, prefix, tmp_path):
    """Reads of small objects cost one GET each: no stat/HEAD round trip before it
    (requests counted by a real proxy in front of the S3 server)."""
    for i in range(5):
        store.put_bytes(b"x" * (100 + i), f"{prefix}/few/{i}.bin")
    proxy = S3Proxy(s3.endpoint)
    try:
        st = ObjectStore(proxy.url, s3.access_key, s3.secret_key, progress=False, workers=4)
        assert st.get_bytes(f"{prefix}/few/3.bin") == b"x" * 103
        st.download_dir(f"{prefix}/few", tmp_path / "few")
    finally:
        proxy.close()
    key = prefix.partition("/")[2]
    assert dict(proxy.hits) == {
        ("GET", f"{key}/few/{i}.bin"): 2 if i == 3 else 1 for i in range(5)
    }  # get_bytes, then one GET per object (the listing is not an object's)
    assert sorted(p.name for p in (tmp_path / "few").iterdir()) == [f"{i}.bin" for i in range(5)]


def test_download_dir_refuses_unsafe_keys(store, prefix, tmp_path):
    """A key under a folder of the target that is a symlink to elsewhere is refused before
    anything is written."""
    outside = tmp_path / "outside"
    outside.mkdir()
    # SeaweedFS refuses keys with ".." (AWS S3 takes them: tests/test_faults.py lists some)
    with pytest.raises(ValidationError, match="a '.' or '..' segment"):
        store.put_bytes(b"gotcha", f"{prefix}/evil/a/../../../outside/x.txt")
    store.put_bytes(b"data", f"{prefix}/linked/d/y.txt")
    store.put_bytes(b"more", f"{prefix}/linked/z.txt")
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    (dest2 / "d").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symlink"):
        store.download_dir(f"{prefix}/linked", dest2)
    assert list(outside.iterdir()) == [] and not (dest2 / "z.txt").exists()


def test_downloaded_files_get_the_usual_mode(store, prefix, tmp_path):
    store.put_bytes(b"a" * 10, f"{prefix}/m/one.txt")
    store.put_bytes(b"b" * 10, f"{prefix}/m/sub/two.txt")
    paths = store.download_dir(f"{prefix}/m", tmp_path / "d")
    single = store.get_file(f"{prefix}/m/one.txt", tmp_path / "single.txt")
    want = _open_mode(tmp_path)
    assert {p.name: p.stat().st_mode & 0o777 for p in [*paths, single]} == {
        "one.txt": want,
        "two.txt": want,
        "single.txt": want,
    }


# ---------------------------------------------------------------- what users read back


class _ChangeAfterFirstChunk:
    """A progress bar that replaces the object once the first bytes arrived: the object
    changes in the middle of a download, as when another client overwrites it."""

    def __init__(self, change):
        self._change = change

    def update(self, n=1):
        change, self._change = self._change, None
        if change is not None:
            change()

    def set_total(self, total):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("parallel", [1, 4])
def test_object_changed_during_download_is_refused(store, prefix, tmp_path, parallel):
    uri = f"s3://{prefix}/changing.bin"
    store.put_bytes(os.urandom(12 * MiB), uri)
    new = os.urandom(12 * MiB)
    bar = _ChangeAfterFirstChunk(lambda: store.put_bytes(new, uri))
    with pytest.raises(StorageError) as info:
        store.get_file(uri, tmp_path / "c.bin", _parallel=parallel, _bar=bar)
    assert str(info.value) == f"object {uri} changed while it was being read; retry"
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    assert store.get_bytes(uri) == new  # a new attempt gets the new content


def test_uris_sizes_and_types_as_stored(store, prefix):
    info = store.put_bytes(b"{}", f"minio.default:{prefix}/put.json")
    assert info.uri == f"s3://{prefix}/put.json" and info.content_type == "application/json"
    st = store.stat(f"minio:{prefix}/put.json")
    assert st.uri == f"s3://{prefix}/put.json" and st.etag == info.etag and st.size == 2
    data = b'{"a": 1}'
    s = store.put_stream(io.BytesIO(data), f"{prefix}/stream.json", len(data), sha256=sha(data))
    assert s.uri == f"s3://{prefix}/stream.json" and s.size == len(data)
    assert store.stat(s.uri).content_type == "application/json"
    assert {o.key.rsplit("/", 1)[1]: o.size for o in store.list(f"{prefix}/")} == {
        "put.json": 2,
        "stream.json": len(data),
    }
    assert store.sha256(s.uri) == sha(data)
    with store.open(s.uri) as body:
        buf = bytearray(3)
        assert body.readable() and body.readinto(buf) == 3 and bytes(buf) == b'{"a'
        assert b"".join(body.iter_chunks(2)) == b'": 1}'
    assert "ctest" in store.list_buckets() and store.list_buckets() == sorted(store.list_buckets())


def test_messages_name_the_object(store, prefix):
    missing = f"s3://{prefix}/missing.txt"
    with pytest.raises(NotFoundError) as info:
        store.stat(missing)
    assert str(info.value) == f"object {missing} not found at {store.endpoint}"
    with pytest.raises(ValidationError) as info:
        store.stat("ctest")
    assert str(info.value) == "object URI 'ctest' needs a key after the bucket"
    for uri in ("ctest", f"{prefix}/dir/"):
        with pytest.raises(ValidationError, match="needs a key after the bucket"):
            store.get_bytes(uri)
    with pytest.raises(ValidationError, match="names a bucket; pass recursive=True"):
        store.delete("ctest")


def test_uri_forms_with_slashes():
    assert parse_uri("/svc/in/a.png") == ("svc", "in/a.png")
    assert parse_uri("minio:/svc/in") == ("svc", "in")
    with pytest.raises(ValidationError, match="invalid bucket name ''"):
        parse_uri("s3:///svc/in")  # an empty bucket, not "svc"


def test_store_settings_are_checked(s3):
    one = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, workers=1, part_size=5 * MiB)
    assert one.workers == 1
    with pytest.raises(ValidationError, match="workers must be >= 1"):
        ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, workers=0)
    with pytest.raises(ValidationError, match="part_size must be >= 5 MiB"):
        ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, part_size=5 * MiB - 1)


def test_object_created_event_as_minio_sends_it():
    from oscar_elyra.storage import object_created_event

    event = object_created_event("svc", "in/a b+c.png", 1234, "etag-1")
    record = event["Records"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record.pop("eventTime"))
    assert event == {
        "EventName": "s3:ObjectCreated:Put",
        "Key": "svc/in/a b+c.png",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": "svc", "arn": "arn:aws:s3:::svc"},
                    "object": {"key": "in/a%20b%2Bc.png", "size": 1234, "eTag": "etag-1"},
                },
            }
        ],
    }


def test_aws_variables_of_the_environment_are_ignored(s3, prefix, monkeypatch):
    """Only the credentials and endpoint given are used (AWS_* of the shell are not), and
    the object client's config holds no secret."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "wrong-key",
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
        "AWS_SESSION_TOKEN": "bogus-token",
        "AWS_ENDPOINT": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-3",
        "AWS_SKIP_SIGNATURE": "true",
        "AWS_UNSIGNED_PAYLOAD": "true",
        "AWS_REQUEST_PAYER": "true",
    }.items():
        monkeypatch.setenv(name, value)
    st = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, progress=False)
    st.put_bytes(b"env", f"{prefix}/env.txt")
    assert st.get_bytes(f"{prefix}/env.txt") == b"env"
    assert st.stat(f"{prefix}/env.txt").size == 3
    config = repr(st._store(prefix.split("/")[0]).config)
    assert s3.secret_key not in config and "bogus-token" not in config


def test_forked_child_gets_a_clear_error_not_a_hang(store, prefix):
    """A child forked after this process used S3 cannot use obstore (its runtime's threads
    are not copied by fork): it gets an error naming the fix, within seconds, not a hang."""
    store.put_bytes(b"before", f"{prefix}/fork.txt")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happened through the pipe, then exit at once
        os.close(read)
        signal.alarm(20)  # a hang would end here, with no report
        try:
            store.get_bytes(f"{prefix}/fork.txt")
            os.write(write, b"no error")
        except StorageError as exc:
            os.write(write, str(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        report = fh.read().decode()
    os.waitpid(pid, 0)
    assert "forked from one that had already used S3" in report, report
    assert "multiprocessing.get_context('spawn')" in report
    assert store.get_bytes(f"{prefix}/fork.txt") == b"before"  # the parent is unaffected
