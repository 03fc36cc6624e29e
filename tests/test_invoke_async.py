"""Async invocation (submit/wait) and batches (map) against the embedded cluster."""

from __future__ import annotations

import io
import json
import re
import textwrap
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
from minio import Minio
from PIL import Image
from s3_proxy import S3Proxy

import oscar_elyra.invoke
from oscar_elyra.errors import ServiceError, TimeoutError, ValidationError
from oscar_elyra.invoke import BatchResult, Job, Result, map, run, submit, wait
from oscar_elyra.invoke.jobs import new_run_id
from oscar_elyra.session import connect, store_for

# echoes the input name (so the job log identifies the input), fails on "FAIL",
# writes <stem>.out, and a second file <stem>.extra for inputs containing "MULTI"
ECHO = textwrap.dedent(
    """\
    name=$(basename "$INPUT_FILE_PATH")
    echo "processing $name"
    if grep -q FAIL "$INPUT_FILE_PATH"; then echo "boom-marker for $name" >&2; exit 3; fi
    tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/${name%.*}.out"
    if grep -q MULTI "$INPUT_FILE_PATH"; then echo extra > "$TMP_OUTPUT_DIR/${name%.*}.extra"; fi
    """
)


def _svc(name: str, script: str) -> dict:
    return {
        "name": name,
        "image": "local",
        "script": script,
        "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
    }


@pytest.fixture(scope="module")
def client(client):
    """The module client, with this module's test services deployed."""
    cl = client
    cl.apply_service(_svc("a-echo", ECHO))
    cl.apply_service(_svc("a-slow", "sleep 30"))
    return cl


@pytest.fixture(scope="module")
def store(client):
    return store_for(client, progress=False)


