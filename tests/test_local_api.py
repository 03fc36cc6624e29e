"""The embedded cluster's OSCAR REST API over real HTTP, responses checked against the spec."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import requests
from minio import Minio

TIMEOUT = 60
SERVICES = {"type": "array", "items": {"$ref": "#/definitions/types.Service"}}
STRING = {"type": "string"}


# ------------------------------------------------------------------ helpers
def api(cluster, method, path, auth="basic", **kw):
    if auth == "basic":
        auth = (cluster.user, cluster.password)
    return requests.request(method, cluster.endpoint + path, auth=auth, timeout=TIMEOUT, **kw)


def s3(cluster) -> Minio:
    host = cluster.s3_endpoint.split("://", 1)[1]
    return Minio(host, cluster.s3_access_key, cluster.s3_secret_key, secure=False)


def token_of(cluster, name) -> str:
    return api(cluster, "GET", f"/system/services/{name}").json()["token"]


def run(cluster, name, body, token=None, **kw):
    token = token or token_of(cluster, name)
    headers = {"Authorization": f"Bearer {token}"}
    return api(cluster, "POST", f"/run/{name}", auth=None, data=body, headers=headers, **kw)


def new_service(cluster, script, name=None, **extra) -> dict:
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    svc = {
        "name": name,
        "image": "docker.io/library/bash:5",
        "script": script,
        "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
        **extra,
    }
    r = api(cluster, "POST", "/system/services", json=svc)
    assert r.status_code == 201, r.text
    return svc


def all_jobs(cluster, svc, oscar_schema=None) -> dict:
    jobs, page = {}, None
    while True:
        params = {"page": page} if page else {}
        r = api(cluster, "GET", f"/system/logs/{svc}", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        if oscar_schema:
            oscar_schema(body, "types.JobsResponse")
        jobs.update(body["jobs"])
        page = body.get("next_page")
        if not page:
            return jobs


def wait_jobs(cluster, svc, n, timeout=60) -> dict:
    """All jobs of ``svc`` once ``n`` of them are finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = all_jobs(cluster, svc)
        done = [j for j in jobs.values() if j["status"] in ("Succeeded", "Failed")]
        if len(done) >= n:
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"{svc}: fewer than {n} jobs finished in {timeout} s: {jobs}")


def png_bytes(size=(24, 16), color=(200, 30, 30), mode="RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ system endpoints
def test_health(cluster):
    r = api(cluster, "GET", "/health", auth=None)
    assert r.status_code == 200 and r.text == "Ok"


def test_info_config_status(cluster, oscar_schema):
    info = oscar_schema(api(cluster, "GET", "/system/info").json(), "types.Info")
    assert info["version"]
    cfg = oscar_schema(api(cluster, "GET", "/system/config").json(), "types.ConfigForUser")
    mp = cfg["minio_provider"]
    assert mp["endpoint"] == cluster.s3_endpoint and mp["verify"] is False
    client = Minio(mp["endpoint"].split("://")[1], mp["access_key"], mp["secret_key"], secure=False)
    assert {"cowsay", "grayify", "digits"} <= {b.name for b in client.list_buckets()}
    status = oscar_schema(api(cluster, "GET", "/system/status").json(), "types.StatusInfo")
    assert status["minio"]["buckets_count"] >= 3
    assert status["cluster"]["nodes_count"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/system/info",
        "/system/config",
        "/system/status",
        "/system/services",
        "/system/services/cowsay",
        "/system/logs/cowsay",
    ],
)
def test_system_needs_basic_auth(cluster, path):
    assert api(cluster, "GET", path, auth=None).status_code == 401
    assert api(cluster, "GET", path, auth=(cluster.user, "wrong")).status_code == 401
    assert api(cluster, "GET", path, auth=("someone", cluster.password)).status_code == 401
    bearer = {"Authorization": f"Bearer {token_of(cluster, 'cowsay')}"}
    r = api(cluster, "GET", path, auth=None, headers=bearer)
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]


