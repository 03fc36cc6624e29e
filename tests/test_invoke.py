"""Sync invocation (``oscar_elyra.invoke.run``) against the embedded cluster."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from oscar_elyra.errors import NotFoundError, ServiceError, UnsafePathError, ValidationError
from oscar_elyra.invoke import Result, run
from oscar_elyra.invoke.sync import DECODE_CHUNK


@pytest.fixture(scope="module")
def client(client):
    """The module client, with this module's test services deployed."""
    cl = client
    for name, script in {
        # cat: the input back as the one output file
        "c-cat": 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/out.bin"',
        # several files, one in a subdirectory -> a zip answer
        "c-multi": textwrap.dedent(
            """\
            mkdir -p "$TMP_OUTPUT_DIR/sub"
            echo one > "$TMP_OUTPUT_DIR/a.txt"
            echo two > "$TMP_OUTPUT_DIR/sub/b.txt"
            cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/input.copy"
            """
        ),
        # no output file -> stdout
        "c-echo": 'echo "got: $(cat "$INPUT_FILE_PATH")"',
        "c-echo-n": "echo 12345678",
        # a single output that is a malicious zip
        "c-zipslip": textwrap.dedent(
            """\
            python3 -c '
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1], "w") as z:
                z.writestr("ok.txt", "fine")
                z.writestr("../../evil.txt", "gotcha")
            ' "$TMP_OUTPUT_DIR/evil.zip"
            """
        ),
        # a single output that is a zip holding a symlink to a file outside the output folder
        "c-zipsym": textwrap.dedent(
            """\
            python3 -c '
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1], "w") as z:
                z.writestr("ok.txt", "fine")
                link = zipfile.ZipInfo("passwd-link")
                link.external_attr = 0o120777 << 16
                z.writestr(link, "/etc/passwd")
            ' "$TMP_OUTPUT_DIR/links.zip"
            """
        ),
        # a zip whose members are named by the input (a JSON list)
        "c-zipnames": textwrap.dedent(
            """\
            python3 -c '
            import json, sys, zipfile
            with zipfile.ZipFile(sys.argv[2], "w") as z:
                for name in json.load(open(sys.argv[1])):
                    z.writestr(name, "content of " + name)
            ' "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/names.zip"
            """
        ),
        # a failing script: its output's tail comes back with the error
        "c-fail": 'echo "fail-marker-31" >&2; exit 4',
        # a single output that starts like a zip but is not one
        "c-zipbad": "printf 'PK\\003\\004 not really a zip archive' > \"$TMP_OUTPUT_DIR/bad.bin\"",
        # stdout of 9 MB that reads as base64 ("AAAA...") until its last line
        "c-notb64": 'python3 -c \'import sys; sys.stdout.write("A" * (9 << 20) + "!")\'',
    }.items():
        cl.apply_service({"name": name, "image": "local", "script": script})
    return cl


def png(path, color=(200, 30, 30), size=(16, 16)):
    Image.new("RGB", size, color).save(path)
    return path


def test_json_input_text_output(client):
    res = run("cowsay", {"message": "héllo wörld ✓"}, client=client)
    assert res.kind == "text" and "héllo wörld ✓" in res.text
    assert res.path is None and res.paths == [] and str(res) == res.text


def test_numeric_stdout_stays_text(client):
    # "12345678" is also valid base64; the trailing newline of stdout marks it as text
    res = run("c-echo-n", "abc", client=client)
    assert res.kind == "text" and res.text == "12345678\n"


def test_non_ascii_text_input(client):
    res = run("c-echo", "naïve café ✓ 日本", client=client)
    assert res.text.strip() == "got: naïve café ✓ 日本"
    assert res.bytes == res.text.encode("utf-8")


def test_binary_output_png(client, tmp_path):
    img = png(tmp_path / "cat.png")
    res = run("grayify", img, client=client)
    assert res.kind == "file" and res.path.suffix == ".png" and res.path.name == "cat.png"
    assert res._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(res.path) as out:
        assert out.mode == "L" and out.size == (16, 16)
    # explicit file target and directory target
    res2 = run("grayify", img, tmp_path / "o" / "gray.png", client=client)
    assert res2.path == tmp_path / "o" / "gray.png" and res2.path.read_bytes() == res.bytes
    (tmp_path / "d").mkdir()
    res3 = run("grayify", img, tmp_path / "d", client=client)
    assert res3.path == tmp_path / "d" / "cat.png"
    assert not [p for p in tmp_path.rglob("*.part")]


SEVEN = Path(__file__).parent.parent / "pipelines" / "data" / "digits" / "digit-7-0007.png"