def test_submit_wait_100_inputs(client, store, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    files = []
    for i in range(100):
        f = src / f"item{i:03d}.txt"
        f.write_text(f"hello {i}" + (" MULTI" if i % 25 == 0 else ""))
        files.append(f)
    jobs = submit("a-echo", files, client=client, store=store)
    assert len({j.input_uri for j in jobs}) == 100
    assert all(j.input_uri.startswith(f"s3://a-echo/in/{jobs[0].run_id}-") for j in jobs)
    wait(jobs, timeout=240, download_to=tmp_path / "out")
    for i, j in enumerate(jobs):
        assert j.status == "Succeeded", j
        assert len(j.outputs) == (2 if i % 25 == 0 else 1)
        assert all(f"/{j.run_id}-{j.index}-item{i:03d}." in o for o in j.outputs)
    out = tmp_path / "out"
    assert (out / "item007.out").read_text().strip() == "HELLO 7"
    assert (out / "item025.extra").exists()
    assert len(list(out.iterdir())) == 104
    # a second run of the same files gets its own outputs, never the first run's
    again = submit("a-echo", files[:2], client=client, store=store)
    wait(again, timeout=60)
    assert [len(j.outputs) for j in again] == [2, 1]  # item000 is MULTI
    assert all(again[0].run_id in o for j in again for o in j.outputs)
    assert again[0].run_id != jobs[0].run_id
    # the same run_id label twice still gives two distinct submissions
    a = submit("a-echo", files[:1], client=client, store=store, run_id="lbl_1")
    b = submit("a-echo", files[:1], client=client, store=store, run_id="lbl_1")
    assert a[0].run_id.startswith("lbl_1.") and a[0].input_uri != b[0].input_uri
    wait(a + b, timeout=60)
    assert a[0].outputs != b[0].outputs and len(b[0].outputs) == 2  # item000: MULTI


def test_failed_job_raises_with_log(client, store, tmp_path):
    ok = tmp_path / "fine.txt"
    ok.write_text("ok")
    bad = tmp_path / "broken.txt"
    bad.write_text("FAIL please")
    jobs = submit("a-echo", [ok, bad], client=client, store=store)
    with pytest.raises(ServiceError, match="boom-marker") as ei:
        wait(jobs, timeout=60)
    assert "broken.txt" in str(ei.value) and ei.value.log
    assert jobs[0].status == "Succeeded" and jobs[1].status == "Failed"
    assert jobs[1].job_name and jobs[1].job_name.startswith("a-echo-")


def test_timeout_names_pending_inputs(client, store, tmp_path):
    f = tmp_path / "sleepy.txt"
    f.write_text("z")
    jobs = submit("a-slow", [f], client=client, store=store)
    with pytest.raises(TimeoutError, match="sleepy.txt"):
        wait(jobs, timeout=1)
    assert jobs[0].status == "TimedOut"
    client.delete_jobs("a-slow", all=True)


def test_submit_bad_input(client, store, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        submit("a-echo", [tmp_path / "missing.txt"], client=client, store=store)
    with pytest.raises(ValidationError, match="no MinIO input"):
        client.apply_service({"name": "a-nosync", "image": "local", "script": "true"})
        (tmp_path / "x").write_text("x")
        submit("a-nosync", [tmp_path / "x"], client=client, store=store)


def test_one_rule_for_async_services(client, store, tmp_path):
    """submit and map check a service with the same rule: a MinIO input AND output path."""
    no_output = _svc("a-noout", "true")
    del no_output["output"]
    client.apply_service(no_output)
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(ValidationError, match="no MinIO output path"):
        submit("a-noout", [f], client=client, store=store)
    with pytest.raises(ValidationError, match="no MinIO output path"):
        map("a-noout", [f], client=client, store=store, progress=False)


def test_submit_takes_a_fetched_definition(client, store, tmp_path, monkeypatch):
    svc = client.get_service("a-echo")
    monkeypatch.setattr(client, "get_service", lambda name: pytest.fail(f"{name} fetched again"))
    f = tmp_path / "given.txt"
    f.write_text("given")
    # a label such as a pipeline run name becomes a key-safe run id (no '-', the separator)
    jobs = submit("a-echo", [f], client=client, store=store, service_def=svc, run_id="my run-1/x")
    assert jobs[0].run_id.startswith("my_run_1_x.")
    wait(jobs, timeout=60)
    assert jobs[0].status == "Succeeded" and len(jobs[0].outputs) == 1


def test_new_run_id():
    a, b = new_run_id(), new_run_id()
    assert a != b and a.isalnum() and len(a) == 18
    assert new_run_id("Run #3 - eval").startswith("Run__3___eval.")
    assert len(new_run_id("x" * 300)) == 48 + 7


def test_public_names():
    """The package re-exports its API from sync, jobs and batch."""
    assert sorted(oscar_elyra.invoke.__all__) == [
        "BatchResult",
        "Job",
        "Result",
        "map",
        "resume",
        "run",
        "submit",
        "wait",
    ]
    assert all(hasattr(oscar_elyra.invoke, name) for name in oscar_elyra.invoke.__all__)
    assert {Result.__module__, run.__module__} == {"oscar_elyra.invoke.sync"}
    assert {Job.__module__, submit.__module__, wait.__module__} == {"oscar_elyra.invoke.jobs"}
    assert oscar_elyra.invoke.resume.__module__ == "oscar_elyra.invoke.jobs"
    assert {BatchResult.__module__, map.__module__} == {"oscar_elyra.invoke.batch"}


def test_map_async_resume_after_partial_run(client, store, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.txt").write_text("FAIL" if i in (1, 4) else f"data {i}")
    out, record = tmp_path / "out", tmp_path / "records.json"

    def run_map(progress=False, **kw):
        return map(
            "a-echo",
            src,
            concurrency=3,
            output_dir=out,
            record_file=record,
            client=client,
            store=store,
            timeout=60,
            progress=progress,
            **kw,
        )

    first = run_map(retries=1)
    assert isinstance(first, BatchResult) and not first.ok
    by_name = {r["input"].rsplit("/", 1)[-1]: r for r in first}
    assert [by_name[f"f{i}.txt"]["status"] for i in range(6)] == [
        "ok",
        "failed",
        "ok",
        "ok",
        "failed",
        "ok",
    ]
    assert "boom-marker" in by_name["f1.txt"]["error"]
    assert by_name["f0.txt"]["outputs"] == [str(out / "f0.out")]
    assert all(r["seconds"] > 0 for r in first)
    saved = json.loads(record.read_text())
    assert [r["status"] for r in saved] == [r["status"] for r in first]
    keys = {"input", "key", "relative", "status", "outputs", "error", "seconds", "size"}
    assert all(set(r) == keys | {"sha256", "job"} for r in saved)
    df = first.to_pandas()
    assert list(df.columns) == ["input", "status", "outputs", "error", "seconds"] and len(df) == 6

    # fix the two bad inputs and resume: only they run again
    for i in (1, 4):
        (src / f"f{i}.txt").write_text(f"fixed {i}")
    jobs_before = len(client.list_jobs("a-echo"))
    capsys.readouterr()
    second = run_map(progress=True)
    assert second.ok and second.counts() == {"skipped": 4, "ok": 2}
    # the progress bar counts files, the skipped ones done from the start, never past 6
    bars = capsys.readouterr().err
    assert "a-echo (async):" in bars and "| 0/6 [00:00<?, ?file/s]" in bars, bars
    shown = [int(n) for n in re.findall(r"\| (\d+)/6 \[", bars)]
    # (tqdm redraws at most every 0.1 s and this bar is not left drawn at its end: which
    # counts after 0 get drawn is a matter of timing)
    assert shown[0] == 0 and max(shown) <= 6, bars
    assert all(r["seconds"] == 0.0 for r in second if r["status"] == "skipped")
    skipped = {r["input"].rsplit("/", 1)[-1]: r for r in second if r["status"] == "skipped"}
    assert skipped["f0.txt"]["outputs"] == [str(out / "f0.out")]  # as the first run left them
    assert (out / "f4.out").read_text().strip() == "FIXED 4"
    assert len(client.list_jobs("a-echo")) == jobs_before + 2


def test_map_sync_one_failure_does_not_abort(client, tmp_path):
    img = tmp_path / "in"
    img.mkdir()
    files = []
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 80, 10, 10)).save(img / f"p{i}.png")
        files.append(img / f"p{i}.png")
    files.insert(1, img / "missing.png")
    res = map(
        "grayify",
        files,
        mode="sync",
        concurrency=2,
        output_dir=tmp_path / "out",
        client=client,
        progress=False,
    )
    assert [r["status"] for r in res] == ["ok", "failed", "ok", "ok"]
    assert "does not exist" in res[1]["error"]
    out = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert out == ["p0.png", "p1.png", "p2.png"]
    with pytest.raises(ValidationError):
        map("grayify", files, mode="fast", client=client)


def test_store_from_cluster(cluster, client):
    st = connect(
        endpoint=cluster.endpoint,
        user=cluster.user,
        password=cluster.password,
        ssl_verify=False,
    ).store
    assert "a-echo" in st.list_buckets() and cluster.s3_secret_key not in repr(st)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_map_gives_each_attempt_its_timeout(client, store, tmp_path, mode):
    """Scripts that fail after 5 s: every input is tried 1 + retries times, each attempt
    stopped by map's 2 s timeout before its script could end (so the error is the timeout,
    not the exit code), and each input's record says so."""
    name = f"a-hang-{mode}"
    client.apply_service(_svc(name, "sleep 5; exit 7"))
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"h{i}.txt").write_text(f"hang {i}")
    try:
        res = map(
            name,
            src,
            mode=mode,
            retries=1,
            concurrency=2,
            timeout=2,
            output_dir=tmp_path / "out",
            client=client,
            store=store,
            progress=False,
        )
        errors = {r["input"].rsplit("/", 1)[-1]: (r["status"], r["error"]) for r in res}
        if mode == "async":
            assert errors == {f"h{i}.txt": ("failed", "not finished after 2 s") for i in range(2)}
            assert len(client.list_jobs(name)) == 4  # two attempts (jobs) per input
        else:
            assert set(errors) == {"h0.txt", "h1.txt"}
            for status, error in errors.values():
                assert status == "failed", error
                assert f"service '{name}'" in error and "timed out" in error, error
        assert not (tmp_path / "out").exists() or [
            p.name for p in (tmp_path / "out").iterdir()
        ] == [".oscar-elyra-map.json"]
    finally:
        client.delete_jobs(name, all=True)
        client.delete_service(name)


