"""Bucket triggers of the embedded cluster from SeaweedFS's metadata event stream.

One cluster of its own (the tests kill its event stream and restart it). "Nothing more"
is checked without sleeping: events are processed in order, so once the job of a later
upload (a sentinel) exists, every earlier event has been handled.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from minio import Minio

from oscar_elyra.local import LocalCluster
from oscar_elyra.local.events import ObjectCreated, object_created
from oscar_elyra.local.state import load_credentials
from oscar_elyra.local.weed import PORTS_FILE, SeaweedFS, socket_paths

WAIT = 60.0
SENTINEL = "sentinel-"


@pytest.fixture(scope="module")
def tc(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("triggers") / "data", max_jobs=2) as c:
        yield c


def _s3(c: LocalCluster) -> Minio:
    host = c.s3_endpoint.split("://", 1)[1]
    return Minio(host, c.s3_access_key, c.s3_secret_key, secure=False)


def _service(c: LocalCluster, **extra) -> str:
    name = f"trg-{uuid.uuid4().hex[:8]}"
    svc = {
        "name": name,
        "image": "docker.io/library/bash:5",
        "script": 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"',
        "input": [{"path": f"{name}/in"}],
        "output": [{"path": f"{name}/out"}],
        **extra,
    }
    r = requests.post(
        f"{c.endpoint}/system/services", json=svc, auth=(c.user, c.password), timeout=60
    )
    assert r.status_code == 201, r.text
    return name


def _put(c: LocalCluster, bucket: str, key: str, data: bytes, **kw) -> None:
    _s3(c).put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def _jobs(c: LocalCluster, name: str) -> list[dict]:
    """``name``'s job records (each with the ``key`` and ``etag`` of its input)."""
    out = []
    for path in (c.data_dir / "jobs" / name).glob("*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # being replaced
            continue
    return out


def _wait_key(c: LocalCluster, name: str, key: str, n: int = 1) -> list[dict]:
    """Wait until ``n`` jobs of ``name`` have input ``key``; returns every job of ``name``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        jobs = _jobs(c, name)
        if sum(j.get("key") == key for j in jobs) >= n:
            return jobs
        time.sleep(0.05)
    raise AssertionError(
        f"no {n} job(s) for {key} in {WAIT} s: {Counter(j.get('key') for j in jobs)}"
    )


def _settle(c: LocalCluster, name: str) -> Counter:
    """Upload a sentinel, wait for its job: jobs per input key (sentinels left out) once
    every earlier event is in."""
    key = f"in/{SENTINEL}{uuid.uuid4().hex[:6]}"  # under any input path of the tests
    _put(c, name, key, b"s")
    jobs = _wait_key(c, name, key)
    return Counter(j["key"] for j in jobs if SENTINEL not in j["key"])


def _tail_pids(c: LocalCluster) -> list[int]:
    """The cluster's ``weed filer.meta.tail`` processes."""
    marker = f"-config_dir={c.data_dir / 's3'}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"filer.meta.tail" in cmd and marker in cmd:
            pids.append(int(entry.name))
    return pids


def test_one_job_per_upload_overwrite_multipart_outside(tc):
    name = _service(tc)
    for i in range(5):
        _put(tc, name, f"in/f{i}.txt", f"content {i}".encode())
    _put(tc, name, "in/f0.txt", b"new content")  # overwrite, new content: a new input
    _put(tc, name, "in/f1.txt", b"content 1")  # the same content again: the same input
    big = os.urandom(6 * 1024 * 1024)
    _put(tc, name, "in/big.bin", big, part_size=5 * 1024 * 1024)  # multipart: 2 parts
    _put(tc, name, "other/x.txt", b"outside")  # same bucket, not under the input path
    _put(tc, name, "in-not/y.txt", b"outside")  # a sibling sharing the prefix's letters
    assert _s3(tc).stat_object(name, "in/big.bin").etag.endswith("-2")
    per_key = _settle(tc, name)
    assert per_key == {"in/f0.txt": 2, **{f"in/f{i}.txt": 1 for i in range(1, 5)}, "in/big.bin": 1}
    etags = {j["etag"] for j in _jobs(tc, name) if j["key"] == "in/f0.txt"}
    assert len(etags) == 2
    # the multipart object's job got the whole object
    (job,) = [j for j in _jobs(tc, name) if j["key"] == "in/big.bin"]
    assert job["size"] == len(big) and job["etag"].endswith("-2")
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        outs = {o.object_name for o in _s3(tc).list_objects(name, prefix="out/")}
        if "out/big.bin" in outs:
            break
        time.sleep(0.1)
    assert _s3(tc).get_object(name, "out/big.bin").read() == big


def _event(directory, new=None, old=None, parent=None, ts=7):
    """A metadata event as ``weed filer.meta.tail`` prints it (the fields read)."""
    return {
        "directory": directory,
        "eventNotification": {"oldEntry": old, "newEntry": new, "newParentPath": parent or ""},
        "tsNs": str(ts),
    }


def _entry(name, *, etag=None, md5=None, chunks=(), size=3, is_dir=False):
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "name": name,
        "isDirectory": is_dir,
        "chunks": [{"eTag": b64(c)} for c in chunks],
        "attributes": {"fileSize": str(size), "md5": b64(md5) if md5 else ""},
        "extended": {"Seaweed-X-Amz-ETag": b64(etag.encode())} if etag else {},
    }