def test_json_output(client, tmp_path):
    res = run("digits", SEVEN, client=client, output=f"{tmp_path / 'out'}/")
    doc = res.json()
    assert res.path.name == "digit-7-0007.json" and doc["input"]
    assert doc["digit"] == 7  # the labelled sample's digit
    probs = doc["probabilities"]
    assert len(probs) == 10 and max(range(10), key=probs.__getitem__) == 7
    assert "<table>" in res._repr_html_() and res._repr_png_() is None


def test_bytes_roundtrip_exact(client):
    # an answer kept in memory, and one past DECODE_CHUNK (spooled to a file as it comes)
    for size in (100_001, 3 * DECODE_CHUNK + 7):
        data = os.urandom(size) + b"\x00PK\x03\x04"
        res = run("c-cat", data, client=client)
        assert res.kind == "file" and res.bytes == data and res.path.suffix == ".bin"
        assert [p.name for p in res.path.parent.iterdir()] == [res.path.name]  # no temp left


def test_zip_output_unpacked(client, tmp_path):
    res = run("c-multi", "payload", tmp_path / "out", client=client)
    assert res.kind == "files"
    rel = sorted(p.relative_to(tmp_path / "out").as_posix() for p in res.paths)
    assert rel == ["a.txt", "input.copy", "sub/b.txt"]
    assert (tmp_path / "out" / "input.copy").read_text() == "payload"
    assert "3 files" in res._repr_html_()
    with pytest.raises(ValidationError):
        res.bytes  # noqa: B018
    kept = run("c-multi", "payload", tmp_path / "all.zip", client=client)
    assert kept.kind == "file" and zipfile.is_zipfile(kept.path)


def test_zip_slip_refused(client, tmp_path):
    dest = tmp_path / "deep" / "out"
    with pytest.raises(UnsafePathError, match="evil"):
        run("c-zipslip", "x", dest, client=client)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not dest.exists() or list(dest.rglob("*")) == []  # nothing half-extracted


def test_zip_symlink_member_refused(client, tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(UnsafePathError, match="refusing symlink member 'passwd-link'"):
        run("c-zipsym", "x", dest, client=client)
    assert not dest.exists() or list(dest.rglob("*")) == []  # nothing half-extracted


def test_corrupt_zip_answer(client, tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(ServiceError, match="the service answered a corrupt zip archive"):
        run("c-zipbad", "x", dest, client=client)
    assert not dest.exists() or list(dest.rglob("*")) == []
    assert list(tmp_path.iterdir()) in ([], [dest])  # no temp file left next to it


def test_bad_input(client, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        run("c-cat", tmp_path / "missing.bin", client=client)
    (tmp_path / "empty").write_bytes(b"")
    for empty in ["", b"", tmp_path / "empty"]:
        with pytest.raises(ValidationError, match="empty"):
            run("c-cat", empty, client=client)
    with pytest.raises(ValidationError, match="unsupported"):
        run("c-cat", 42, client=client)
    with pytest.raises(NotFoundError, match="no-such-svc"):
        run("no-such-svc", "x", client=client)


def test_result_json_error():
    res = Result("svc", "text", _text="not json")
    with pytest.raises(ValidationError, match="not JSON"):
        res.json()
    assert res._repr_html_() is None
    table = Result("svc", "text", _text=json.dumps([{"a": 1, "b": 2}, {"a": 3}]))
    assert "<th>a</th><th>b</th>" in table._repr_html_()


MEM_PROBE = textwrap.dedent(
    """\
    import hashlib, json, os, sys
    from pathlib import Path
    from oscar_elyra.invoke import run
    from oscar_elyra.session import connect
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    client = connect().client
    client.service_token("c-cat")
    def hwm():
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM"))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS: the baseline
    base = hwm()
    res = run("c-cat", src, out, client=client)
    peak = hwm()
    print(json.dumps({"delta": peak - base, "path": str(res.path)}))
    """
)


def test_streaming_memory_bounded(client, cluster_env, tmp_path):
    """A 96 MB input and its 96 MB answer stay far below 64 MB above baseline."""
    src = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with open(src, "wb") as fh:
        for _ in range(96):
            fh.write(chunk)
    out = tmp_path / "big.out"
    proc = subprocess.run(
        [sys.executable, "-c", MEM_PROBE, str(src), str(out)],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["delta"] < 64 * 1024 * 1024, info
    h = hashlib.sha256()
    with open(out, "rb") as fh:
        while b := fh.read(1 << 20):
            h.update(b)
    assert h.hexdigest() == hashlib.sha256(chunk * 96).hexdigest()


@pytest.mark.parametrize(
    ("members", "existing", "why"),
    [
        (["d/x.txt", "d//x.txt"], None, "member 'd//x.txt' appears twice"),
        (["./a.txt", "a.txt"], None, "member 'a.txt' appears twice"),
        (["d", "d/x.txt"], None, "'d' is a file and also the folder of 'd/x.txt'"),
        (["d/x.txt"], "file d", "'d' already exists in '{dest}' as a file"),
        (["x.txt"], "dir x.txt", "'x.txt' already exists in '{dest}' as a folder"),
    ],
)
def test_zip_members_that_clash_are_refused(client, tmp_path, members, existing, why):
    """Members that would land on the same file, or on a file where a folder is needed (or
    the reverse), are refused before anything is written."""
    dest = tmp_path / "out"
    dest.mkdir()
    if existing:
        kind, name = existing.split()
        (dest / name).mkdir() if kind == "dir" else (dest / name).write_text("mine")
    with pytest.raises(ServiceError) as info:
        run("c-zipnames", members, dest, client=client)
    assert str(info.value) == (
        "service 'c-zipnames' answered a zip whose members clash: " + why.format(dest=dest)
    )
    left = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert left == ([existing.split()[1]] if existing else [])
    res = run("c-zipnames", ["d/x.txt", "e.txt"], tmp_path / "ok", client=client)
    assert [p.read_text() for p in res.paths] == ["content of d/x.txt", "content of e.txt"]


def test_outputs_without_a_folder_are_removed_at_exit(client, cluster_env):
    """run() without an output folder keeps its files in a temporary folder for the
    session: they are gone once the Python process exits."""
    code = (
        "from oscar_elyra.invoke import run\n"
        "res = run('c-cat', b'kept for the session')\n"
        "assert res.path.read_bytes() == b'kept for the session'\n"
        "print(res.path)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=cluster_env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.name == "output.txt" and not path.parent.exists()
    assert path.parent.name.startswith("oscar-elyra-run-")  # named for whoever looks in /tmp


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), ".png"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)), ".jpg"),
        (b"GIF89a" + bytes(range(256)), ".gif"),
        (b"%PDF-1.4\n" + bytes(range(256)), ".pdf"),
        (b'  {"a": [1, 2]}', ".json"),
        (b"[1, 2", ".txt"),  # looks like JSON, is not: still text
        ("plain text, ünïcode".encode(), ".txt"),
        (bytes(range(256)), ".bin"),
    ],
)
def test_single_output_named_by_its_content(client, tmp_path, content, suffix):
    res = run("c-cat", content, tmp_path, client=client)
    assert res.kind == "file" and res.path == tmp_path / f"output{suffix}"
    assert res.path.read_bytes() == content