# a script that records when it runs (host clock), so a test sees how many ran at once
SPANS = 'echo "start $(date +%s.%N)" >> {log}; sleep 0.3; echo "end $(date +%s.%N)" >> {log}\n'


def _most_at_once(log) -> int:
    events = []
    for line in log.read_text().splitlines():
        kind, at = line.split()
        events.append((float(at), 1 if kind == "start" else -1))
    running = most = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("via", [None, "bucket"])
def test_map_keeps_at_most_k_jobs_in_flight_and_starts_them_as_asked(client, store, tmp_path, via):
    """concurrency=1 on a cluster with 2 slots: a job starts only once the job before it
    ended. By default jobs are started by POST /job (inputs staged beside the input path,
    the input path untouched); via="bucket" uploads into the input path."""
    name = f"a-spans-{via or 'job'}"
    log = tmp_path / "spans.log"
    client.apply_service(_svc(name, SPANS.format(log=log) + ECHO))
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        (src / f"s{i}.txt").write_text(f"span {i}")
    res = map(name, src, concurrency=1, output_dir=tmp_path / "out", client=client, store=store,
              progress=False, timeout=120, via=via)  # fmt: skip
    assert res.counts() == {"ok": 5}
    assert [(tmp_path / "out" / f"s{i}.out").read_text() for i in range(5)] == [
        f"SPAN {i}" for i in range(5)
    ]
    assert _most_at_once(log) == 1
    staged = [o.key for o in store.list(f"s3://{name}/.oscar-elyra-job/")]
    inputs = [o.key for o in store.list(f"s3://{name}/in/")]
    assert (len(staged), len(inputs)) == ((5, 0) if via is None else (0, 5))


