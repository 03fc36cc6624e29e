"""Exact results (issue 9): no async or batch result lost, misattributed or misreported.

One test per case of the issue, against the real embedded cluster (and, where a real
OSCAR behaves differently, against one started with ``compat="oscar"``, which ignores exit
codes as OSCAR's supervisor does).
"""

from __future__ import annotations

import json
import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from s3_proxy import S3Proxy

from oscar_elyra.cli import main
from oscar_elyra.errors import ServiceError, ValidationError
from oscar_elyra.invoke import map, run, submit, wait
from oscar_elyra.local import LocalCluster
from oscar_elyra.session import connect, store_for

# the output is named after the input's stem: <stem>.out holding the input
STEM_OUT = (
    'n=$(basename "$INPUT_FILE_PATH"); cat "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/${n%.*}.out"'
)


def _svc(name: str, script: str, **extra) -> dict:
    return {
        "name": name,
        "image": "local",
        "script": textwrap.dedent(script),
        "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
        **extra,
    }


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def store(client):
    return store_for(client, progress=False)


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("exact-cli")
    e: dict = {k: None for k in os.environ if k.startswith("OSCAR_")}
    e.update(OSCAR_CLI_CONFIG=str(tmp / "none.yaml"), XDG_CACHE_HOME=str(tmp / "cache"))
    e.update(cluster.env())
    return e


@pytest.fixture(scope="module")
def oscar_like(tmp_path_factory):
    """An embedded cluster that ignores exit codes, as OSCAR does."""
    c = LocalCluster(tmp_path_factory.mktemp("oscar-like"), max_jobs=4, compat="oscar")
    c.start()
    try:
        session = connect(endpoint=c.endpoint, user=c.user, password=c.password, ssl_verify=False)
        yield c, session.client
    finally:
        c.stop()


def cli(env: dict, *args: str, code: int = 0):
    r = CliRunner(mix_stderr=False).invoke(main, list(args), env=env, catch_exceptions=True)
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    return r


def _files(root: Path, names: dict[str, str]) -> Path:
    for rel, text in names.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# ----------------------------------------------------------------------------- 1


@pytest.mark.slow
def test_two_outputs_second_150mb_every_input_gets_both(client, store, tmp_path):
    """Done is when the job record says so, not when a first output stops changing."""
    name = _name("x-big")
    client.apply_service(
        _svc(
            name,
            """\
            n=$(basename "$INPUT_FILE_PATH"); s=${n%.*}
            cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$s.a-small.txt"
            head -c 157286400 /dev/zero > "$TMP_OUTPUT_DIR/$s.b-big.bin"
            """,
        )
    )
    src = _files(tmp_path / "in", {f"i{k}.txt": f"input {k}" for k in range(4)})
    try:
        res = map(name, src, concurrency=4, output_dir=tmp_path / "out", client=client,
                  store=store, progress=False, retries=0)  # fmt: skip
        assert res.counts() == {"ok": 4}, list(res)
        for r in res:
            stem = Path(r["input"]).stem
            assert sorted(Path(o).name for o in r["outputs"]) == [
                f"{stem}.a-small.txt",
                f"{stem}.b-big.bin",
            ]
            big = tmp_path / "out" / f"{stem}.b-big.bin"
            assert big.stat().st_size == 157286400
        jobs = wait(submit(name, [src / "i0.txt"], client=client, store=store), timeout=300)
        assert len(jobs[0].outputs) == 2 and jobs[0].status == "Succeeded"
    finally:
        store.delete(f"s3://{name}/out/", recursive=True)
        for p in (tmp_path / "out").glob("*.bin"):
            p.unlink()


def test_without_job_records_outputs_are_taken_after_settling_with_a_warning(
    client, store, tmp_path
):
    name = _name("x-gone")
    client.apply_service(_svc(name, STEM_OUT))
    src = _files(tmp_path / "in", {"r.txt": "kept"})
    jobs = submit(name, [src / "r.txt"], client=client, store=store)

    def finished():
        listing = client.list_jobs(name)
        return listing and all(j["status"] == "Succeeded" for j in listing.values())

    deadline = time.monotonic() + 60
    while not finished():
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    client.delete_jobs(name, all=True)  # the records are gone (deleted, expired)
    with pytest.warns(UserWarning, match="no job record found"):
        wait(jobs, timeout=60, settle=1)
    assert jobs[0].status == "Succeeded" and len(jobs[0].outputs) == 1