def test_object_created_reads_filer_events():
    d1, d2 = hashlib.md5(b"1").digest(), hashlib.md5(b"2").digest()  # noqa: S324
    put = _event("/buckets/bk/in", _entry("a.txt", etag="abc"), parent="/buckets/bk/in")
    assert object_created(put) == ObjectCreated(7, "bk", "in/a.txt", 3, "abc")
    # no stored S3 ETag: the content's MD5, else the chunks' (as SeaweedFS's S3 API does)
    assert object_created(_event("/buckets/bk", _entry("m", md5=d1))).etag == d1.hex()
    assert object_created(_event("/buckets/bk", _entry("c", chunks=[d1]))).etag == d1.hex()
    two = object_created(_event("/buckets/bk", _entry("c", chunks=[d1, d2]))).etag
    assert two == hashlib.md5(d1 + d2).hexdigest() + "-2"  # noqa: S324
    # a rename: the object at its new place
    moved = _event("/buckets/bk/a", _entry("y", etag="e"), _entry("x"), parent="/buckets/bk/b")
    assert object_created(moved)[1:3] == ("bk", "b/y")
    for nothing in (
        _event("/buckets/bk/in", None, _entry("a.txt")),  # a delete
        _event("/buckets/bk", _entry("in", is_dir=True)),  # a folder
        _event("/buckets/bk/.uploads/u1", _entry("0001_x.part", etag="p")),  # a part
        _event("/buckets", _entry("bk", is_dir=True)),  # a bucket
        _event("/topics/.system/log", _entry("f", etag="x")),  # not in a bucket
    ):
        assert object_created(nothing) is None


def test_prefix_and_suffix_filters_apply_to_events(tc):
    name = f"trg-{uuid.uuid4().hex[:8]}"
    _service(tc, name=name, input=[{"path": f"{name}/in", "suffix": [".jpg"]}])
    _put(tc, name, "in/a.txt", b"x")
    _put(tc, name, "in/deep/b.jpg", b"x")
    sentinel = "in/zz.jpg"
    _put(tc, name, sentinel, b"x")
    jobs = _wait_key(tc, name, sentinel)
    assert Counter(j["key"] for j in jobs) == {"in/deep/b.jpg": 1, sentinel: 1}


def test_killed_event_stream_restarts_without_loss_or_repeat(tc):
    name = _service(tc)
    _put(tc, name, "in/before.txt", b"b")
    _wait_key(tc, name, "in/before.txt")
    (pid,) = _tail_pids(tc)
    os.kill(pid, signal.SIGKILL)
    _put(tc, name, "in/meanwhile.txt", b"m")  # most likely before the new stream is up
    per_key = _settle(tc, name)
    assert per_key == {"in/before.txt": 1, "in/meanwhile.txt": 1}
    assert _tail_pids(tc) not in ([], [pid])
    log = tc.log_file.read_text(errors="replace")
    assert "the storage event stream ended" in log


def _upload_while_down(
    c: LocalCluster,
    bucket: str,
    key: str,
    *,
    flush: bool,
    more: dict[str, bytes] | None = None,
    drop: str | None = None,
) -> None:
    """Upload ``key`` (and the keys of ``more``) through SeaweedFS alone on the stopped
    cluster's data (``flush``: stop it cleanly, so its metadata log keeps the events; else
    SIGKILL it: the events are lost); remove the (empty) bucket ``drop``."""
    creds = load_credentials(c.data_dir, create=False)
    weed = SeaweedFS(
        c.data_dir / "s3",
        creds["s3_access_key"],
        creds["s3_secret_key"],
        log_path=c.data_dir / "logs" / "weed.log",
    ).start()
    try:
        for k, data in {key: b"down", **(more or {})}.items():
            weed.minio().put_object(bucket, k, io.BytesIO(data), len(data))
        if drop:
            weed.minio().remove_bucket(drop)
        if not flush:
            weed.process.kill()
            weed.process.wait()
    finally:
        weed.stop()