def test_map_via_is_checked(client, store, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(ValidationError, match="via='carrier'"):
        map("a-echo", [f], via="carrier", client=client, store=store, progress=False)


class _Pages:
    """A job list served two jobs a page, as OSCAR pages it (continuation tokens); the
    embedded cluster cannot serve an out-of-order or stale list, so this stands in."""

    def __init__(self, jobs: list[tuple[str, str]]) -> None:
        self.jobs = jobs
        self.asked: list[str | None] = []
        self.refuse = False

    def job_pages(self, service, page=None):
        if page is not None and self.refuse:
            raise ServiceError("continuation token expired")
        start = int(page[1:]) if page else 0
        while True:
            self.asked.append(page)
            chunk = self.jobs[start : start + 2]
            yield (
                page,
                {n: {"status": s, "creation_time": "2026-01-01T00:00:00Z"} for n, s in chunk},
            )
            start += 2
            if start >= len(self.jobs):
                return
            page = f"p{start}"


def test_job_list_is_read_from_its_first_unfinished_page_while_it_only_grows_at_its_end():
    from oscar_elyra.invoke.jobs import _Tracker

    done, running = "Succeeded", "Running"
    pages = _Pages([("j0", done), ("j1", done), ("j2", done), ("j3", running), ("j4", running)])
    t = _Tracker("svc", pages, None)
    listing, whole = t._listing(full=False)  # nothing read before: the whole list
    assert whole and len(listing) == 5 and pages.asked == [None, "p2", "p4"]
    pages.jobs.append(("j5", running))
    pages.asked.clear()
    listing, whole = t._listing(full=False)  # from the page of j3 (the first unfinished)
    assert not whole and pages.asked == ["p2", "p4"] and set(listing) == {"j2", "j3", "j4", "j5"}
    assert t.incremental
    # a whole list with a new job before known ones: it does not only grow at its end
    pages.jobs.insert(0, ("j6", running))
    t._listing(full=True)
    assert not t.incremental
    pages.asked.clear()
    assert t._listing(full=False)[1] and pages.asked[0] is None

    # a resumed page showing a finished job unfinished again is a stale snapshot
    pages = _Pages([("j0", running), ("j1", done), ("j2", running)])
    t = _Tracker("svc", pages, None)
    t._listing(full=True)
    pages.jobs[1] = ("j1", running)
    t._listing(full=False)
    assert not t.incremental

    # a refused continuation token: the whole list, and whole lists from then on
    pages = _Pages([("j0", done), ("j1", done), ("j2", running)])
    t = _Tracker("svc", pages, None)
    t._listing(full=True)
    pages.refuse = True
    listing, whole = t._listing(full=False)
    assert whole and len(listing) == 3 and not t.incremental


def test_submit_record_then_resume_sends_only_what_was_not_queued(client, store, tmp_path):
    """An interrupted submission (the record lost its last upload lines) is finished by
    resume: only the inputs not recorded are uploaded again, and every input's job comes
    back, with its outputs."""
    from oscar_elyra.invoke.jobs import read_submission, resume

    files = []
    for i in range(3):
        f = tmp_path / f"rec{i}.txt"
        f.write_text(f"record {i}")
        files.append(f)
    record = tmp_path / "submission.jsonl"
    jobs = submit("a-echo", files, client=client, store=store, record=record, run_id="rec")
    plan, queued = read_submission(record)
    assert plan["service"] == "a-echo" and plan["via"] == "bucket"
    assert plan["run_id"] == jobs[0].run_id and plan["input_path"] == "a-echo/in"
    assert plan["output_paths"] == ["a-echo/out"]
    assert [e["input"] for e in plan["inputs"]] == [str(f.resolve()) for f in files]
    assert [e["index"] for e in plan["inputs"]] == [1, 2, 3]
    assert [e["input_uri"] for e in plan["inputs"]] == [j.input_uri for j in jobs]
    assert sorted(queued) == [1, 2, 3]
    assert all(queued[j.index] == pytest.approx(j.submitted_at) for j in jobs)
    wait(jobs, timeout=60)

    # a submission interrupted: the plan (here the same inputs under a fresh run id, so
    # nothing of it is in the bucket yet), input 2's line cut by a crash, input 1 recorded
    # as queued, input 3's line never written
    run2 = new_run_id("rec")
    lines = record.read_text().splitlines()
    plan2 = json.loads(lines[0].replace(jobs[0].run_id, run2))
    by_index = {json.loads(x)["queued"]: x for x in lines[1:]}
    record.write_text("\n".join([json.dumps(plan2), by_index[2][:9], by_index[1]]) + "\n")
    assert sorted(read_submission(record)[1]) == [1]
    again = resume(record, client=client, store=store)
    assert [j.index for j in again] == [1, 2, 3] and {j.run_id for j in again} == {run2}
    assert [j.input_uri for j in again] == [e["input_uri"] for e in plan2["inputs"]]
    assert [store.exists(j.input_uri) for j in again] == [False, True, True]
    assert sorted(read_submission(record)[1]) == [1, 2, 3]  # resume recorded its uploads
    wait(again[1:], timeout=60, download_to=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rec1.out", "rec2.out"]
    assert (tmp_path / "out" / "rec2.out").read_text().strip() == "RECORD 2"
    # nothing left to send: resume uploads nothing
    store.delete(again[1].input_uri)
    assert [j.index for j in resume(record, client=client, store=store)] == [1, 2, 3]
    assert [store.exists(j.input_uri) for j in again] == [False, False, True]


def test_resume_refuses_what_is_not_a_record(client, store, tmp_path):
    from oscar_elyra.invoke.jobs import resume

    with pytest.raises(ValidationError, match=r"submission record .*nope.jsonl.* does not exist"):
        resume(tmp_path / "nope.jsonl", client=client, store=store)
    for text in ("", "not json\n", '["a list"]\n', '{"service": "a-echo"}\n', "\udcff"):
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(ValidationError, match="is not a submission record written by"):
            resume(bad, client=client, store=store)
    # an input of the record that is gone by now: said before anything is sent
    gone = tmp_path / "gone.txt"
    gone.write_text("soon gone")
    record = tmp_path / "sub.jsonl"
    submit("a-echo", [gone], client=client, store=store, record=record)
    record.write_text(record.read_text().splitlines()[0] + "\n")
    gone.unlink()
    with pytest.raises(ValidationError, match="gone.txt.* does not exist"):
        resume(record, client=client, store=store)


def test_submit_via_job_record_and_outputs(client, store, tmp_path):
    """via='job': the input is staged beside the input path (which starts no job by
    itself) and POST /job names it; its outputs are attributed the same way."""
    from oscar_elyra.invoke.jobs import read_submission

    f = tmp_path / "viajob.txt"
    f.write_text("via job")
    record = tmp_path / "sub.jsonl"
    jobs = submit("a-echo", [f], client=client, store=store, via="job", record=record)
    assert jobs[0].input_uri.startswith("s3://a-echo/.oscar-elyra-job/")
    plan, queued = read_submission(record)
    assert plan["via"] == "job" and plan["input_path"] == "a-echo/.oscar-elyra-job"
    assert list(queued) == [1]
    wait(jobs, timeout=60, download_to=tmp_path / "out")
    assert jobs[0].status == "Succeeded"
    assert (tmp_path / "out" / "viajob.out").read_text().strip() == "VIA JOB"
    with pytest.raises(ValidationError, match="via='nope': use 'bucket' or 'job'"):
        submit("a-echo", [f], client=client, store=store, via="nope")


def test_via_job_needs_an_input_folder(client, store, tmp_path):
    svc = _svc("a-rootin", ECHO)
    svc["input"][0]["path"] = "a-rootin"  # a whole bucket, as another cluster may have it
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(ValidationError) as info:
        submit("a-rootin", [f], client=client, store=store, via="job", service_def=svc)
    assert str(info.value) == (
        "service 'a-rootin': its input path 'a-rootin' covers '.oscar-elyra-job', where "
        "via='job' stages inputs; use via='bucket' (or an input path with a folder)"
    )


def test_timeout_message_counts_what_it_does_not_name(client, store, tmp_path):
    files = []
    for i in range(11):
        f = tmp_path / f"slow{i:02d}.txt"
        f.write_text("z")
        files.append(f)
    jobs = submit("a-slow", files, client=client, store=store)
    try:
        with pytest.raises(TimeoutError) as info:
            wait(jobs, timeout=0)
    finally:
        client.delete_jobs("a-slow", all=True)
    msg = str(info.value)
    assert msg.startswith("11 of 11 inputs of service 'a-slow' still pending after 0 s: ")
    assert ", ".join(f"slow{i:02d}.txt" for i in range(10)) + " and 1 more" in msg
    assert all(j.status == "TimedOut" for j in jobs)


def test_paths_on_two_providers_are_refused(client, store, tmp_path):
    svc = _svc("a-twoprov", ECHO)
    svc["output"][0]["storage_provider"] = "s3.aws"
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(ValidationError) as info:
        submit("a-twoprov", [f], client=client, store=store, service_def=svc)
    assert str(info.value) == (
        "service 'a-twoprov': its input and output paths are on different storage providers "
        "(minio.default, s3.aws); this client follows jobs on one provider"
    )


# outputs named by the run stem alone (``<run id>-<n>-summary.json``) and by a fixed name
NAMED = textwrap.dedent(
    """\
    name=$(basename "$INPUT_FILE_PATH")
    echo "fixed for $name" > "$TMP_OUTPUT_DIR/output.txt"
    echo "summary of $name" > "$TMP_OUTPUT_DIR/${name%-*}-summary.json"
    """
)


def test_map_places_outputs_not_named_after_their_input(client, store, tmp_path):
    """An output named by the run stem alone goes beside the input's results, a fixed-name
    output into a folder named after the input; the results of inputs of two folders keep
    those folders. Two inputs of one folder whose outputs land on one file: the second
    input fails and nothing of it is written."""
    client.apply_service(_svc("a-named", NAMED))
    src = tmp_path / "in"
    files = [src / "a" / "x.txt", src / "b" / "y.txt", src / "b" / "z.txt"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f.name)
    out = tmp_path / "out"
    res = map("a-named", files, concurrency=1, retries=0, output_dir=out, client=client,
              store=store, progress=False, timeout=60)  # fmt: skip
    by = {r["relative"]: r for r in res}
    assert [r["status"] for r in res] == ["ok", "ok", "failed"], res
    assert sorted(by["a/x.txt"]["outputs"]) == [
        str(out / "a" / "summary.json"),
        str(out / "a" / "x" / "output.txt"),
    ]
    assert sorted(by["b/y.txt"]["outputs"]) == [
        str(out / "b" / "summary.json"),
        str(out / "b" / "y" / "output.txt"),
    ]
    assert by["b/z.txt"]["error"] == (
        f"output {str(out / 'b' / 'summary.json')!r} was already written for input "
        f"{str(files[1])!r} in this run; refusing to overwrite it"
    )
    summary = (out / "b" / "summary.json").read_text()
    assert re.fullmatch(r"summary of \d{12}[0-9a-f]{6}-2-y\.txt\n", summary), summary
    fixed = (out / "a" / "x" / "output.txt").read_text()
    assert re.fullmatch(r"fixed for \d{12}[0-9a-f]{6}-1-x\.txt\n", fixed), fixed
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        ".oscar-elyra-map.json",
        "a/summary.json",
        "a/x/output.txt",
        "b/summary.json",
        "b/y/output.txt",
    ]


def test_map_refuses_a_plan_whose_results_would_meet(tmp_path):
    """Inputs whose results would share a name, or land on an input folder, are refused
    before anything is sent (no cluster is even asked)."""
    (tmp_path / "x").mkdir()
    for rel in ("q.txt.gz", "q.txt", "q.md", "x.txt", "x/y.txt"):
        (tmp_path / rel).write_text(rel)
    with pytest.raises(ValidationError) as info:
        map("any", [tmp_path / n for n in ("q.txt.gz", "q.txt", "q.md")], progress=False)
    assert str(info.value) == (
        "inputs 'q.txt' and input 'q.txt.gz' would write their results to the same place "
        "('q.txt'); rename one of them or map them separately"
    )
    with pytest.raises(ValidationError) as info:
        map("any", [tmp_path / "x.txt", tmp_path / "x" / "y.txt"], progress=False)
    assert str(info.value) == (
        "inputs 'x.txt' and the folder 'x' would write their results to the same place "
        "('x'); rename one of them or map them separately"
    )


def test_timeout_says_why_jobs_may_be_stuck(client, store, tmp_path):
    """More jobs than the cluster has slots, still queued at the timeout: the error names
    the service's Pending jobs (five, and how many more) and its deployment status."""
    reason = client.deployment_status("a-slow")["reason"]
    slots = int(re.search(r"of (\d+) job slots", reason)[1])
    files = []
    for i in range(slots + 7):
        f = tmp_path / f"queued{i:02d}.txt"
        f.write_text("z")
        files.append(f)
    jobs = submit("a-slow", files, client=client, store=store, via="job")  # recorded when posted
    try:
        with pytest.raises(TimeoutError) as info:
            wait(jobs, timeout=0)
        names = set(client.list_jobs("a-slow"))
    finally:
        client.delete_jobs("a-slow", all=True)
    msg = str(info.value)
    m = re.search(
        r"; jobs of 'a-slow' still Pending: ([^;]*?) and (\d+) more; deployment: "
        r"ready \((\d+) running, (\d+) pending; \d+ of (\d+) job slots",
        msg,
    )
    assert m, msg
    shown = m[1].split(", ")
    assert len(shown) == 5 and set(shown) <= names and int(m[5]) == slots
    assert int(m[2]) + 5 >= int(m[4]) >= 7  # the count read a moment later: no more pending


def test_outputs_are_taken_when_the_job_record_is_gone(client, store, cluster, tmp_path):
    """A job whose record was deleted before wait() saw it end: its outputs (named after
    the input) are taken once they stayed unchanged for ``settle`` s, with a warning."""
    f = tmp_path / "orphan.txt"
    f.write_text("no record")
    jobs = submit("a-echo", [f], client=client, store=store, via="job")
    cluster.wait_idle("a-echo")
    client.delete_jobs("a-echo")  # the succeeded ones: this job's record
    with pytest.warns(UserWarning) as caught:
        wait(jobs, timeout=30, settle=3.5, download_to=tmp_path / "out")
    assert jobs[0].status == "Succeeded" and jobs[0].job_name is None
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["orphan.out"]
    assert (tmp_path / "out" / "orphan.out").read_text() == "NO RECORD"
    assert [str(w.message) for w in caught if w.category is UserWarning] == [
        "service 'a-echo': no job record found for input 'orphan.txt'; taking its outputs "
        "after they stayed unchanged for 3.5 s"
    ]


def test_outputs_of_a_job_whose_log_names_none(client, store, cluster):
    """OSCAR's supervisor at log level CRITICAL logs no download or upload lines (the
    embedded cluster always does, so the tracker is given such a log): the outputs that
    carry the input's stem are its outputs; a lone job's fixed-name outputs are the new
    objects of its output paths, taken with a warning naming them."""
    from oscar_elyra.invoke.jobs import _Tracker

    run_id = new_run_id("nolog")
    out_path = f"a-echo/nolog-{run_id}"

    def job(n: int) -> Job:
        return Job("a-echo", f"in{n}.txt", f"s3://a-echo/in/{run_id}-{n}-in{n}.txt",
                   job_name=f"job-{n}", run_id=run_id, index=n, output_paths=[out_path],
                   submitted_at=time.time(), _client=client, _store=store)  # fmt: skip

    tracker = _Tracker("a-echo", client, store)
    named, fixed = job(1), job(2)
    for key in (f"{run_id}-1-in1.out", f"sub/{run_id}-1-in1.extra"):
        store.put_bytes(b"named", f"s3://{out_path}/{key}")
    log = "processing in1.txt\n"  # the script's own output only
    assert tracker.attribute(named, log) == sorted(
        [f"s3://{out_path}/{run_id}-1-in1.out", f"s3://{out_path}/sub/{run_id}-1-in1.extra"]
    )
    store.put_bytes(b"fixed", f"s3://{out_path}/output.png")
    # a folder made as the MinIO console makes one (an empty object whose key ends in "/")
    endpoint = urlparse(cluster.s3_endpoint)
    console = Minio(endpoint.netloc, access_key=cluster.s3_access_key,
                    secret_key=cluster.s3_secret_key, secure=endpoint.scheme == "https",
                    cert_check=False)  # fmt: skip
    console.put_object("a-echo", f"{out_path[len('a-echo/') :]}/a-folder/", io.BytesIO(b""), 0)
    with pytest.warns(UserWarning) as caught:
        assert tracker.attribute(fixed, "processing in2.txt\n") == [f"s3://{out_path}/output.png"]
    assert [str(w.message) for w in caught] == [
        "service 'a-echo': outputs of job job-2 are not named in its log; taking the new "
        f"objects of its output paths (s3://{out_path}/output.png)"
    ]


def test_a_job_is_matched_by_the_key_it_downloaded():
    """A job's log may mention other inputs (a script listing what it was given): the job
    belongs to the input whose key the supervisor says it downloaded."""
    from oscar_elyra.invoke.jobs import _Tracker

    run_id = new_run_id("match")
    first, second = (
        Job("svc", f"{n}.txt", f"s3://svc/in/{run_id}-{i}-{n}.txt", run_id=run_id, index=i)
        for i, n in ((1, "a"), (2, "b"))
    )
    log = (
        f"processing, after {run_id}-1-a.txt\n"
        "2026-01-01 00:00:00,000 - supervisor - INFO - Downloading item from bucket 'svc' "
        f"with key 'in/{run_id}-2-b.txt'\n"
    )
    pending = [first, second]
    by_uri, by_stem = {j.input_uri: j for j in pending}, {j.stem: j for j in pending}
    assert _Tracker("svc", None, None)._match(log, by_uri, by_stem) is second
    assert _Tracker("svc", None, None)._match("no supervisor lines", by_uri, by_stem) is None


def test_wait_reads_each_job_log_once(client, store, tmp_path, monkeypatch):
    """The log of a job of another submission, ended while wait() follows its own, is read
    once (it matches none of its inputs), like the log of its own job."""
    client.apply_service(_svc("a-naps", 'sleep "$(cat "$INPUT_FILE_PATH")"\n' + ECHO))
    mine, theirs = tmp_path / "mine.txt", tmp_path / "theirs.txt"
    mine.write_text("1.5")
    theirs.write_text("0")
    reads = []
    get_job_log = client.get_job_log

    def counted(service, name, **kw):
        reads.append(name)
        return get_job_log(service, name, **kw)

    submit("a-naps", [theirs], client=client, store=store, via="job")  # ends first
    jobs = submit("a-naps", [mine], client=client, store=store, via="job")
    monkeypatch.setattr(client, "get_job_log", counted)
    wait(jobs, timeout=60, download_to=tmp_path / "out")
    assert (tmp_path / "out" / "mine.out").read_text() == "1.5"
    assert len(set(client.list_jobs("a-naps"))) == 2
    assert sorted(Counter(reads).values()) == [1, 1], reads


def test_map_records_a_run_in_which_nothing_could_run(client, tmp_path):
    """Inputs that are all missing: nothing is sent, and the run record still says so."""
    out = tmp_path / "out"
    res = map("a-echo", [tmp_path / "gone.txt"], output_dir=out, client=client, progress=False)
    assert res.counts() == {"failed": 1}
    saved = json.loads((out / ".oscar-elyra-map.json").read_text())
    assert [(r["status"], r["error"]) for r in saved] == [
        ("failed", f"input file {str(tmp_path / 'gone.txt')!r} does not exist")
    ]


def test_map_moves_files_through_the_store_it_is_given(client, store, tmp_path):
    """map(store=...) uploads the inputs and downloads the outputs through that store (here
    one reaching the cluster's S3 through a real proxy that counts requests), not through
    one of its own built from the client."""
    proxy = S3Proxy(store.endpoint)
    try:
        via_proxy = store_for(client, endpoint=proxy.url, progress=False)
        src = tmp_path / "in"
        src.mkdir()
        for i in range(3):
            (src / f"p{i}.txt").write_text(f"proxied {i}")
        res = map("a-echo", src, output_dir=tmp_path / "out", client=client, store=via_proxy,
                  progress=False, timeout=120)  # fmt: skip
    finally:
        proxy.close()
    assert res.counts() == {"ok": 3}
    assert [(tmp_path / "out" / f"p{i}.out").read_text() for i in range(3)] == [
        f"PROXIED {i}" for i in range(3)
    ]
    # staged inputs and their outputs are keyed <run id>-<n>-<name>
    put = sorted(k.rsplit("-", 1)[-1] for (m, k) in proxy.hits if m == "PUT")
    got = sorted(k.rsplit("-", 1)[-1] for (m, k) in proxy.hits if m == "GET")
    assert put == ["p0.txt", "p1.txt", "p2.txt"]
    assert got == ["p0.out", "p1.out", "p2.out"]