# ------------------------------------------------------------------ services CRUD
def test_services_crud(cluster, oscar_schema):
    name = f"crud-{uuid.uuid4().hex[:8]}"
    svc = {
        "name": name,
        "image": "alpine:3",
        "script": "echo one",
        "environment": {"variables": {"A": "1"}},
        "input": [{"path": "in"}],
        "output": [{"path": f"{name}-res/out", "storage_provider": "minio.default"}],
    }
    r = api(cluster, "POST", "/system/services", json=svc)
    assert r.status_code == 201 and r.text == ""
    got = oscar_schema(api(cluster, "GET", f"/system/services/{name}").json(), "types.Service")
    assert re.fullmatch(r"[0-9a-f]{64}", got["token"])
    assert got["input"] == [{"path": f"{name}/in", "storage_provider": "minio.default"}]
    assert got["image"] == "alpine:3" and got["script"] == "echo one"
    buckets = {b.name for b in s3(cluster).list_buckets()}
    assert {name, f"{name}-res"} <= buckets

    r = api(cluster, "POST", "/system/services", json=svc)
    assert r.status_code == 409 and "already exists" in r.text

    listed = oscar_schema(api(cluster, "GET", "/system/services").json(), SERVICES)
    assert name in {s["name"] for s in listed}

    r = api(cluster, "PUT", "/system/services", json={**svc, "script": "echo two"})
    assert r.status_code == 204
    after = api(cluster, "GET", f"/system/services/{name}").json()
    assert after["script"] == "echo two" and after["token"] == got["token"]
    assert run(cluster, name, json.dumps({"x": 1}), token=got["token"]).text == "two\n"

    assert api(cluster, "DELETE", f"/system/services/{name}").status_code == 204
    assert api(cluster, "GET", f"/system/services/{name}").status_code == 404
    assert api(cluster, "DELETE", f"/system/services/{name}").status_code == 404
    assert api(cluster, "PUT", "/system/services", json=svc).status_code == 404
    assert run(cluster, name, "{}", token=got["token"]).status_code == 401  # gone: token unknown


BASE = {"name": "bad-svc", "image": "alpine", "script": "echo"}


