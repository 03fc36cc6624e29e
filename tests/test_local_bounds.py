"""Bounded jobs and crash safety of the embedded cluster (issue 9, cases 6 and 7).

- a hung script is stopped by its time limit while another service's jobs still run, and
  a freed slot goes to the service with the fewest running jobs;
- deleting a job kills its process group; a sync client that disconnects stops its script;
- ``kill -9`` of the server mid-job, then a new start: every job's script runs exactly once
  (a script still running is adopted, one that ended meanwhile is completed), a sync
  script left behind is ended, temp dirs are removed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from test_local_async import _deploy, _jobs, _s3, service_token  # the same helpers
from test_local_triggers import _upload_while_down

from oscar_elyra.discovery import pid_alive
from oscar_elyra.local import LocalCluster


def _put(cluster, name, key, data=b"x"):
    _s3(cluster).put_object(name, f"in/{key}", io.BytesIO(data), len(data))


def _records(cluster, name) -> dict[str, dict]:
    """The job records on disk, by input key (the cluster's own files; damaged ones left out)."""
    out = {}
    for p in (cluster.data_dir / "jobs" / name).glob("*.json"):
        try:
            rec = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(rec, dict) and "status" in rec:
            out[rec.get("key", rec["name"]).rsplit("/", 1)[-1]] = rec
    return out


def _log(cluster, name, job) -> str:
    r = requests.get(
        f"{cluster.endpoint}/system/logs/{name}/{job}",
        auth=(cluster.user, cluster.password),
        timeout=30,
    )
    return r.text


def until(what, check, timeout=60.0):
    """Wait for ``check()`` to return something truthy (polling an event, with a deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.fixture(scope="module")
def two_slots(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("bounds") / "data", max_jobs=2)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_time_limit_frees_slots_for_another_service(two_slots, tmp_path):
    c = two_slots
    hang, quick = f"hang-{uuid.uuid4().hex[:6]}", f"quick-{uuid.uuid4().hex[:6]}"
    pids = tmp_path / "pids"
    _deploy(
        c,
        hang,
        f'echo $$ >> "{pids}"; sleep 600 & wait',
        annotations={"oscar-elyra/job-timeout": "6"},
    )
    _deploy(c, quick, 'echo done > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"')
    for k in range(3):
        _put(c, hang, f"h{k}")
    until("two hung jobs running", lambda: len(_pids(pids)) == 2)
    _put(c, quick, "q0")
    _put(c, quick, "q1")
    until("quick jobs queued", lambda: len(_records(c, quick)) == 2)
    recs = _records(c, hang)
    assert sorted(r["status"] for r in recs.values()) == ["Pending", "Running", "Running"], (
        "the quick jobs must be queued while both slots are held"
    )
    done = until(
        "quick jobs done",
        lambda: (r := _records(c, quick)) and all(x["status"] == "Succeeded" for x in r.values()),
    )
    assert done
    recs, quicks = _records(c, hang), _records(c, quick)
    for key in ("h0", "h1"):
        assert recs[key]["status"] == "Failed"
        assert "time limit of 6 s" in _log(c, hang, recs[key]["name"])
    # the first freed slot went to the service with no running job, not to h2 queued earlier
    assert min(q["start_time"] for q in quicks.values()) < recs["h2"].get("start_time", 1e18)
    first_two = _pids(pids)[:2]
    until("hung scripts killed", lambda: not any(pid_alive(p) for p in first_two))
    # deleting a running job kills its process group (the script and its sleep)
    until("h2 running", lambda: len(_pids(pids)) == 3)
    job = _records(c, hang)["h2"]["name"]
    r = requests.delete(
        f"{c.endpoint}/system/logs/{hang}/{job}", auth=(c.user, c.password), timeout=30
    )
    assert r.status_code == 204
    until("deleted job's script killed", lambda: not pid_alive(_pids(pids)[2]), timeout=10)


def test_a_disconnecting_sync_client_stops_its_script(two_slots, tmp_path):
    c = two_slots
    name = f"synchang-{uuid.uuid4().hex[:6]}"
    pidfile = tmp_path / "pid"
    _deploy(c, name, f'echo $$ > "{pidfile}"; sleep 600 & wait')
    token = service_token(c, name)
    body = base64.b64encode(b"hi")
    host, port = c.endpoint.split("://", 1)[1].split(":")
    # a client that gives up once the script runs: it closes its connection
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            f"POST /run/{name} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        pid = until("script started", lambda: _pids(pidfile) and _pids(pidfile)[0])
    until("script stopped after the client left", lambda: not pid_alive(pid), timeout=20)


def test_kill_9_mid_job_then_restart_runs_each_script_once(tmp_path):
    data = tmp_path / "data"
    ledger, gates = tmp_path / "ledger", tmp_path / "gates"
    gates.mkdir()
    name, slow = "crashy", "crashy-sync"
    script = (
        'b=$(basename "$INPUT_FILE_PATH")\n'
        f'echo "start $JOB_UUID" >> "{ledger}"\n'
        f'while [ ! -e "{gates}/$b" ]; do sleep 0.05; done\n'
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$b.out"\n'
        f'echo "end $JOB_UUID" >> "{ledger}"\n'
    )
    sync_pid = tmp_path / "sync.pid"
    first = LocalCluster(data, max_jobs=4)
    first.start()
    try:
        _deploy(first, name, script)
        _deploy(first, slow, f'echo $$ > "{sync_pid}"; sleep 600 & wait')
        for k in "abc":
            _put(first, name, k, k.encode() * 3)
        until(
            "three jobs started", lambda: ledger.exists() and ledger.read_text().count("start") == 3
        )
        token = service_token(first, slow)
        threading.Thread(
            target=lambda: _quiet_post(f"{first.endpoint}/run/{slow}", token), daemon=True
        ).start()
        orphan_sync = until("sync script started", lambda: _pids(sync_pid) and _pids(sync_pid)[0])
        _kill_9(first)
        (gates / "a").touch()  # job a ends while no cluster runs
        until("job a ended", lambda: ledger.read_text().count("end") == 1)
    finally:
        first.process = None  # it is dead; what it left is the next start's business
    second = LocalCluster(data, max_jobs=4)
    second.start()
    try:
        until("the orphaned sync script ended", lambda: not pid_alive(orphan_sync), timeout=20)
        recs = _records(second, name)
        assert recs["b"]["status"] == recs["c"]["status"] == "Running"  # adopted, not run again
        (gates / "b").touch()
        (gates / "c").touch()
        until(
            "all jobs done",
            lambda: [r["status"] for r in _records(second, name).values()] == ["Succeeded"] * 3,
        )
        lines = ledger.read_text().split("\n")
        starts = [x.split()[1] for x in lines if x.startswith("start")]
        ends = [x.split()[1] for x in lines if x.startswith("end")]
        assert len(starts) == 3 and sorted(starts) == sorted(set(starts)) == sorted(ends)
        store = _s3(second)
        for k in "abc":
            assert store.get_object(name, f"out/{k}.out").read() == k.encode() * 3
        until("temp dirs cleaned", lambda: not any((data / "tmp").iterdir()))
    finally:
        second.stop()


def test_adopted_jobs_keep_their_time_limit_and_leave_nothing_running(tmp_path):
    """After kill -9 of the server, the restarted cluster adopts the running scripts: one
    past its service's time limit is killed and Failed; one that ends leaves no process of
    its group behind (the background sleep it started); one whose script died while no
    cluster ran is run again; a queued one runs."""
    data, gate = tmp_path / "data", tmp_path / "gate"
    hung_pid, left_pid, victim_pids = tmp_path / "hung.pid", tmp_path / "left.pid", tmp_path / "v"
    hang, leaver, victim = "adopt-hang", "adopt-leaver", "adopt-victim"
    first = LocalCluster(data, max_jobs=3)
    first.start()
    try:
        _deploy(
            first,
            hang,
            f'echo $$ > "{hung_pid}"; sleep 600 & wait',
            annotations={"oscar-elyra/job-timeout": "3"},
        )
        _deploy(
            first,
            leaver,
            f'sleep 600 & echo $! > "{left_pid}"\n'
            f'while [ ! -e "{gate}" ]; do sleep 0.05; done\n'
            'echo done > "$TMP_OUTPUT_DIR/done.txt"\n',
        )
        _deploy(
            first,
            victim,
            f'echo $$ >> "{victim_pids}"\n'
            f'while [ ! -e "{gate}" ]; do sleep 0.05; done\n'
            'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"\n',
        )
        _put(first, hang, "h")
        _put(first, leaver, "l")
        _put(first, victim, "v1", b"one")
        until("three scripts started", lambda: _pids(hung_pid) and _pids(left_pid))
        until("the victim started", lambda: _pids(victim_pids))
        _put(first, victim, "v2", b"two")
        until("v2 queued", lambda: "v2" in _records(first, victim))
        assert _records(first, victim)["v2"]["status"] == "Pending"
        _kill_9(first)
        os.killpg(os.getpgid(_pids(victim_pids)[0]), signal.SIGKILL)  # v1 dies meanwhile
        # and an upload whose event SeaweedFS loses: the restart lists the input paths once
        _upload_while_down(first, victim, "in/v3", flush=False)
    finally:
        first.process = None
    second = LocalCluster(data, max_jobs=3)
    second.start()
    try:
        (hung,) = until(
            "the hung job failed",
            lambda: [r for r in _records(second, hang).values() if r["status"] == "Failed"],
            timeout=30,
        )
        log_text = _log(second, hang, hung["name"])
        assert "Adopted the running script (process group" in log_text
        assert "time limit of 3 s" in log_text
        until("the hung script killed", lambda: not pid_alive(_pids(hung_pid)[0]), timeout=10)
        gate.touch()
        until(
            "the leaver job succeeded",
            lambda: [r["status"] for r in _records(second, leaver).values()] == ["Succeeded"],
        )
        assert _s3(second).get_object(leaver, "out/done.txt").read() == b"done\n"
        until("its background sleep killed", lambda: not pid_alive(_pids(left_pid)[0]), timeout=10)
        until(
            "the victim's jobs succeeded",
            lambda: (
                (r := _records(second, victim))
                and [x["status"] for x in r.values()] == ["Succeeded"] * 3
                and r
            ),
        )
        assert len(_pids(victim_pids)) == 4  # v1 twice, v2 and v3 once
        # v1's log: the note of its re-run, then that run's lines only
        v1_log = _log(second, victim, _records(second, victim)["v1"]["name"])
        assert "the cluster stopped while this job ran; running it again" in v1_log.split("\n")[0]
        assert v1_log.count("Downloading item from bucket") == 1, v1_log
        store = _s3(second)
        assert store.get_object(victim, "out/v1.out").read() == b"one"
        assert store.get_object(victim, "out/v2.out").read() == b"two"
        assert store.get_object(victim, "out/v3.out").read() == b"down"
    finally:
        second.stop()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_storage_death_stops_the_cluster_after_the_grace_and_marks_the_position(tmp_path):
    """SeaweedFS dies under a running job: the cluster stops by itself, killing the job after
    its grace (10 s), keeps the job on disk to run again, and marks the event position not
    clean (the next start lists the input paths)."""
    data, pid_file = tmp_path / "data", tmp_path / "hung.pid"
    c = LocalCluster(data, max_jobs=1)
    c.start()
    try:
        _deploy(c, "stuck", f'echo $$ > "{pid_file}"; sleep 600 & wait')
        _put(c, "stuck", "s")
        until("the script started", lambda: _pids(pid_file))
        server = c.process
        weed = [
            p
            for p in _children(server.pid)
            if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].endswith(b"weed")
        ]
        assert weed
        for p in weed:  # SeaweedFS and its event tail (which may end first by itself)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.wait(25)  # the grace is 10 s; without it, it would wait for the script forever
        until("the script killed", lambda: not pid_alive(_pids(pid_file)[0]), timeout=10)
        position = json.loads((data / "watch" / "position.json").read_text())
        assert position["clean"] is False
        assert _records(c, "stuck")["s"]["status"] in ("Running", "Pending")
    finally:
        c.stop()


def _kill_9(cluster: LocalCluster) -> None:
    """``kill -9`` of the server alone; returns once its SeaweedFS child is gone too."""
    server = cluster.process
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    until("SeaweedFS gone with its parent", lambda: not _group_alive(server.pid), timeout=30)


def _quiet_post(url: str, token: str) -> None:
    try:
        requests.post(
            url,
            data=base64.b64encode(b"x"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=(5, 600),
        )
    except requests.RequestException:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def test_service_deleted_while_its_jobs_wait_for_a_slot(two_slots, tmp_path):
    """Both slots held; two jobs of another service queued; that service deleted: its
    scripts never run, its records are gone, and the workers go on with other jobs."""
    c = two_slots
    tag = uuid.uuid4().hex[:6]
    block, victim, later = f"block-{tag}", f"victim-{tag}", f"later-{tag}"
    pids, marker = tmp_path / "pids", tmp_path / "victim-ran"
    _deploy(c, block, f'echo $$ >> "{pids}"; sleep 600 & wait')
    _deploy(c, victim, f'touch "{marker}"')
    _deploy(c, later, 'echo done > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"')
    _put(c, block, "b0")
    _put(c, block, "b1")
    until("both slots held", lambda: len(_pids(pids)) == 2)
    _put(c, victim, "v0")
    _put(c, victim, "v1")
    until(
        "victim jobs queued",
        lambda: [r["status"] for r in _records(c, victim).values()] == ["Pending", "Pending"],
    )
    auth = (c.user, c.password)
    r = requests.delete(f"{c.endpoint}/system/services/{victim}", auth=auth, timeout=30)
    assert r.status_code == 204, r.text
    r = requests.delete(f"{c.endpoint}/system/logs/{block}?all=true", auth=auth, timeout=30)
    assert r.status_code == 204, r.text
    _put(c, later, "l0")
    c.wait_idle()
    assert [x["status"] for x in _records(c, later).values()] == ["Succeeded"]
    assert not marker.exists(), "a deleted service's queued job ran"
    assert not (c.data_dir / "jobs" / victim).exists() or _records(c, victim) == {}
    r = requests.get(f"{c.endpoint}/system/logs/{victim}", auth=auth, timeout=30)
    assert r.status_code == 404


def test_damaged_records_on_load_are_skipped(tmp_path):
    """Job records cut short or not records at all, and a torn last line of the processed-
    object records: the cluster starts, lists the good jobs, reprocesses no object, and
    records new objects as before (also across a further restart)."""
    data = tmp_path / "data"
    name = "recs"
    c = LocalCluster(data, max_jobs=2)
    c.start()
    try:
        _deploy(c, name, 'echo ok > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"')
        for k in "abc":
            _put(c, name, k)
        c.wait_idle(name)
        recs = _records(c, name)
        assert {k: r["status"] for k, r in recs.items()} == dict.fromkeys("abc", "Succeeded")
        auth = (c.user, c.password)
        r = requests.delete(
            f"{c.endpoint}/system/logs/{name}/{recs['c']['name']}", auth=auth, timeout=30
        )
        assert r.status_code == 204  # c is now remembered by the processed-object records only
        c.stop()
        jobs_dir = data / "jobs" / name
        (jobs_dir / f"{recs['a']['name']}.json").write_text('{"name": "' + recs["a"]["name"])
        (jobs_dir / "not-a-record.json").write_text("[]")
        (jobs_dir / "half-a-record.json").write_text('{"name": "x", "service": "recs"}')
        with open(data / "watch" / f"{name}.jsonl", "a") as fh:
            fh.write('"recs/in/torn')  # a torn last line, no newline
        c.start()
        c.wait_idle(name)
        assert set(_jobs(c, name)) == {recs["b"]["name"]}  # no object reprocessed
        _put(c, name, "d")
        c.wait_idle(name)
        d = _records(c, name)["d"]
        assert d["status"] == "Succeeded"
        r = requests.delete(f"{c.endpoint}/system/logs/{name}/{d['name']}", auth=auth, timeout=30)
        assert r.status_code == 204  # d too is now remembered by the processed records only
        c.stop()
        c.start()
        c.wait_idle(name)
        assert set(_jobs(c, name)) == {recs["b"]["name"]}  # neither c nor d reprocessed
        log_text = c.log_file.read_text()
        assert log_text.count("skipped a damaged job record") >= 3
        assert "skipped a damaged line of" in log_text
    finally:
        c.stop()


def test_restart_adopts_a_post_job_deleted_meanwhile_and_a_job_whose_service_is_gone(tmp_path):
    """After kill -9 of the server: a POST /job job, adopted by the restart and then deleted
    by its user, leaves no file and no internal error; a running job whose service's
    definition is gone on restart fails with a note in its log."""
    data, pids = tmp_path / "data", {"posted": tmp_path / "p.pid", "orphan": tmp_path / "o.pid"}
    posted, orphan = "adopt-posted", "adopt-orphan"
    first = LocalCluster(data, max_jobs=2)
    first.start()
    try:
        _deploy(first, posted, f'echo $$ > "{pids["posted"]}"; sleep 600 & wait')
        _deploy(first, orphan, f'echo $$ > "{pids["orphan"]}"; sleep 600 & wait')
        r = requests.post(
            f"{first.endpoint}/job/{posted}",
            data=base64.b64encode(b"posted input"),
            headers={"Authorization": f"Bearer {service_token(first, posted)}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        _put(first, orphan, "o")
        until("both scripts started", lambda: all(_pids(p) for p in pids.values()))
        _kill_9(first)
    finally:
        first.process = None
    (data / "services" / f"{orphan}.json").unlink()  # its definition lost while down
    second = LocalCluster(data, max_jobs=2)
    second.start()
    try:
        (rec,) = until(
            "the orphaned job failed",
            lambda: [r for r in _records(second, orphan).values() if r["status"] == "Failed"],
            timeout=30,
        )
        log_file = data / "jobs" / orphan / f"{rec['name']}.log"
        assert "[oscar-elyra] service was deleted while the job ran\n" in log_file.read_text()
        until("its script killed", lambda: not pid_alive(_pids(pids["orphan"])[0]), timeout=10)
        (job,) = [r["name"] for r in _records(second, posted).values()]
        assert _records(second, posted)[job]["status"] == "Running"  # adopted
        until(
            "adopted",
            lambda: "Adopted the running script" in _log(second, posted, job),
            timeout=30,
        )
        r = requests.delete(
            f"{second.endpoint}/system/logs/{posted}/{job}",
            auth=(second.user, second.password),
            timeout=30,
        )
        assert r.status_code == 204, r.text
        until("its script killed", lambda: not pid_alive(_pids(pids["posted"])[0]), timeout=10)
        second.wait_idle()
        assert sorted(p.name for p in (data / "jobs" / posted).iterdir()) == []
        # the server's log is flushed at each line, also by the server killed with -9
        log_text = second.log_file.read_text()
        assert log_text.count("OSCAR API on") == 2 and "failed in the cluster" not in log_text
    finally:
        second.stop()
    assert "failed in the cluster" not in second.log_file.read_text()
    assert sorted(p.name for p in (data / "jobs" / posted).iterdir()) == []
