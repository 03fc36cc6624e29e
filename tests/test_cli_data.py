"""CLI `run SERVICE`, `job`, `map`, `put`, `get`, `ls` against the embedded cluster."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from oscar_elyra.cli import main


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("cli-data")
    e: dict = {k: None for k in os.environ if k.startswith("OSCAR_")}
    e.update(OSCAR_CLI_CONFIG=str(tmp / "none.yaml"), OSCAR_ELYRA_DATA_DIR=str(tmp))
    e.update(XDG_CACHE_HOME=str(tmp / "cache"))  # where `job` records its submissions
    e.update(cluster.env())
    return e


@pytest.fixture(scope="module")
def secrets(cluster, client) -> list[str]:
    return [
        cluster.password,
        client.get_service("grayify")["token"],
        client.get_service("cowsay")["token"],
        client.minio_provider()["secret_key"],
    ]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imgs")
    for i in range(3):
        Image.new("RGB", (8, 8), (50 * i, 100, 10)).save(d / f"img{i}.png")
    return d


def cli(env: dict, *args: str, code: int = 0, secrets: list[str] | None = None, **kw):
    r = CliRunner(mix_stderr=False).invoke(main, list(args), env=env, catch_exceptions=True, **kw)
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    for s in secrets or []:
        assert s not in r.stdout + r.stderr
    return r


def test_run_text_and_json(env, secrets):
    r = cli(env, "run", "cowsay", "-i", "héllo ✓", secrets=secrets)
    assert "héllo ✓" in r.stdout and "(oo)" in r.stdout
    r = cli(env, "--json", "run", "cowsay", "-i", '{"message": "json-moo"}', secrets=secrets)
    doc = json.loads(r.stdout)
    assert doc["kind"] == "text" and "json-moo" in doc["text"]


def test_run_file_output(env, images, tmp_path, secrets):
    out = tmp_path / "g.png"
    r = cli(env, "run", "grayify", "-f", str(images / "img1.png"), "-o", str(out), secrets=secrets)
    assert r.stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.mode == "L"
    seven = Path(__file__).parent.parent / "pipelines" / "data" / "digits" / "digit-7-0007.png"
    r = cli(env, "run", "digits", "-f", str(seven))
    assert json.loads(r.stdout)["digit"] == 7  # text-like output printed: the right digit
    # binary without -o goes to a pipe (CliRunner's stdout is not a terminal)
    r = CliRunner(mix_stderr=False).invoke(
        main, ["run", "grayify", "-f", str(images / "img1.png")], env=env
    )
    assert r.exit_code == 0 and r.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_bad_usage(env, tmp_path):
    assert "exactly one input" in cli(env, "run", "cowsay", code=2).stderr
    r = cli(env, "run", "cowsay", "-i", "x", "-f", __file__, code=2)
    assert "give exactly one input: -i TEXT or -f FILE" in r.stderr
    r = cli(env, "run", "cowsay", "-f", str(tmp_path / "missing.txt"), code=2)
    assert "missing.txt' does not exist" in r.stderr
    assert "the input text is empty" in cli(env, "run", "cowsay", "-i", "", code=2).stderr
    r = cli(env, "run", "no-such-service", "-i", "x", code=1)
    assert "Error:" in r.stderr and "no-such-service" in r.stderr.split("Error:", 1)[1]


def test_put_ls_get_roundtrip(env, images, tmp_path, secrets):
    prefix = f"cowsay/cli-{uuid.uuid4().hex[:6]}"
    r = cli(env, "put", str(images), f"s3://{prefix}/imgs", secrets=secrets)
    assert r.stdout.count("s3://") == 3
    cli(env, "put", str(images / "img0.png"), f"minio.default:{prefix}/single/", secrets=secrets)
    r = cli(env, "--json", "ls", prefix, "-r", secrets=secrets)
    keys = sorted(o["key"] for o in json.loads(r.stdout))
    assert keys == [f"{prefix.split('/', 1)[1]}/imgs/img{i}.png" for i in range(3)] + [
        f"{prefix.split('/', 1)[1]}/single/img0.png"
    ]
    r = cli(env, "ls", prefix)  # top level: two "directories"
    assert r.stdout.count("DIR") == 2
    assert "cowsay" in cli(env, "ls").stdout.split()
    cli(env, "get", f"{prefix}/imgs/", str(tmp_path / "back"), secrets=secrets)
    for i in range(3):
        assert (tmp_path / "back" / f"img{i}.png").read_bytes() == (
            images / f"img{i}.png"
        ).read_bytes()
    cli(env, "get", f"{prefix}/single/img0.png", str(tmp_path / "one.png"))
    assert (tmp_path / "one.png").read_bytes() == (images / "img0.png").read_bytes()
    # a LOCAL ending in "/" is a directory, created, and the object keeps its name
    cli(env, "get", f"{prefix}/single/img0.png", str(tmp_path / "newdir") + "/")
    assert (tmp_path / "newdir" / "img0.png").read_bytes() == (images / "img0.png").read_bytes()
    r = cli(env, "get", f"{prefix}/nothing-here", str(tmp_path / "x"), code=1)
    assert "not found" in r.stderr
    r = cli(env, "put", str(images / "img0.png"), "bad bucket/x", code=2)
    assert "invalid bucket name 'bad bucket'" in r.stderr


def test_job_wait_download(env, images, tmp_path, secrets):
    out = tmp_path / "jobs"
    r = cli(
        env,
        "--json",
        "job",
        "grayify",
        str(images / "img0.png"),
        str(images / "img2.png"),
        "--wait",
        "-o",
        str(out),
        secrets=secrets,
    )
    jobs = json.loads(r.stdout)
    assert [j["status"] for j in jobs] == ["Succeeded", "Succeeded"]
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img2.png"]
    r = cli(env, "job", "grayify", str(images / "img1.png"))  # no wait: submitted only
    assert "Pending" in r.stdout and "s3://grayify/in/" in r.stdout


def test_map_and_resume(env, images, tmp_path, secrets):
    out, rec = tmp_path / "mapped", tmp_path / "rec.json"
    r = cli(
        env,
        "map",
        "grayify",
        str(images),
        "-o",
        str(out),
        "-j",
        "2",
        "--record",
        str(rec),
        secrets=secrets,
    )
    assert "ok: 3" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    assert [x["status"] for x in json.loads(rec.read_text())] == ["ok"] * 3
    r = cli(
        env, "--json", "map", "grayify", str(images), "-o", str(out), "--sync", "--record", str(rec)
    )
    assert [x["status"] for x in json.loads(r.stdout)] == ["skipped"] * 3
    r = cli(env, "map", "grayify", str(images), "-o", str(tmp_path / "s"), "--sync", "-j", "3")
    assert "ok: 3" in r.stdout


def test_map_via(env, images, client, tmp_path):
    """--via bucket uploads each input into the input path; --via job stages it beside
    (in .oscar-elyra-job/) and starts the job with POST /job; both give the outputs."""

    def keys(prefix):
        r = cli(env, "--json", "ls", prefix, "-r")
        return [o["key"] for o in json.loads(r.stdout)]

    before_in, before_staged = keys("grayify/in"), keys("grayify/.oscar-elyra-job")
    for via in ("bucket", "job"):
        out = tmp_path / via
        r = cli(env, "map", "grayify", str(images), "-o", str(out), "--via", via)
        assert "ok: 3" in r.stdout
        assert sorted(p.name for p in out.glob("img*")) == ["img0.png", "img1.png", "img2.png"]
        if via == "bucket":
            assert len(keys("grayify/in")) == len(before_in) + 3
            assert keys("grayify/.oscar-elyra-job") == before_staged
    assert len(keys("grayify/.oscar-elyra-job")) == len(before_staged) + 3
    assert len(keys("grayify/in")) == len(before_in) + 3
    r = cli(env, "map", "grayify", str(images), "-o", str(out), "--sync", "--via", "job", code=2)
    assert "--via is for async jobs" in r.stderr
    r = cli(env, "map", "grayify", str(images), "-o", str(out), "--via", "post", code=2)
    assert "'post' is not one of 'bucket', 'job'" in r.stderr


def test_map_failure_exit_code(env, client, tmp_path):
    client.apply_service(
        {
            "name": "cli-fail",
            "image": "local",
            "script": "echo failing >&2; exit 1",
            "input": [{"storage_provider": "minio.default", "path": "cli-fail/in"}],
            "output": [{"storage_provider": "minio.default", "path": "cli-fail/out"}],
        }
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    r = cli(
        env,
        "map",
        "cli-fail",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "o"),
        "--retries",
        "0",
        "--timeout",
        "60",
        code=1,
    )
    assert "failed" in r.stdout and "1 of 1 inputs failed" in r.stderr
    r = cli(env, "job", "cli-fail", str(tmp_path / "in" / "a.txt"), "--wait", code=1)
    assert "failing" in r.stderr


def _on_a_terminal(cmd: list[str], env: dict) -> tuple[int, str]:
    """Run ``cmd`` with its stderr on a pseudo-terminal (as in a shell); (exit code, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 x 120
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_and_quiet(env, images, tmp_path, secrets):
    """On a terminal a transfer shows a bar naming the file; -q shows none."""
    exe = shutil.which("oscar-elyra", path=os.path.dirname(sys.executable))
    penv = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    code, shown = _on_a_terminal([exe, "put", str(big), "cowsay/progress/"], penv)
    assert code == 0, shown
    assert "upload big.bin" in shown and "3.00M" in shown, shown
    code, shown = _on_a_terminal([exe, "-q", "get", "cowsay/progress/big.bin", str(tmp_path)], penv)
    assert code == 0, shown
    assert "download" not in shown and "%" not in shown, shown
    assert (tmp_path / "big.bin").read_bytes() == big.read_bytes()
    code, shown = _on_a_terminal(
        [exe, "get", "cowsay/progress/big.bin", str(tmp_path / "b2")], penv
    )
    assert code == 0 and "download b2" in shown, shown
    for s in secrets:
        assert s not in shown


def test_subprocess_exit_codes_and_secrets(env, images, tmp_path, secrets, caplog):
    """The real entry point: exit codes, nothing secret on stdout/stderr, even with -vv."""
    exe = shutil.which("oscar-elyra", path=os.path.dirname(sys.executable))
    assert exe
    penv = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    caplog.set_level(logging.DEBUG)
    p = subprocess.run(
        [exe, "-vv", "put", str(images / "img0.png"), "cowsay/sub/"],
        env=penv,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    p2 = subprocess.run(
        [
            exe,
            "-vv",
            "run",
            "grayify",
            "-f",
            str(images / "img0.png"),
            "-o",
            str(tmp_path / "x.png"),
        ],
        env=penv,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p2.returncode == 0, p2.stderr
    p3 = subprocess.run(
        [exe, "get", "cowsay/sub/nope.png", str(tmp_path)],
        env=penv,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p3.returncode == 1 and "Error:" in p3.stderr
    for text in (p.stdout, p.stderr, p2.stdout, p2.stderr, p3.stderr, caplog.text):
        for s in secrets:
            assert s not in text
