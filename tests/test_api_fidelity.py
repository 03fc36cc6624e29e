"""OSCAR v4 API fidelity: service definitions, buckets and presign, deployment, POST /job.

Against the session's embedded cluster over real HTTP (and SeaweedFS for what buckets
and presigned URLs do); every answer is checked against the vendored v4.1.2 spec.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image
from test_local_api import api, s3

import oscar_elyra as oe
from oscar_elyra import artifacts
from oscar_elyra.errors import ConflictError, NotFoundError, ValidationError
from oscar_elyra.invoke.jobs import JOB_STAGING
from oscar_elyra.local import LocalCluster

TIMEOUT = 30
SERVICES = {"type": "array", "items": {"$ref": "#/definitions/types.Service"}}
BUCKETS = {"type": "array", "items": {"$ref": "#/definitions/utils.MinIOBucket"}}


def put(cluster, bucket: str, key: str, data: bytes) -> None:
    s3(cluster).put_object(bucket, key, io.BytesIO(data), len(data))


def anonymous_get(cluster, bucket: str, key: str) -> int:
    return requests.get(f"{cluster.s3_endpoint}/{bucket}/{key}", timeout=TIMEOUT).status_code


def name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- service definitions


def test_service_definition_as_oscar_returns(cluster, client, oscar_schema):
    svc = name()
    client.create_service(
        {
            "name": svc,
            "image": "alpine",
            "script": "cat $INPUT_FILE_PATH",
            "input": [{"storage_provider": "minio.default", "path": f"{svc}/in"}],
            "storage_providers": {
                "s3": {"aws": {"access_key": "AK", "secret_key": "s3-secret-x", "region": "eu"}},
                # a client-given minio.default is replaced by the cluster's, as OSCAR does
                "minio": {"default": {"endpoint": "http://elsewhere:9000"}},
            },
        }
    )
    got = oscar_schema(api(cluster, "GET", f"/system/services/{svc}").json(), "types.Service")
    default = got["storage_providers"]["minio"]["default"]
    assert default == {
        "endpoint": cluster.s3_endpoint,
        "verify": False,
        "access_key": "hidden",
        "secret_key": "hidden",
        "region": "us-east-1",
    }
    assert got["storage_providers"]["s3"]["aws"]["secret_key"] == "s3-secret-x"
    assert (got["memory"], got["cpu"], got["log_level"]) == ("256Mi", "0.2", "INFO")
    assert (got["visibility"], got["owner"]) == ("private", "cluster_admin")
    assert got["labels"]["oscar_service"] == svc
    assert len(got["token"]) == 64
    listed = oscar_schema(api(cluster, "GET", "/system/services").json(), SERVICES)
    assert svc in {s["name"] for s in listed}
    assert all("minio" in s["storage_providers"] for s in listed)
    # the service's bucket is tagged as OSCAR tags it, and cannot be made public
    bucket = client.get_bucket(svc)
    assert bucket["metadata"]["from_service"] == svc
    r = api(cluster, "PUT", "/system/buckets", json={"bucket_name": svc, "visibility": "public"})
    assert r.status_code == 403, r.text
    client.delete_service(svc)


# ---------------------------------------------------------------- buckets


def test_buckets_crud_visibility_on_seaweedfs(cluster, client, oscar_schema):
    b = name("bk")
    r = api(cluster, "POST", "/system/buckets", json={"bucket_name": b})
    assert r.status_code == 201, r.text
    put(cluster, b, "dir/a.txt", b"hello")
    listed = oscar_schema(api(cluster, "GET", "/system/buckets").json(), BUCKETS)
    mine = next(x for x in listed if x["bucket_name"] == b)
    assert (mine["visibility"], mine["owner"]) == ("private", "cluster_admin")
    assert mine["storage_usage"]["objects"] == 1
    assert anonymous_get(cluster, b, "dir/a.txt") == 403

    # public: SeaweedFS serves it anonymously (bucket policy)
    client.update_bucket(b, "public")
    got = oscar_schema(
        api(cluster, "GET", f"/system/buckets/{b}").json(), "buckets.BucketListResponse"
    )
    assert got["visibility"] == "public"
    assert [o["object_name"] for o in got["objects"]] == ["dir/a.txt"]
    assert got["objects"][0]["size_bytes"] == 5
    assert anonymous_get(cluster, b, "dir/a.txt") == 200

    # restricted: the allowed users are read back from the policy; anonymous access ends
    client.update_bucket(b, "restricted", ["alice", "bob"])
    got = client.get_bucket(b)
    assert (got["visibility"], got["allowed_users"]) == ("restricted", ["alice", "bob"])
    assert anonymous_get(cluster, b, "dir/a.txt") == 403
    client.update_bucket(b, "private")
    assert client.get_bucket(b)["visibility"] == "private"

    with pytest.raises(ConflictError):
        client.create_bucket(b)
    r = api(cluster, "POST", "/system/buckets", json={"bucket_name": name("bk"), "visibility": "x"})
    assert r.status_code == 400 and "visibility" in r.text
    r = api(cluster, "POST", "/system/buckets", json={"bucket_name": "Bad_Name"})
    assert r.status_code == 400

    client.delete_bucket(b)
    assert not s3(cluster).bucket_exists(b)
    with pytest.raises(NotFoundError):
        client.delete_bucket(b)
    with pytest.raises(NotFoundError):
        client.get_bucket(b)


def test_bucket_objects_paginate(cluster, client, oscar_schema):
    b = name("pg")
    client.create_bucket(b, "private")
    for i in range(75):
        put(cluster, b, f"k{i:03d}", b"x")
    first = oscar_schema(client.get_bucket(b), "buckets.BucketListResponse")
    assert (first["returned_items"], first["is_truncated"]) == (70, True)
    second = oscar_schema(
        client.get_bucket(b, page=first["next_page"]), "buckets.BucketListResponse"
    )
    assert (second["returned_items"], second["is_truncated"]) == (5, False)
    keys = [o["object_name"] for o in first["objects"] + second["objects"]]
    assert keys == [f"k{i:03d}" for i in range(75)]
    client.delete_bucket(b)


def test_presign_download_upload_and_expiry(cluster, client, oscar_schema):
    b = name("ps")
    client.create_bucket(b)
    put(cluster, b, "in/data.bin", b"\x00\x01payload")
    down = oscar_schema(client.presign(b, "in/data.bin"), "buckets.PresignResponse")
    assert (down["method"], down["operation"], down["object_key"]) == (
        "GET",
        "download",
        "in/data.bin",
    )
    assert requests.get(down["url"], timeout=TIMEOUT).content == b"\x00\x01payload"

    up = oscar_schema(
        client.presign(b, "up/new.txt", "upload", expires_in=120, content_type="text/plain"),
        "buckets.PresignResponse",
    )
    assert up["method"] == "PUT" and up["headers"] == {"Content-Type": "text/plain"}
    r = requests.put(up["url"], data=b"uploaded", headers=up["headers"], timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert s3(cluster).get_object(b, "up/new.txt").read() == b"uploaded"

    # an altered signature is refused by SeaweedFS itself
    bad = down["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(bad, timeout=TIMEOUT).status_code == 403
    # a 1 s URL stops working (wait on the refusal, with a deadline)
    short = client.presign(b, "in/data.bin", expires_in=1)
    deadline = time.monotonic() + 30
    while requests.get(short["url"], timeout=TIMEOUT).status_code == 200:
        assert time.monotonic() < deadline, "the 1 s presigned URL never expired"
        time.sleep(0.5)

    for body, needle in [
        ({"object_key": "k", "operation": "delete"}, "operation"),
        ({"object_key": "", "operation": "download"}, "Object key"),
        ({"object_key": "k", "operation": "download", "expires_in": 8 * 24 * 3600}, "expiration"),
    ]:
        r = api(cluster, "POST", f"/system/buckets/{b}/presign", json=body)
        assert r.status_code == 400 and needle in r.text, (body, r.text)
    r = api(
        cluster,
        "POST",
        "/system/buckets/no-such-bucket-x/presign",
        json={"object_key": "k", "operation": "download"},
    )
    assert r.status_code == 404
    client.delete_bucket(b)


def test_artifact_manifest_presigned_url(cluster, client, tmp_path, monkeypatch):
    b = name("art")
    client.create_bucket(b)
    put(cluster, b, "out/result.txt", b"result!")
    digest = hashlib.sha256(b"result!").hexdigest()
    info = {"uri": f"s3://{b}/out/result.txt", "size": 7, "sha256": digest}
    monkeypatch.setenv("ELYRA_RUN_NAME", "run-presign")
    path = artifacts.publish([info], "producer", directory=tmp_path, presign=300, client=client)
    entry = json.loads(path.read_text())["artifacts"][0]
    assert entry["url"].startswith(cluster.s3_endpoint) and entry["url_expires"].endswith("Z")
    # a consumer without any cluster setting (no OSCAR_*, no keys) fetches through the URL
    monkeypatch.setenv("OSCAR_CLI_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("OSCAR_ELYRA_DATA_DIR", str(tmp_path / "nodata"))
    got = artifacts.fetch(artifacts.inputs(directory=tmp_path), tmp_path / "dl")
    assert got[0].read_bytes() == b"result!"
    # an expired one says so in one line, naming the expiry
    entry["url_expires"] = "2000-01-01T00:00:00Z"
    with pytest.raises(ValidationError, match="expired at 2000-01-01"):
        artifacts.fetch([entry], tmp_path / "dl2")
    client.delete_bucket(b)


# ---------------------------------------------------------------- deployment


def test_deployment_status_and_logs(cluster, client, oscar_schema):
    st = oscar_schema(client.deployment_status("cowsay"), "types.ServiceDeploymentStatus")
    assert st["service_name"] == "cowsay" and st["state"] == "ready"
    logs = oscar_schema(client.deployment_logs("cowsay"), "types.DeploymentLogStream")
    assert logs["service_name"] == "cowsay"
    got = api(cluster, "GET", "/system/services/cowsay", params={"include": "deployment"}).json()
    oscar_schema(got, "types.Service")
    assert got["deployment"]["state"] == "ready"
    with pytest.raises(NotFoundError):
        client.deployment_status("no-such-service")
    r = api(cluster, "GET", "/system/services/cowsay/deployment/logs", params={"tailLines": "x"})
    assert r.status_code == 400


# ---------------------------------------------------------------- POST /job


def _png(path: Path, shade: int) -> Path:
    Image.new("RGB", (6, 6), (shade, 90, 30)).save(path)
    return path


def test_submit_via_job_attributes_outputs_exactly(cluster, client, tmp_path, oscar_schema):
    inputs = [_png(tmp_path / f"img{i}.png", 40 * i) for i in range(3)]
    before = set(client.list_jobs("grayify"))
    jobs = oe.submit("grayify", inputs, client=client, via="job")
    assert len(jobs) == 3 and all(f"/{JOB_STAGING}/" in j.input_uri for j in jobs)
    oe.wait(jobs, timeout=120, download_to=tmp_path / "out")
    for j in jobs:
        assert j.status == "Succeeded" and len(j.outputs) == 1
        assert j.stem in j.outputs[0]  # the run-unique stem of this very input
        assert j.job_name is not None
    new = {n: i for n, i in client.list_jobs("grayify").items() if n not in before}
    assert len(new) == 3  # one job per POST; the staged objects started none
    for info in new.values():
        oscar_schema(info, "types.JobInfo")
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["img0.png", "img1.png", "img2.png"]


def test_post_job_storage_event_on_the_wire(cluster, client):
    """A MinIO event as body: the job downloads that object, as faas-supervisor does."""
    put(cluster, "cowsay", "elsewhere/hello.txt", b"moo from an event")
    event = {
        "Records": [
            {
                "eventSource": "minio:s3",
                "eventTime": "2024-01-01T00:00:00Z",
                "s3": {"bucket": {"name": "cowsay"}, "object": {"key": "elsewhere/hello.txt"}},
            }
        ]
    }
    before = set(client.list_jobs("cowsay"))
    client.post_job("cowsay", json.dumps(event).encode())
    deadline = time.monotonic() + 60
    while True:
        new = {n: i for n, i in client.list_jobs("cowsay").items() if n not in before}
        done = [n for n, i in new.items() if i["status"] in ("Succeeded", "Failed")]
        if done:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    log = client.get_job_log("cowsay", done[0])
    assert "key 'elsewhere/hello.txt'" in log and new[done[0]]["status"] == "Succeeded"


def test_via_job_refused_where_it_cannot_stage(client, tmp_path):
    f = _png(tmp_path / "a.png", 1)
    with pytest.raises(ValidationError, match="via"):
        oe.submit("grayify", [f], client=client, via="post")
    svc = {
        "name": "x",
        "input": [{"path": "bkt/" + JOB_STAGING[:3]}],
        "output": [{"path": "bkt/o"}],
    }
    with pytest.raises(ValidationError, match="covers"):
        oe.submit("x", [f], client=client, via="job", service_def=svc)


# ---------------------------------------------------------------- other storage providers


def test_other_minio_provider_uses_its_credentials(client, s3, tmp_path):
    """Paths on ``minio.<other>`` go to that server with the definition's keys."""
    svc_def = {
        "name": "remote-svc",
        "input": [{"storage_provider": "minio.other", "path": "remote-svc/in"}],
        "output": [{"storage_provider": "minio.other", "path": "remote-svc/out"}],
        "storage_providers": {
            "minio": {
                "other": {
                    "endpoint": s3.endpoint,
                    "access_key": s3.access_key,
                    "secret_key": s3.secret_key,
                    "verify": False,
                    "region": "us-east-1",
                }
            }
        },
    }
    s3.minio().make_bucket("remote-svc")
    f = _png(tmp_path / "a.png", 5)
    jobs = oe.submit("remote-svc", [f], client=client, service_def=svc_def)
    key = jobs[0].input_uri.split("/", 3)[3]
    assert s3.minio().stat_object("remote-svc", key).size == f.stat().st_size
    # no credentials for it in the definition: one clear line, nothing uploaded anywhere
    svc_def["storage_providers"] = {"s3": {"aws": {"region": "eu-west-1"}}}
    for io_ in svc_def["input"] + svc_def["output"]:
        io_["storage_provider"] = "s3.aws"
    with pytest.raises(ValidationError, match=r"'s3.aws' has no credentials"):
        oe.submit("remote-svc", [f], client=client, service_def=svc_def)
    # mixed providers cannot be followed with one store
    svc_def["output"][0]["storage_provider"] = "minio.default"
    with pytest.raises(ValidationError, match="different storage providers"):
        oe.submit("remote-svc", [f], client=client, service_def=svc_def)