@pytest.mark.slow
def test_upload_while_cluster_down_makes_one_job_after_restart(tmp_path, monkeypatch):
    # 1 s replayed before the position (default 60 s, more than this test's downtime): the
    # upload made while the cluster was down is found only from the position
    monkeypatch.setenv("OSCAR_ELYRA_EVENT_REPLAY", "1")
    c = LocalCluster(tmp_path / "data", max_jobs=2)
    c.start()
    try:
        name = _service(c)
        _put(c, name, "in/up.txt", b"u")
        _wait_key(c, name, "in/up.txt")
        c.stop()
        position = json.loads((c.data_dir / "watch" / "position.json").read_text())
        assert position["clean"] is True and position["ts_ns"] > 0
        _upload_while_down(c, name, "in/down.txt", flush=True)
        c.start()
        assert _settle(c, name) == {"in/up.txt": 1, "in/down.txt": 1}
        # a crash (the whole cluster killed), then an upload whose event SeaweedFS loses:
        # the restarted cluster lists its input paths once and finds it
        os.killpg(c.pid, signal.SIGKILL)
        c.wait()
        # SeaweedFS's unix sockets (hard-coded in /tmp) outlive a SIGKILL: the next start on
        # the data dir removes them
        ports = json.loads((c.data_dir / "s3" / PORTS_FILE).read_text())["ports"]
        stale = [s for s in socket_paths(ports).values() if s.exists()]
        assert len(stale) >= 5, stale
        _upload_while_down(c, name, "in/lost-event.txt", flush=False)
        assert not [s for s in stale if s.exists()]
        c.start()
        expected = {"in/up.txt": 1, "in/down.txt": 1, "in/lost-event.txt": 1}
        assert _settle(c, name) == expected
        c.stop()
        c.start()  # a clean restart: nothing is processed twice
        assert _settle(c, name) == expected
    finally:
        c.stop()


@pytest.mark.slow
def test_crash_listing_makes_jobs_only_for_new_objects_that_pass_the_filters(tmp_path, monkeypatch):
    """The listing after a crash: objects already under a path when the service got it (at
    its creation, or when an update added the path) stay processed; an upload the path's
    filter leaves out makes no job, nor does a folder marker (a key ending in "/"); an empty
    object's job gets a MinIO event of size 0; a service whose input bucket was removed is
    named in a warning, and the others' listing goes on.
    With its position file lost, the restarted cluster still makes jobs of new uploads."""
    monkeypatch.setenv("OSCAR_ELYRA_EVENT_REPLAY", "1")
    c = LocalCluster(tmp_path / "data", max_jobs=2)
    c.start()
    name = "zz-crashlist"
    auth = (c.user, c.password)
    try:
        _s3(c).make_bucket(name)
        _put(c, name, "in/before.txt", b"b")  # before the service exists
        _put(c, name, "more/old.txt", b"o")  # before an update adds its path
        svc = {
            "name": name,
            "image": "docker.io/library/bash:5",
            "script": 'b=$(basename "$INPUT_FILE_PATH"); cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'
            'printf %s "$EVENT" > "$TMP_OUTPUT_DIR/$b.event"',
            "input": [{"path": f"{name}/in"}],
            "output": [{"path": f"{name}/out"}],
        }
        r = requests.post(f"{c.endpoint}/system/services", json=svc, auth=auth, timeout=60)
        assert r.status_code == 201, r.text
        svc["input"].append({"path": f"{name}/more", "suffix": [".txt"]})
        r = requests.put(f"{c.endpoint}/system/services", json=svc, auth=auth, timeout=60)
        assert r.status_code == 204, r.text
        assert _settle(c, name) == {}
        gone = _service(c)  # listed first (services are listed by name): its failure is skipped
        assert gone < name
        os.killpg(c.pid, signal.SIGKILL)
        c.wait()
        # (in/zz.txt lists after the folder marker: the listing goes on past a marker)
        more = {"more/skip.bin": b"x", "in/empty.txt": b"", "in/folder/": b"", "in/zz.txt": b"z"}
        _upload_while_down(c, name, "more/new.txt", flush=False, more=more, drop=gone)
        c.start()
        expected = {"more/new.txt": 1, "in/empty.txt": 1, "in/zz.txt": 1}
        assert _settle(c, name) == expected
        assert f"listing inputs of {gone} failed" in c.log_file.read_text(errors="replace")
        event = json.loads(_s3(c).get_object(name, "out/empty.txt.event").read())
        assert event["Records"][0]["s3"]["object"]["key"] == "in/empty.txt"
        assert event["Records"][0]["s3"]["object"]["size"] == 0
        c.stop()
        (c.data_dir / "watch" / "position.json").unlink()
        c.start()
        c.wait_idle()  # the start-up listing (no position: as after a crash) is done
        assert _settle(c, name) == expected  # and the sentinel uploaded after it made a job
    finally:
        c.stop()
