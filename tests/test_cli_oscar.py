"""CLI conveniences of oscar-cli: buckets, rm, logs --status/--latest, get --latest, FDL apply."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import requests
import test_cli_data
import yaml
from PIL import Image
from test_cli_data import cli
from test_local_api import s3

# the CLI data tests' fixtures: the cluster's env for the CLI, and secrets never printed
env = test_cli_data.env
secrets = test_cli_data.secrets


def put(cluster, bucket: str, key: str, data: bytes) -> None:
    s3(cluster).put_object(bucket, key, io.BytesIO(data), len(data))


def test_cluster_info_prints_version_and_backend(env, secrets):
    out = cli(env, "cluster", "info", secrets=secrets).stdout
    assert "version:    embedded-" in out and "backend:    oscar-elyra-embedded" in out


def test_buckets_commands(env, cluster, secrets):
    b = f"cli-{uuid.uuid4().hex[:8]}"
    cli(env, "buckets", "create", b, "--visibility", "public", secrets=secrets)
    put(cluster, b, "a/x.txt", b"xx")
    ls = cli(env, "buckets", "ls", secrets=secrets).stdout
    assert any(line.split()[:2] == [b, "public"] for line in ls.splitlines())
    got = json.loads(cli(env, "--json", "buckets", "get", b).stdout)
    assert got["objects"][0]["object_name"] == "a/x.txt"
    cli(env, "buckets", "update", b, "--visibility", "restricted", "--allow", "carol")
    assert "users:      carol" in cli(env, "buckets", "get", b).stdout
    r = cli(env, "buckets", "create", b, "--allow", "x", code=2)  # --allow needs restricted
    assert "restricted" in r.stderr
    r = cli(env, "buckets", "presign", f"{b}/a/x.txt", "--expires", "60", secrets=secrets)
    assert requests.get(r.stdout.strip(), timeout=30).content == b"xx"
    assert "expires" in r.stderr
    r = cli(env, "buckets", "presign", b, code=2)
    assert f"{b!r} names no object; give bucket/key" in r.stderr
    # not empty: no terminal to ask, so --yes is required
    r = cli(env, "buckets", "rm", b, code=2)
    assert "--yes" in r.stderr and s3(cluster).bucket_exists(b)
    cli(env, "buckets", "rm", b, "--yes")
    assert not s3(cluster).bucket_exists(b)
    r = cli(env, "buckets", "rm", b, code=1)
    assert "not found" in r.stderr


def test_rm_dry_run_threshold_and_delete(env, cluster):
    b = f"rm-{uuid.uuid4().hex[:8]}"
    s3(cluster).make_bucket(b)
    for i in range(12):
        put(cluster, b, f"dir/f{i}.txt", b"1")
    put(cluster, b, "dir2/keep.txt", b"1")
    r = cli(env, "rm", f"{b}/dir", "--dry-run")
    assert r.stdout.count("would delete") == 12 and "nothing deleted" in r.stdout
    assert len(list(s3(cluster).list_objects(b, recursive=True))) == 13
    r = cli(env, "rm", f"{b}/dir/", code=2)  # 12 > 10 and no terminal
    assert "12 objects would be deleted" in r.stderr
    r = cli(env, "rm", f"{b}/dir/", input="y\n", code=2)  # not a tty: refused, not asked
    assert "12 objects would be deleted" in r.stderr and "[y/N]" not in r.stderr
    cli(env, "rm", f"{b}/dir/f0.txt")  # one object: no question
    r = cli(env, "rm", f"{b}/dir", "--yes")
    assert "deleted 11 objects" in r.stdout
    left = [o.object_name for o in s3(cluster).list_objects(b, recursive=True)]
    assert left == ["dir2/keep.txt"]
    cli(env, "rm", f"{b}/nothing/", code=1)
    r = cli(env, "rm", b, code=2)
    assert f"{b!r} is a whole bucket; use 'buckets rm {b}' for that" in r.stderr


def test_get_latest(env, cluster, tmp_path):
    b = f"gl-{uuid.uuid4().hex[:8]}"
    s3(cluster).make_bucket(b)
    put(cluster, b, "out/first.txt", b"first")
    put(cluster, b, "out/second.txt", b"second")  # written last
    r = cli(env, "get", "--latest", f"{b}/out/", str(tmp_path))
    assert Path(r.stdout.strip()).read_text() == "second"
    cli(env, "get", "--latest", f"{b}/none/", str(tmp_path), code=1)


def test_logs_status_filter_and_latest(env, client, tmp_path):
    f = tmp_path / "msg.txt"
    f.write_text("moo")
    # cowsay writes no output file: its Succeeded job is an input without a result (exit 1)
    cli(env, "job", "cowsay", str(f), "--wait", "--timeout", "120", code=1)
    jobs = client.list_jobs("cowsay")
    out = json.loads(cli(env, "--json", "logs", "ls", "cowsay", "--status", "succeeded").stdout)
    assert out and all(j["status"] == "Succeeded" for j in out.values())
    assert set(out) == {n for n, j in jobs.items() if j["status"] == "Succeeded"}
    none = json.loads(cli(env, "--json", "logs", "ls", "cowsay", "--status", "Suspended").stdout)
    assert none == {}
    latest = max(jobs, key=lambda n: (jobs[n]["creation_time"], n))
    r = cli(env, "--json", "logs", "get", "cowsay", "--latest")
    assert json.loads(r.stdout)["job"] == latest
    assert "give a JOB name or --latest" in cli(env, "logs", "get", "cowsay", code=2).stderr


def test_job_via_api(env, tmp_path):
    f = tmp_path / "pic.png"
    Image.new("RGB", (4, 4), (200, 10, 10)).save(f)
    r = cli(env, "--json", "job", "grayify", str(f), "--via-api", "-o", str(tmp_path / "out"))
    (job,) = json.loads(r.stdout)
    assert job["status"] == "Succeeded" and ".oscar-elyra-job/" in job["input_uri"]
    assert Image.open(tmp_path / "out" / "pic.png").mode == "L"


def test_services_deployment(env):
    out = cli(env, "services", "deployment", "cowsay", "--logs").stdout
    assert "state:   ready" in out


# ---------------------------------------------------------------- multi-cluster FDL


def _fdl(tmp_path: Path, entries: list[tuple[str, str]]) -> Path:
    (tmp_path / "s.sh").write_text("cat $INPUT_FILE_PATH\n")
    doc = {
        "functions": {
            "oscar": [
                {cid: {"name": svc, "image": "alpine", "script": "s.sh"}} for cid, svc in entries
            ]
        }
    }
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_multi_cluster_fdl_apply(env, cluster, client, tmp_path):
    """Each entry to its oscar-cli cluster (here two ids for the same embedded cluster)."""
    conf = tmp_path / "oscar-cli.yaml"
    entry = {
        "endpoint": cluster.endpoint,
        "auth_user": cluster.user,
        "auth_password": cluster.password,
        "ssl_verify": False,
    }
    conf.write_text(yaml.safe_dump({"oscar": {"east": entry, "west": entry}, "default": "east"}))
    e = {k: v for k, v in env.items() if not (k or "").startswith("OSCAR_")}
    e.update({k: None for k in env if k.startswith("OSCAR_")}, OSCAR_CLI_CONFIG=str(conf))
    tag = uuid.uuid4().hex[:6]
    a, b, c = f"ma-{tag}", f"mb-{tag}", f"mc-{tag}"
    fdl = _fdl(tmp_path, [("east", a), ("west", b)])

    r = cli(e, "--cluster", "west", "services", "apply", str(fdl))
    assert r.stdout.strip() == f"created {b}"
    names = {s["name"] for s in client.list_services()}
    assert b in names and a not in names

    r = cli(e, "--json", "services", "apply", str(fdl))
    got = {(x["name"], x["cluster"], x["action"]) for x in json.loads(r.stdout)}
    assert got == {(a, "east", "created"), (b, "west", "updated")}

    bad = _fdl(tmp_path, [("east", c), ("north", c + "x")])
    r = cli(e, "services", "apply", str(bad), code=2)
    assert "north" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert c not in {s["name"] for s in client.list_services()}  # nothing was sent
    r = cli(e, "--cluster", "south", "services", "apply", str(fdl), code=2)
    for svc in (a, b):
        client.delete_service(svc)