@pytest.mark.parametrize(
    "body, needle",
    [
        ({k: v for k, v in BASE.items() if k != "name"}, "'name' is required"),
        ({k: v for k, v in BASE.items() if k != "image"}, "'image' is required"),
        ({k: v for k, v in BASE.items() if k != "script"}, "'script' is required"),
        ({**BASE, "name": "x" * 40}, "maximum is 39"),
        ({**BASE, "name": "Bad_Chars"}, "DNS label"),
        ({**BASE, "name": "bad.dot"}, "DNS label"),
        ({**BASE, "input": [{"path": "../x"}]}, "input[0]"),
        ({**BASE, "output": [{"path": "UPPER/x"}]}, "bucket"),
        ("not json", "not valid JSON"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_service_rejected_and_nothing_created(cluster, body, needle):
    before = api(cluster, "GET", "/system/services").json()
    buckets = {b.name for b in s3(cluster).list_buckets()}
    kw = {"data": body} if isinstance(body, str) else {"json": body}
    for method in ("POST", "PUT"):
        r = api(cluster, method, "/system/services", **kw)
        assert r.status_code == 400, (method, r.status_code, r.text)
        assert needle in r.text and len(r.text.strip().splitlines()) == 1
    assert api(cluster, "GET", "/system/services").json() == before
    assert {b.name for b in s3(cluster).list_buckets()} == buckets


def test_unknown_service_404_but_401_without_token(cluster):
    for method, path in [
        ("GET", "/system/services/nope"),
        ("DELETE", "/system/services/nope"),
        ("GET", "/system/logs/nope"),
        ("DELETE", "/system/logs/nope"),
        ("GET", "/system/logs/nope/nope-1"),
        ("GET", "/system/logs/cowsay/cowsay-unknown"),
        ("DELETE", "/system/logs/cowsay/cowsay-unknown"),
    ]:
        assert api(cluster, method, path).status_code == 404, path
    # no enumeration: without the service's token an unknown service looks like a known one
    for path in ("/run/nope", "/job/nope", "/run/cowsay", "/job/cowsay"):
        for headers in ({}, {"Authorization": "Bearer x"}):
            r = api(cluster, "POST", path, auth=None, data="{}", headers=headers)
            assert r.status_code == 401 and "not found" not in r.text, (path, headers)


# ------------------------------------------------------------------ /run and /job auth
@pytest.mark.parametrize("path", ["/run/cowsay", "/job/cowsay"])
def test_invoke_auth(cluster, path):
    body = json.dumps({"message": "x"})
    cases = [
        {},
        {"auth": (cluster.user, cluster.password)},
        {"headers": {"Authorization": "Bearer " + "0" * 64}},
        {"headers": {"Authorization": f"Bearer {token_of(cluster, 'grayify')}"}},
        {"headers": {"Authorization": f"Basic {token_of(cluster, 'cowsay')}"}},
    ]
    before = len(all_jobs(cluster, "cowsay"))
    for kw in cases:
        kw.setdefault("auth", None)
        r = api(cluster, "POST", path, data=body, **kw)
        assert r.status_code == 401, (kw, r.text)
    assert len(all_jobs(cluster, "cowsay")) == before


# ------------------------------------------------------------------ sync /run
def test_run_json_body_cowsay(cluster):
    r = run(cluster, "cowsay", json.dumps({"message": "Hello OSCAR"}))
    assert r.status_code == 200
    assert "Hello OSCAR" in r.text and "(oo)" in r.text


def test_run_binary_body_grayify(cluster):
    from PIL import Image

    r = run(cluster, "grayify", base64.b64encode(png_bytes((30, 20))))
    assert r.status_code == 200
    img = Image.open(io.BytesIO(base64.b64decode(r.text)))
    assert (img.format, img.mode, img.size) == ("PNG", "L", (30, 20))


def test_run_digits_predicts_sklearn_digits(cluster):
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    predicted, labels = [], []
    for i in (3, 40, 400, 1000):
        arr = (digits.images[i] * 255 / 16).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).resize((32, 32), Image.Resampling.NEAREST).save(buf, format="PNG")
        r = run(cluster, "digits", base64.b64encode(buf.getvalue()))
        assert r.status_code == 200, r.text
        res = json.loads(base64.b64decode(r.text))
        assert set(res) == {"digit", "probabilities", "input"}
        assert len(res["probabilities"]) == 10 and abs(sum(res["probabilities"]) - 1) < 1e-3
        assert res["input"].startswith("event-file-")
        predicted.append(res["digit"])
        labels.append(int(digits.target[i]))
    assert predicted == labels  # the right digit for each labelled sample


MULTI = """\
mkdir -p "$TMP_OUTPUT_DIR/sub"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"
echo "second" > "$TMP_OUTPUT_DIR/sub/b.txt"
"""


def test_run_several_outputs_zip(cluster):
    svc = new_service(cluster, MULTI)
    payload = bytes(range(256)) * 10
    r = run(cluster, svc["name"], base64.b64encode(payload))
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(base64.b64decode(r.text)))
    assert sorted(zf.namelist()) == ["copy.bin", "sub/b.txt"]
    assert zf.read("copy.bin") == payload and zf.read("sub/b.txt") == b"second\n"


def test_run_no_output_returns_stdout(cluster):
    svc = new_service(cluster, 'echo "got $(wc -c < "$INPUT_FILE_PATH") bytes"; echo note >&2')
    r = run(cluster, svc["name"], base64.b64encode(b"12345"))
    assert r.status_code == 200 and r.text == "got 5 bytes\n"
    r = run(cluster, svc["name"], json.dumps({"k": "v"}))  # JSON is passed as-is (9 bytes)
    assert r.text == "got 10 bytes\n"


def test_run_failing_script_answers_500_with_its_output(cluster):
    """Stricter than OSCAR (whose supervisor ignores exit codes; see compat="oscar")."""
    svc = new_service(cluster, 'echo "partial"; echo "oops: no model" >&2; exit 3')
    r = run(cluster, svc["name"], base64.b64encode(b"12345"))
    assert r.status_code == 500 and r.headers["X-Oscar-Elyra-Exit-Code"] == "3"
    assert "exited with code 3" in r.text and "oops: no model" in r.text


def test_run_garbage_base64_400_and_script_not_run(cluster, tmp_path):
    marker = tmp_path / "ran"
    svc = new_service(cluster, f'touch "{marker}"')
    for body in (b"@@@ not base64 @@@", b"abc", b"{not json"):
        r = run(cluster, svc["name"], body)
        assert r.status_code == 400, body
        assert "neither JSON nor valid base64" in r.text
    assert not marker.exists()
    assert all_jobs(cluster, svc["name"]) == {}


def test_run_streams_large_body(cluster):
    svc = new_service(cluster, 'sha256sum "$INPUT_FILE_PATH" | cut -c1-64')
    import hashlib
    import os

    data = os.urandom(6 * 1024 * 1024)

    def chunks():
        enc = base64.b64encode(data)
        for i in range(0, len(enc), 1 << 20):
            yield enc[i : i + (1 << 20)]

    r = run(cluster, svc["name"], chunks())
    assert r.status_code == 200 and r.text.strip() == hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ env, async, logs
ENV_DUMP = """\
python3 - <<'PY'
import json, os, shutil
keys = ["INPUT_FILE_PATH", "TMP_OUTPUT_DIR", "OSCAR_SERVICE_NAME", "OSCAR_SERVICE_TOKEN",
        "JOB_UUID", "EVENT", "GREETING", "OSCAR_PASSWORD", "AWS_SECRET_ACCESS_KEY"]
env = {k: os.environ.get(k) for k in keys}
env["python3"] = shutil.which("python3")
env["input"] = open(os.environ["INPUT_FILE_PATH"], "rb").read().decode()
name = os.path.basename(os.environ["INPUT_FILE_PATH"])
json.dump(env, open(os.path.join(os.environ["TMP_OUTPUT_DIR"], name + ".json"), "w"))
PY
"""


def test_async_env_bucket_and_post_job(cluster, oscar_schema):
    import os
    import sys

    svc = new_service(cluster, ENV_DUMP, environment={"variables": {"GREETING": "hi"}})
    name, token = svc["name"], token_of(cluster, svc["name"])
    store = s3(cluster)
    written = store.put_object(name, "in/sub/a.txt", io.BytesIO(b"AAA"), 3)
    r = api(
        cluster,
        "POST",
        f"/job/{name}",
        auth=None,
        data=base64.b64encode(b"BODY"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201 and r.text == ""
    jobs = wait_jobs(cluster, name, 2)
    assert len(jobs) == 2 and {j["status"] for j in jobs.values()} == {"Succeeded"}
    for job_name, info in jobs.items():
        assert job_name.startswith(f"{name}-")
        oscar_schema(info, "types.JobInfo")
    outs = {o.object_name for o in store.list_objects(name, prefix="out/", recursive=True)}
    assert "out/a.txt.json" in outs and len(outs) == 2
    bucket_env = json.loads(store.get_object(name, "out/a.txt.json").read())
    (post_key,) = outs - {"out/a.txt.json"}
    post_env = json.loads(store.get_object(name, post_key).read())
    for env in (bucket_env, post_env):
        assert env["OSCAR_SERVICE_NAME"] == name and env["OSCAR_SERVICE_TOKEN"] == token
        assert f"{name}-{env['JOB_UUID']}" in jobs
        assert env["GREETING"] == "hi"
        assert env["OSCAR_PASSWORD"] is None and env["AWS_SECRET_ACCESS_KEY"] is None
        # the job's python3 is the interpreter running the cluster (symlinks resolved: a venv's
        # python3 -> python -> /usr/bin/python3.x, and sys.executable may name any of them)
        assert Path(env["python3"]).resolve() == Path(sys.executable).resolve()
    assert bucket_env["input"] == "AAA"
    event = json.loads(bucket_env["EVENT"])
    assert event["Records"][0]["s3"]["bucket"]["name"] == name
    assert event["Records"][0]["s3"]["object"]["key"] == "in/sub/a.txt"
    assert event["Records"][0]["s3"]["object"]["size"] == 3
    assert event["Records"][0]["s3"]["object"]["eTag"] == written.etag
    assert post_env["input"] == "BODY"
    assert os.path.basename(post_env["INPUT_FILE_PATH"]) == f"event-file-{post_env['JOB_UUID']}"


def test_post_job_with_a_storage_event_runs_on_that_object(cluster):
    """A MinIO event as the body of POST /job: one job, whose input is the object it names
    (outside the input path, so the upload itself starts nothing)."""
    svc = new_service(cluster, 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/up.txt"')
    name, token = svc["name"], token_of(cluster, svc["name"])
    store = s3(cluster)
    store.put_object(name, "elsewhere/e.txt", io.BytesIO(b"from an event"), 13)
    event = {
        "Records": [
            {
                "eventSource": "minio:s3",
                "s3": {"bucket": {"name": name}, "object": {"key": "elsewhere/e.txt", "size": 13}},
            }
        ]
    }
    r = api(
        cluster,
        "POST",
        f"/job/{name}",
        auth=None,
        data=base64.b64encode(json.dumps(event).encode()),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    jobs = wait_jobs(cluster, name, 1)
    assert [j["status"] for j in jobs.values()] == ["Succeeded"]
    assert store.get_object(name, "out/up.txt").read() == b"FROM AN EVENT"
    (job,) = jobs
    log_text = api(cluster, "GET", f"/system/logs/{name}/{job}").text
    assert f"bucket '{name}' with key 'elsewhere/e.txt'" in log_text


def test_failed_job_has_status_and_log(cluster):
    svc = new_service(
        cluster,
        'echo "processing $(basename "$INPUT_FILE_PATH")"; echo "boom: cannot parse" >&2; exit 7',
    )
    name = svc["name"]
    s3(cluster).put_object(name, "in/x.dat", io.BytesIO(b"x"), 1)
    (job,) = wait_jobs(cluster, name, 1)
    assert all_jobs(cluster, name)[job]["status"] == "Failed"
    r = api(cluster, "GET", f"/system/logs/{name}/{job}")
    assert r.status_code == 200
    assert "processing x.dat" in r.text and "boom: cannot parse" in r.text
    assert "exited with code 7" in r.text
    assert f"bucket '{name}' with key 'in/x.dat'" in r.text  # supervisor-like lines, as OSCAR


def test_job_garbage_body_400(cluster):
    token = token_of(cluster, "grayify")
    before = all_jobs(cluster, "grayify")
    r = api(
        cluster,
        "POST",
        "/job/grayify",
        auth=None,
        data=b"%%%garbage",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and "base64" in r.text
    assert all_jobs(cluster, "grayify") == before


def test_suffix_prefix_filters_and_delete_jobs(cluster):
    script = 'echo hi > "$TMP_OUTPUT_DIR/keep.png"; echo hi > "$TMP_OUTPUT_DIR/drop.txt"'
    svc = new_service(cluster, script)
    name = svc["name"]
    upd = {
        **svc,
        "input": [{"path": f"{name}/in", "suffix": [".jpg"]}],
        "output": [{"path": f"{name}/out", "suffix": [".png"]}],
    }
    assert api(cluster, "PUT", "/system/services", json=upd).status_code == 204
    store = s3(cluster)
    store.put_object(name, "in/skip.txt", io.BytesIO(b"x"), 1)
    store.put_object(name, "in/take.jpg", io.BytesIO(b"x"), 1)
    jobs = wait_jobs(cluster, name, 1)
    cluster.wait_idle(name)  # both uploads taken in: a second job would exist by now
    assert len(all_jobs(cluster, name)) == 1
    outs = [o.object_name for o in store.list_objects(name, prefix="out/", recursive=True)]
    assert outs == ["out/keep.png"]
    (job,) = jobs
    # DELETE a job; then DELETE without all=true removes only Succeeded jobs
    assert api(cluster, "DELETE", f"/system/logs/{name}/{job}").status_code == 204
    assert all_jobs(cluster, name) == {}
    api(cluster, "PUT", "/system/services", json={**upd, "script": "exit 1"})
    store.put_object(name, "in/f.jpg", io.BytesIO(b"x"), 1)
    wait_jobs(cluster, name, 1)
    assert api(cluster, "DELETE", f"/system/logs/{name}").status_code == 204
    assert len(all_jobs(cluster, name)) == 1  # the Failed job stays
    assert api(cluster, "DELETE", f"/system/logs/{name}", params={"all": "true"}).status_code == 204
    assert all_jobs(cluster, name) == {}
    # deleted jobs' objects are not reprocessed
    cluster.wait_idle(name)
    assert all_jobs(cluster, name) == {}


def test_existing_objects_do_not_trigger_new_service(cluster):
    name = f"pre-{uuid.uuid4().hex[:8]}"
    store = s3(cluster)
    store.make_bucket(name)
    store.put_object(name, "in/old.txt", io.BytesIO(b"x"), 1)
    new_service(cluster, "true", name=name)
    store.put_object(name, "in/new.txt", io.BytesIO(b"x"), 1)
    wait_jobs(cluster, name, 1)
    cluster.wait_idle(name)
    assert len(all_jobs(cluster, name)) == 1


# ------------------------------------------------------------------ secrets
def test_no_secret_in_cluster_logs(cluster):
    # exercise paths that handle secrets: config, failed logins, runs, jobs
    api(cluster, "GET", "/system/config")
    api(cluster, "GET", "/system/info", auth=(cluster.user, cluster.password + "x"))
    run(cluster, "cowsay", json.dumps({"message": "secret check"}))
    token = token_of(cluster, "cowsay")
    api(
        cluster,
        "POST",
        "/run/cowsay",
        auth=None,
        data="{}",
        headers={"Authorization": f"Bearer {token}x"},
    )
    api(cluster, "GET", f"/system/services?token={token}")
    svc = new_service(cluster, "echo done")
    s3(cluster).put_object(svc["name"], "in/s.txt", io.BytesIO(b"x"), 1)
    wait_jobs(cluster, svc["name"], 1)
    secrets = [cluster.password, cluster.s3_secret_key]
    secrets += [s["token"] for s in api(cluster, "GET", "/system/services").json()]
    logs = sorted((cluster.data_dir / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"server.log", "weed.log"}
    lines = 0
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            lines += 1
            for secret in secrets:
                assert secret not in line, f"secret in {path.name}: {line[:80]}"
    assert lines > 10


def test_idle_says_whether_anything_more_will_happen(cluster, tmp_path):
    """GET /oscar-elyra/idle (not an OSCAR call): false while an uploaded input's job waits
    or runs, true once it has finished; Basic auth; an unknown service is a 404."""
    gate = tmp_path / "gate"
    svc = new_service(cluster, f'while [ ! -e "{gate}" ]; do sleep 0.05; done')
    name = svc["name"]
    s3(cluster).put_object(name, "in/x.txt", io.BytesIO(b"x"), 1)
    # the upload is taken in by the idle check itself: not idle right after the upload
    r = api(cluster, "GET", "/oscar-elyra/idle", params={"service": name})
    assert r.status_code == 200 and r.json() == {"idle": False}
    assert [j["status"] for j in all_jobs(cluster, name).values()] in (["Pending"], ["Running"])
    gate.touch()
    cluster.wait_idle(name)
    assert [j["status"] for j in all_jobs(cluster, name).values()] == ["Succeeded"]
    assert api(cluster, "GET", "/oscar-elyra/idle", auth=None).status_code == 401
    missing = api(cluster, "GET", "/oscar-elyra/idle", params={"service": "no-such-svc"})
    assert missing.status_code == 404