# ---------------------------------------------------------------- wait shows Pending jobs


@pytest.fixture(scope="module")
def one_slot_cluster(tmp_path_factory):
    """A cluster with one job slot, to keep jobs Pending behind a long one."""
    c = LocalCluster(tmp_path_factory.mktemp("one-slot"), max_jobs=1)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_wait_timeout_shows_pending_jobs_and_deployment(one_slot_cluster, tmp_path):
    c = one_slot_cluster
    session = oe.connect(endpoint=c.endpoint, user=c.user, password=c.password, ssl_verify=False)
    cl = session.client
    cl.create_service(
        {
            "name": "slow",
            "image": "alpine",
            "script": "sleep 60\n",
            "input": [{"path": "slow/in"}],
            "output": [{"path": "slow/out"}],
        }
    )
    files = [tmp_path / f"in{i}.txt" for i in range(3)]
    for f in files:
        f.write_text("x")
    jobs = oe.submit("slow", files, client=cl, store=session.store)
    try:
        with pytest.raises(oe.TimeoutError) as info:
            oe.wait(jobs, timeout=3)
    finally:
        cl.delete_jobs("slow", all=True)  # kills the sleeping job
    msg = str(info.value)
    assert "jobs of 'slow' still Pending: slow-" in msg, msg
    assert "deployment: ready" in msg and "of 1 job slots" in msg, msg