def test_inputs_and_answers_as_a_user_passes_and_reads_them(client, tmp_path):
    """File objects are sent under their name (or "input"), a one-byte answer is a file,
    a text answer written to a folder is UTF-8, a path ending in "/" is a folder."""
    src = tmp_path / "photo.raw"
    src.write_bytes(bytes(range(256)))
    (tmp_path / "a").mkdir()
    (tmp_path / "c").mkdir()
    with open(src, "rb") as fh:
        res = run("c-cat", fh, tmp_path / "a", client=client)
    assert res.path == tmp_path / "a" / "photo.bin" and res.bytes == bytes(range(256))
    assert res.service == "c-cat" and res.seconds > 0
    res = run("c-cat", io.BytesIO(b"\x07"), str(tmp_path / "b") + "/", client=client)
    assert res.kind == "file" and res.path == tmp_path / "b" / "input.txt"
    assert res.bytes == b"\x07"
    res = run("c-echo", "grüße", tmp_path / "c", client=client)
    assert res.kind == "text" and res.service == "c-echo" and res.seconds > 0
    assert res.paths == [tmp_path / "c" / "output.txt"]
    assert res.paths[0].read_text(encoding="utf-8") == "got: grüße\n" == res.text
    with pytest.raises(ServiceError) as info:
        run("c-fail", "x", client=client)
    assert "fail-marker-31" in (info.value.log or "")


def test_file_input_of_any_length_is_sent_whole(client, tmp_path):
    """A file streamed as base64 declares the length of its encoding: sizes that are a
    multiple of 3 (no padding) and those that are not come back byte for byte."""
    for size in (3 * 100_000, 3 * 100_000 + 1, 3 * 100_000 + 2):
        src = tmp_path / f"in{size}.raw"
        src.write_bytes(os.urandom(size))
        res = run("c-cat", src, tmp_path / f"out{size}.raw", client=client, timeout=10)
        assert res.path.read_bytes() == src.read_bytes()


def test_large_answer_that_stops_being_base64(client):
    """An answer past the raw-copy limit that read as base64 and then was not cannot be
    given back as text (its start was not kept): it is refused with what happened."""
    with pytest.raises(ServiceError) as info:
        run("c-notb64", "x", client=client)
    assert str(info.value) == "service 'c-notb64': a large response looked like base64 but was not"
