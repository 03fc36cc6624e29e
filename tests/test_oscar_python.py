"""The official client, oscar-python 2.2.x, against the embedded cluster.

oscar-python is installed once into its own virtual environment under ``.cache/`` in the
repository (git-ignored; kept between runs) and runs a script against the session's
cluster: services from an FDL file (create, update, get, list, delete), a sync run with a
file in and out, an async run through ``POST /job``, its storage client (upload, list,
download), job list, logs and deletion, buckets and presign, deployment status and logs.
The test skips (one line naming the reason) only when pip cannot install the package.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REQUIREMENT = "oscar-python>=2.2,<2.3"
VENV = Path(__file__).resolve().parents[1] / ".cache" / "oscar-python-2.2"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed"


@pytest.fixture(scope="session")
def oscar_python() -> Path:
    """The venv's python with oscar-python 2.2.x (installed once; a lock serialises workers)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "oscar-python.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not STAMP.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
            p = subprocess.run(
                [
                    str(PY),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    REQUIREMENT,
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if p.returncode != 0:
                last = (p.stderr.strip().splitlines() or ["no output"])[-1]
                pytest.skip(f"pip cannot install {REQUIREMENT}: {last}")
            STAMP.write_text(REQUIREMENT + "\n")
    return PY


SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys, time
    from oscar_python.client import Client

    cfg = json.loads(sys.argv[1])
    work = cfg["work"]
    out = {}
    c = Client({"cluster_id": "local", "endpoint": cfg["endpoint"], "user": cfg["user"],
                "password": cfg["password"], "ssl": False})
    J = lambda r: json.loads(r.text)
    svc = cfg["service"]

    out["info"] = J(c.get_cluster_info())
    out["config"] = J(c.get_cluster_config())
    c.create_service(cfg["fdl"])
    c.update_service(svc, cfg["fdl2"])
    out["service"] = J(c.get_service(svc))
    out["listed"] = [s["name"] for s in J(c.list_services())]

    # sync: a file in, a file out (base64 both ways)
    src = os.path.join(work, "input.txt")
    with open(src, "w") as fh:
        fh.write("hello from oscar-python")
    c.run_service(svc, input=src, output=os.path.join(work, "sync.txt"))
    out["sync"] = open(os.path.join(work, "sync.txt")).read()

    def wait_jobs(n):
        deadline = time.time() + 120
        while time.time() < deadline:
            jobs = J(c.list_jobs(svc))["jobs"]
            if sum(j["status"] in ("Succeeded", "Failed") for j in jobs.values()) >= n:
                return jobs
            time.sleep(0.3)
        raise SystemExit("jobs did not finish: %r" % jobs)

    # async through POST /job
    r = c.run_service(svc, input=src, async_call=True)
    out["job_status_code"] = r.status_code
    jobs = wait_jobs(1)

    # storage client: upload into the input path (starts a job), list and download its output
    st = c.create_storage_client(svc)
    st.upload_file("minio.default", src, svc + "/in")
    jobs = wait_jobs(2)
    out["jobs"] = jobs
    listing = st.list_files_from_path("minio.default", svc + "/out")
    out["out_keys"] = sorted(o["Key"] for o in listing.get("Contents", []))
    st.download_file("minio.default", work, svc + "/out/input.txt.out")
    out["downloaded"] = open(os.path.join(work, "input.txt.out")).read()

    name = sorted(jobs)[0]
    out["log"] = c.get_job_logs(svc, name).text
    c.remove_job(svc, name)
    out["after_remove"] = sorted(J(c.list_jobs(svc))["jobs"])
    c.remove_all_jobs(svc)
    out["after_remove_all"] = sorted(J(c.list_jobs(svc))["jobs"])

    out["deployment"] = J(c.get_deployment_status(svc))
    out["deployment_logs"] = J(c.get_deployment_logs(svc))

    # buckets and presign
    b = cfg["bucket"]
    c.create_bucket(b, visibility="public")
    st.upload_file("minio.default", src, b + "/docs")
    out["buckets"] = J(c.list_buckets())
    out["bucket"] = J(c.get_bucket(b))
    c.update_bucket(b, "restricted", ["dora"])
    out["bucket_after_update"] = J(c.get_bucket(b))
    out["presign"] = J(c.presign_bucket(b, "docs/input.txt"))
    out["presign_upload"] = J(c.presign_bucket(b, "docs/up.txt", operation="upload"))
    import requests
    got = requests.get(out["presign"]["url"], timeout=30)
    out["presigned_get"] = [got.status_code, got.text]
    put = requests.put(out["presign_upload"]["url"], data=b"up", timeout=30)
    out["presigned_put"] = put.status_code
    c.delete_bucket(b)
    out["buckets_after_delete"] = [x["bucket_name"] for x in J(c.list_buckets())]

    c.remove_service(svc)
    out["listed_after_delete"] = [s["name"] for s in J(c.list_services())]
    print(json.dumps(out))
    """
)

FDL = """functions:
  oscar:
  - local:
      name: {name}
      image: ghcr.io/example/copy
      cpu: '0.5'
      memory: {memory}
      script: copy.sh
      input:
      - storage_provider: minio.default
        path: {name}/in
      output:
      - storage_provider: minio.default
        path: {name}/out
"""


def test_oscar_python_client(oscar_python, cluster, tmp_path, oscar_schema):
    name = "op-" + os.urandom(4).hex()
    (tmp_path / "copy.sh").write_text(
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"\n'
    )
    (tmp_path / "svc.yaml").write_text(FDL.format(name=name, memory="128Mi"))
    (tmp_path / "svc2.yaml").write_text(FDL.format(name=name, memory="192Mi"))
    (tmp_path / "run.py").write_text(SCRIPT)
    cfg = {
        "endpoint": cluster.endpoint,
        "user": cluster.user,
        "password": cluster.password,
        "service": name,
        "bucket": "opb-" + os.urandom(4).hex(),
        "fdl": str(tmp_path / "svc.yaml"),
        "fdl2": str(tmp_path / "svc2.yaml"),
        "work": str(tmp_path),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSCAR_", "AWS_"))}
    p = subprocess.run(
        [str(oscar_python), str(tmp_path / "run.py"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])

    oscar_schema(out["info"], "types.Info")
    oscar_schema(out["config"], "types.ConfigForUser")
    svc = oscar_schema(out["service"], "types.Service")
    assert svc["memory"] == "192Mi"  # the update arrived
    assert svc["storage_providers"]["minio"]["default"]["endpoint"] == cluster.s3_endpoint
    assert name in out["listed"] and name not in out["listed_after_delete"]

    assert out["sync"] == "hello from oscar-python"
    assert out["job_status_code"] == 201
    assert len(out["jobs"]) == 2 and all(j["status"] == "Succeeded" for j in out["jobs"].values())
    # the POST /job output (named after OSCAR's event file) and the bucket job's
    assert "out/input.txt.out" in out["out_keys"]
    assert any(k.startswith("out/event-file-") for k in out["out_keys"])
    assert out["downloaded"] == "hello from oscar-python"
    assert out["log"].strip()
    assert len(out["after_remove"]) == 1 and out["after_remove_all"] == []

    oscar_schema(out["deployment"], "types.ServiceDeploymentStatus")
    oscar_schema(out["deployment_logs"], "types.DeploymentLogStream")

    mine = next(b for b in out["buckets"] if b["bucket_name"] == cfg["bucket"])
    assert mine["visibility"] == "public"
    oscar_schema(out["bucket"], "buckets.BucketListResponse")
    assert [o["object_name"] for o in out["bucket"]["objects"]] == ["docs/input.txt"]
    assert out["bucket_after_update"]["allowed_users"] == ["dora"]
    for key in ("presign", "presign_upload"):
        oscar_schema(out[key], "buckets.PresignResponse")
    # oscar-python sends "expires" (not the spec's "expires_in"): OSCAR's default of 900 s
    assert out["presigned_get"] == [200, "hello from oscar-python"]
    assert out["presign_upload"]["method"] == "PUT" and out["presigned_put"] == 200
    assert cfg["bucket"] not in out["buckets_after_delete"]
