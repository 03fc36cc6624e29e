"""Bucket-triggered async jobs at volume: 200 uploads, and a restart of the cluster mid-way."""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from minio import Minio

from oscar_elyra.local import LocalCluster

N = 200


def _s3(cluster) -> Minio:
    return Minio(
        cluster.s3_endpoint.split("://", 1)[1],
        cluster.s3_access_key,
        cluster.s3_secret_key,
        secure=False,
    )


def _jobs(cluster, svc, pages=None) -> dict:
    jobs, page = {}, None
    auth = (cluster.user, cluster.password)
    while True:
        r = requests.get(
            f"{cluster.endpoint}/system/logs/{svc}",
            params={"page": page} if page else {},
            auth=auth,
            timeout=30,
        )
        r.raise_for_status()
        body = r.json()
        if pages is not None:
            pages.append(body)
        for name in body["jobs"]:
            assert name not in jobs, "a job listed on two pages"
        jobs.update(body["jobs"])
        page = body.get("next_page")
        if not page:
            return jobs


def _deploy(cluster, name, script, **extra):
    svc = {
        "name": name,
        "image": "docker.io/library/bash:5",
        "script": script,
        "input": [{"path": f"{name}/in"}],
        "output": [{"path": f"{name}/out"}],
        **extra,
    }
    r = requests.post(
        f"{cluster.endpoint}/system/services",
        json=svc,
        auth=(cluster.user, cluster.password),
        timeout=30,
    )
    assert r.status_code == 201, r.text


def service_token(cluster, name) -> str:
    """The token of service ``name`` (what /run and /job take)."""
    r = requests.get(
        f"{cluster.endpoint}/system/services/{name}",
        auth=(cluster.user, cluster.password),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _upload(cluster, name, keys):
    store = _s3(cluster)

    def put(key):
        data = key.encode()
        store.put_object(name, f"in/{key}", io.BytesIO(data), len(data))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def _wait_done(cluster, name, n, timeout) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs(cluster, name)
        if sum(j["status"] in ("Succeeded", "Failed") for j in jobs.values()) >= n:
            return jobs
        time.sleep(0.25)
    raise AssertionError(
        f"not {n} jobs done in {timeout} s: {Counter(j['status'] for j in jobs.values())}"
    )


def _outputs(cluster, name) -> list[str]:
    return [o.object_name for o in _s3(cluster).list_objects(name, prefix="out/", recursive=True)]


def test_200_uploads_exactly_200_jobs(cluster, oscar_schema):
    name = f"bulk-{uuid.uuid4().hex[:8]}"
    _deploy(
        cluster, name, 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"'
    )
    keys = [f"f{i:03d}.txt" for i in range(N)]
    _upload(cluster, name, keys)
    _wait_done(cluster, name, N, timeout=120)
    cluster.wait_idle(name)  # every upload taken in, nothing running: nothing more may appear
    pages: list[dict] = []
    jobs = _jobs(cluster, name, pages)
    assert len(jobs) == N
    assert Counter(j["status"] for j in jobs.values()) == {"Succeeded": N}
    # OSCAR's paginated shape: 70 a page, next_page token, remaining_jobs
    assert [len(p["jobs"]) for p in pages] == [70, 70, 60]
    assert [p["remaining_jobs"] for p in pages] == [130, 60, 0]
    for p in pages:
        oscar_schema(p, "types.JobsResponse")
    outs = _outputs(cluster, name)
    assert sorted(outs) == sorted(f"out/{k}.out" for k in keys)
    store = _s3(cluster)
    assert store.get_object(name, "out/f123.txt.out").read() == b"f123.txt"


@pytest.mark.slow
def test_restart_midway_processes_each_object_exactly_once(tmp_path):
    ledger = tmp_path / "ledger.txt"
    name = "restart-svc"
    script = (
        "sleep 0.05\n"
        'base=$(basename "$INPUT_FILE_PATH")\n'
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$base.out"\n'
        f'echo "$base $JOB_UUID" >> "{ledger}"\n'
    )
    cluster = LocalCluster(tmp_path / "data", max_jobs=2)
    cluster.start()
    try:
        _deploy(cluster, name, script)
        keys = [f"r{i:03d}.txt" for i in range(N)]
        _upload(cluster, name, keys)
        _wait_done(cluster, name, 30, timeout=60)
        cluster.stop()
        assert cluster.endpoint is None
        done_before = len(ledger.read_text().splitlines())
        assert 30 <= done_before < N, "the restart must happen mid-way"

        cluster.start()
        _wait_done(cluster, name, N, timeout=120)
        cluster.wait_idle(name)
        jobs = _jobs(cluster, name)
        assert len(jobs) == N
        assert Counter(j["status"] for j in jobs.values()) == {"Succeeded": N}
        runs = [line.split() for line in ledger.read_text().splitlines()]
        per_key = Counter(k for k, _ in runs)
        assert sorted(per_key) == keys and set(per_key.values()) == {1}
        assert {f"{name}-{u}" for _, u in runs} == set(jobs)
        assert sorted(_outputs(cluster, name)) == sorted(f"out/{k}.out" for k in keys)
    finally:
        cluster.stop()


def test_max_jobs_limits_running_jobs(cluster):
    """k + 3 uploads with max_jobs = k: every job runs, and the job scripts' own clocks (written
    to their outputs) show at most k of them running at the same instant (no sampling)."""
    import json as _json

    k = _json.loads((cluster.data_dir / "cluster.json").read_text())["max_jobs"]
    name = f"maxj-{uuid.uuid4().hex[:8]}"
    _deploy(
        cluster,
        name,
        "s=$(date +%s.%N); sleep 0.6; "
        'echo "$s $(date +%s.%N)" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").t"',
    )
    _upload(cluster, name, [f"m{i}" for i in range(k + 3)])
    jobs = _wait_done(cluster, name, k + 3, timeout=120)
    assert Counter(j["status"] for j in jobs.values()) == {"Succeeded": k + 3}
    store = _s3(cluster)
    spans = []
    for key in _outputs(cluster, name):
        start, end = store.get_object(name, key).read().split()
        spans.append((float(start), float(end)))
    assert len(spans) == k + 3
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert 1 <= most <= k