# ----------------------------------------------------------------------------- 2


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_map_never_writes_two_inputs_to_one_path(client, store, tmp_path, mode):
    name = _name("x-coll")
    client.apply_service(_svc(name, STEM_OUT))
    inputs = {"sub1/x.txt": "one", "sub2/x.txt": "two", "img.png": "three", "img.jpg": "four"}
    src = _files(tmp_path / "in", inputs)
    out = tmp_path / "out"
    res = map(name, src, mode=mode, concurrency=4, output_dir=out, client=client, store=store,
              progress=False)  # fmt: skip
    assert res.counts() == {"ok": 4}, list(res)
    ext = ".out" if mode == "async" else ".txt"
    expect = {
        f"sub1/x{ext}": "one",
        f"sub2/x{ext}": "two",
        f"img.png{ext}": "three",
        f"img.jpg{ext}": "four",
    }
    got = {
        p.relative_to(out).as_posix(): p.read_text()
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert got == expect


def test_map_refuses_a_colliding_plan_before_anything_runs(client, env, tmp_path):
    name = _name("x-plan")
    client.apply_service(_svc(name, STEM_OUT))
    # a.txt and a.png share a stem, so they keep their whole names: a.png then clashes
    # with the stem of a.png.txt
    src = _files(tmp_path / "in", {"a.txt": "1", "a.png": "2", "a.png.txt": "3"})
    with pytest.raises(ValidationError, match="same place"):
        map(name, src, output_dir=tmp_path / "out", client=client, progress=False)
    r = cli(env, "map", name, str(src), "-o", str(tmp_path / "out"), code=2)
    assert "a.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert client.list_jobs(name) == {} and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 3


def test_resume_is_keyed_by_the_run_record(client, store, tmp_path):
    name = _name("x-res")
    client.apply_service(_svc(name, STEM_OUT))
    src = _files(tmp_path / "in", {"a.b.txt": "ab"})
    out = tmp_path / "out"

    def go():
        return map(name, src, output_dir=out, client=client, store=store, progress=False)

    assert go().counts() == {"ok": 1} and (out / "a.b.out").read_text() == "ab"
    (src / "a.txt").write_text("a")  # its stem is a prefix of a.b.out: not a sign of work done
    second = {Path(r["input"]).name: r for r in go()}
    assert second["a.txt"]["status"] == "ok" and (out / "a.out").read_text() == "a"
    assert second["a.b.txt"]["status"] == "skipped"
    (src / "a.b.txt").write_text("changed")  # same path, new content: done again
    third = {Path(r["input"]).name: r["status"] for r in go()}
    assert third == {"a.b.txt": "ok", "a.txt": "skipped"}
    assert (out / "a.b.out").read_text() == "changed"
    assert len(client.list_jobs(name)) == 3
    record = json.loads((out / ".oscar-elyra-map.json").read_text())
    assert {r["relative"]: len(r["sha256"]) for r in record} == {"a.b.txt": 64, "a.txt": 64}


# ----------------------------------------------------------------------------- 4


FAIL_ON_BAD = """\
    if grep -q BAD "$INPUT_FILE_PATH"; then echo "cannot read this input" >&2; exit 1; fi
    n=$(basename "$INPUT_FILE_PATH")
    tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/${n%.*}.out"
    """


def test_sync_exit_1_is_a_failure_run_map_and_resume(client, env, tmp_path):
    name = _name("x-sfail")
    client.apply_service(_svc(name, FAIL_ON_BAD))
    with pytest.raises(ServiceError, match="exited with code 1") as ei:
        run(name, "BAD input", client=client)
    assert "cannot read this input" in (ei.value.log or "")
    r = cli(env, "run", name, "-i", "BAD input", code=1)
    assert "cannot read this input" in r.stderr
    src = _files(tmp_path / "in", {"good.txt": "good", "bad.txt": "BAD"})
    out = tmp_path / "out"
    r = cli(env, "--json", "map", name, str(src), "-o", str(out), "--sync", "--retries", "0",
            code=1)  # fmt: skip
    status = {Path(x["input"]).name: x["status"] for x in json.loads(r.stdout)}
    assert status == {"bad.txt": "failed", "good.txt": "ok"}
    assert not (out / "bad.txt").exists() and (out / "good.txt").read_text() == "GOOD"
    (src / "bad.txt").write_text("fixed")
    r = cli(env, "--json", "map", name, str(src), "-o", str(out), "--sync")
    status = {Path(x["input"]).name: x["status"] for x in json.loads(r.stdout)}
    assert status == {"bad.txt": "ok", "good.txt": "skipped"}  # the failed input is retried
    assert (out / "bad.txt").read_text() == "FIXED"


def test_on_an_oscar_like_cluster_a_failure_is_still_not_a_success(oscar_like, tmp_path):
    """OSCAR ignores exit codes: the job says Succeeded, /run answers 200. The client
    still reports an input whose outputs never appeared as failed."""
    cluster, cl = oscar_like
    name = _name("x-compat")
    cl.apply_service(_svc(name, FAIL_ON_BAD))
    st = store_for(cl, progress=False)
    res = run(name, "BAD", client=cl)  # 200: the script's (empty) stdout
    assert res.kind == "text" and res.text == ""
    src = _files(tmp_path / "in", {"good.txt": "good", "bad.txt": "BAD"})
    for mode in ("sync", "async"):
        out = tmp_path / f"out-{mode}"
        got = map(name, src, mode=mode, output_dir=out, client=cl, store=st, retries=0,
                  progress=False)  # fmt: skip
        by = {Path(r["input"]).name: r for r in got}
        assert by["good.txt"]["status"] == "ok", by
        assert by["bad.txt"]["status"] == "failed" and by["bad.txt"]["outputs"] == []
    jobs = submit(name, [src / "bad.txt"], client=cl, store=st)
    with pytest.raises(ServiceError, match="succeeded but wrote no outputs"):
        wait(jobs, timeout=120)
    assert cl.list_jobs(name)[jobs[0].job_name]["status"] == "Succeeded"  # as on OSCAR


# ----------------------------------------------------------------------------- 5


_F = 'F=$(basename "$INPUT_FILE_PATH"); '
NAMING = {
    # OSCAR Hub / AI4EOSC habits
    "fname": _F + 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/output_$F.json"',
    "iname": _F + 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/output_${F%.*}.png"',
    "pair": _F + 'S=${F%.*}; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$S.json";'
    ' echo "log of $S" > "$TMP_OUTPUT_DIR/$S.log"',
}


@pytest.mark.parametrize("habit", sorted(NAMING))
def test_outputs_named_their_own_way_are_attributed(client, store, tmp_path, habit):
    name = _name(f"x-{habit}")
    client.apply_service(_svc(name, NAMING[habit]))
    src = _files(tmp_path / "in", {f"p{k}.txt": f"content {k}" for k in range(3)})
    jobs = wait(submit(name, sorted(src.iterdir()), client=client, store=store), timeout=120)
    for k, job in enumerate(jobs):
        assert job.status == "Succeeded" and job.outputs, job
        assert len(job.outputs) == (2 if habit == "pair" else 1)
        first = sorted(job.outputs, key=lambda u: u.endswith(".log"))[0]
        assert store.get_file(first, tmp_path / f"o{k}").read_text() == f"content {k}"


def test_fixed_output_name_one_job_ok_several_refused(client, store, env, tmp_path):
    name = _name("x-fixed")
    client.apply_service(_svc(name, 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/output.png"'))
    src = _files(tmp_path / "in", {f"q{k}.txt": f"picture {k}" for k in range(4)})
    one = wait(submit(name, [src / "q0.txt"], client=client, store=store), timeout=120)
    assert [u.rsplit("/", 1)[-1] for u in one[0].outputs] == ["output.png"]
    four = submit(name, sorted(src.iterdir()), client=client, store=store)
    with pytest.raises(ServiceError, match=f"{name}.*one job at a time"):
        wait(four, timeout=120)
    res = map(name, src, concurrency=4, retries=0, output_dir=tmp_path / "o4", client=client,
              store=store, progress=False)  # fmt: skip
    assert res.counts() == {"failed": 4} and "one job at a time" in res[0]["error"]
    r = cli(env, "map", name, str(src), "-o", str(tmp_path / "o1"), "-j", "1")
    assert "ok: 4" in r.stdout
    for k in range(4):
        assert (tmp_path / "o1" / f"q{k}" / "output.png").read_text() == f"picture {k}"


# ----------------------------------------------------------------------------- 8


def _gate(upstream: str, allow: int) -> S3Proxy:
    """A real proxy in front of the S3 server that lets ``allow`` object uploads through and
    refuses the rest (403), as a storage outage mid-submission would."""
    proxy = S3Proxy(upstream)
    puts = iter(range(1, 1 << 30))
    proxy.fault = lambda method, key, headers, n: (
        ("deny",) if method == "PUT" and next(puts) > allow else None
    )
    return proxy


def test_interrupted_job_is_resumed_without_sending_twice(cluster, client, env, tmp_path):
    name = _name("x-resume")
    ledger = tmp_path / "ledger.txt"
    client.apply_service(
        _svc(
            name,
            f'basename "$INPUT_FILE_PATH" >> "{ledger}"; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"',
        )
    )
    files = [
        str(p)
        for p in sorted(_files(tmp_path / "in", {f"j{k}.txt": str(k) for k in range(6)}).iterdir())
    ]
    record = tmp_path / "submission.jsonl"
    gate = _gate(cluster.s3_endpoint, allow=2)
    try:
        r = cli(dict(env, OSCAR_S3_ENDPOINT=gate.url), "job", name, *files, "--record",
                str(record), code=1)  # fmt: skip
    finally:
        gate.close()
    assert "2 of 6 input(s) queued" in r.stderr and f"job --resume {record}" in r.stderr
    r = cli(env, "--json", "job", "--resume", str(record), "--wait")
    jobs = json.loads(r.stdout)
    assert [j["status"] for j in jobs] == ["Succeeded"] * 6
    assert len(client.list_jobs(name)) == 6  # the two queued before were not sent again
    runs = ledger.read_text().split()
    assert len(runs) == 6 and len(set(runs)) == 6


# ----------------------------------------------------------------------------- 9


@pytest.mark.parametrize("length", [240, 255])
def test_get_of_a_long_key(client, store, env, tmp_path, length):
    leaf = ("k" * (length - 4)) + ".bin"
    uri = f"s3://cowsay/long/{leaf}"
    store.put_bytes(b"long name", uri)
    out = tmp_path / "dl"
    out.mkdir()
    r = cli(env, "get", uri, str(out) + "/")
    assert (out / leaf).read_bytes() == b"long name" and r.stdout.strip().endswith(leaf)
    assert [p.name for p in out.iterdir()] == [leaf]


# ----------------------------------------------------------------------------- 10


def test_a_zip_whose_members_clash_is_refused_and_leaves_nothing(client, env, tmp_path):
    name = _name("x-clash")
    script = """\
        python3 -c '
        import sys, zipfile
        with zipfile.ZipFile(sys.argv[1], "w") as z:
            z.writestr("a.txt", "fine")
            z.writestr("c", "a file")
            z.writestr("c/d", "and a folder")
        ' "$TMP_OUTPUT_DIR/answer.zip"
        """
    client.apply_service({"name": name, "image": "local", "script": textwrap.dedent(script)})
    out = tmp_path / "out"
    r = cli(env, "-q", "run", name, "-i", "x", "-o", str(out) + "/", code=1)
    assert "clash" in r.stderr and "'c'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(ServiceError, match="members clash"):
        run(name, "x", client=client)
