"""Redaction as the user sees it: files scrubbed in place, JSON records, log lines, headers."""

from __future__ import annotations

import base64
import io
import logging
import os
import stat
import subprocess
import sys

import pytest

from oscar_elyra import redact as redact_mod
from oscar_elyra.redact import (
    install_log_redaction,
    redact,
    redact_data,
    register_secret,
    registered_secrets,
    scrub_file,
)


def test_scrub_file_replaces_every_form_and_keeps_the_mode(tmp_path):
    secret = "scrub-me/secret+1"
    register_secret(secret)
    quoted = "scrub-me%2Fsecret%2B1"
    b64 = base64.b64encode(secret.encode()).decode()
    log = tmp_path / "node.log"
    log.write_text(f"start {secret} mid {quoted} end {b64}\nline two {secret}{secret}\n")
    log.chmod(0o640)
    assert scrub_file(log) is True
    assert log.read_text() == "start *** mid *** end ***\nline two ******\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["node.log"]  # no temp file left


def test_scrub_file_without_secret_leaves_the_file_alone(tmp_path):
    register_secret("not-in-this-file-123")
    out = tmp_path / "out.ipynb"
    out.write_bytes(b'{"cells": []}\n')
    before = out.stat()
    assert scrub_file(out) is False
    after = out.stat()
    assert out.read_bytes() == b'{"cells": []}\n'
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_scrub_file_with_nothing_registered(tmp_path, monkeypatch):
    monkeypatch.setattr(redact_mod, "_secrets", set())
    monkeypatch.setattr(redact_mod, "_pattern", None)
    f = tmp_path / "x.txt"
    f.write_text("anything at all")
    assert scrub_file(f) is False
    assert f.read_text() == "anything at all"


@pytest.mark.parametrize("chunk", [1, 5, 7, 16, 1 << 20])
def test_scrub_file_finds_secrets_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    """A file far larger than the chunk, secrets at every offset: the result is the same as
    replacing in the whole text at once."""
    monkeypatch.setattr(redact_mod, "_SCRUB_CHUNK", chunk)
    secret = "chunky-secret-0xBEEF"
    register_secret(secret)
    parts = [f"{'.' * i}{secret}" for i in range(23)] + ["tail", secret, secret, "!"]
    text = "".join(parts)
    f = tmp_path / "big.log"
    f.write_text(text)
    assert scrub_file(f) is True
    assert f.read_text() == text.replace(secret, "***")


def test_redact_data_walks_json_like_values():
    secret = "data-secret-4242"
    register_secret(secret)
    value = {
        "error": f"failed with {secret}",
        "nested": [{"cmd": ["run", f"--token={secret}"]}, (secret, 3)],
        "count": 7,
        "ok": True,
        "none": None,
        secret: "key kept",  # keys are names, not values: left as they are
    }
    assert redact_data(value) == {
        "error": "failed with ***",
        "nested": [{"cmd": ["run", "--token=***"]}, ["***", 3]],
        "count": 7,
        "ok": True,
        "none": None,
        secret: "key kept",
    }
    assert redact_data(secret) == "***"
    assert redact_data(3.5) == 3.5


def test_register_secret_ignores_what_is_not_a_secret():
    before = set(registered_secrets())
    # (a value no other test registers: the registry is the process's, whatever ran before)
    for value in (None, "", "abc", 12345678, b"bytes-unregistered-7f3c"):
        register_secret(value)
    assert set(registered_secrets()) == before
    assert redact("abc 12345678 bytes-unregistered-7f3c") == "abc 12345678 bytes-unregistered-7f3c"
    register_secret("Zq9Z")  # exactly the minimum length: registered
    assert redact("xZq9Zx") == "x***x"
    register_secret("Zq9Z")  # again: nothing changes
    assert registered_secrets().count("Zq9Z") == 1


def test_longer_secret_wins_over_its_prefix():
    register_secret("prefix-secret")
    register_secret("prefix-secret-and-more")
    assert redact("a prefix-secret-and-more b prefix-secret c") == "a *** b *** c"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer ***"),
        ("authorization: BEARER abc.def-ghi_jk~l+m/n==", "authorization: BEARER ***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        ("Bearer short", "Bearer short"),  # under 8 characters: not a credential
        ("basicallyfine text", "basicallyfine text"),
        ("use Bearer  abcdefgh12 here", "use Bearer *** here"),
    ],
)
def test_authorization_values_are_redacted_unregistered(text, expected):
    assert redact(text) == expected


def test_a_registered_secret_inside_a_credential_hides_all_of_it():
    register_secret("Zq8Y")
    assert redact("Authorization: Bearer aaZq8Ybbbbbbbbbb") == "Authorization: Bearer ***"


@pytest.fixture
def captured():
    """A handler added to a logger after install_log_redaction (as pytest's or an app's)."""
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("oscar_elyra.test_redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_log_lines_hide_secrets_in_args_tracebacks_and_stacks(captured):
    logger, stream = captured
    secret = "log-line-secret-777"
    register_secret(secret)
    logger.info("connecting with %s to %s", secret, "host")
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        logger.exception("failed")
    logger.warning("where %s", secret, stack_info=True)
    logger.error("%s %s", secret)  # a broken format string still gives a (redacted) line
    out = stream.getvalue()
    assert secret not in out
    assert "INFO connecting with *** to host" in out
    assert "ValueError: bad ***" in out
    assert "WARNING where ***\nStack (most recent call last):" in out
    assert "ERROR %s %s ('***',)" in out


def test_root_handlers_get_a_redacting_filter():
    handler = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_redaction()
        install_log_redaction()
        filters = [f for f in handler.filters if isinstance(f, redact_mod.RedactingFilter)]
        assert len(filters) == 1
        secret = "filter-secret-5150"
        register_secret(secret)
        # a record made before the factory saw the secret: the filter still redacts it
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "v=%s", (secret,), None)
        assert filters[0].filter(record) is True
        assert record.getMessage() == "v=***"
    finally:
        root.removeHandler(handler)


def test_scrub_file_refuses_a_missing_file(tmp_path):
    register_secret("missing-file-secret")
    with pytest.raises(FileNotFoundError):
        scrub_file(tmp_path / "nope.log")
    assert not os.listdir(tmp_path)


def test_a_fresh_process_logs_redacted_lines(tmp_path):
    """install_log_redaction in a new process: handlers configured afterwards (here by
    basicConfig) print redacted lines."""
    code = (
        "import logging, sys\n"
        "from oscar_elyra.redact import install_log_redaction, register_secret\n"
        "install_log_redaction()\n"
        "register_secret('fresh-process-secret-99')\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "logging.getLogger('x').warning('token=%s', 'fresh-process-secret-99')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "WARNING token=***\n"
