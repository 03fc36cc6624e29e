"""DEEPaaS models on the embedded cluster: the real ``deepaas`` package serving ``deepaas-digits``.

Request and answer shapes are the AI4EOSC ones (oscar_elyra/deepaas.py); no mocks: the one
fault the embedded cluster cannot produce (a 502 while an image is pulled) comes from a
small real HTTP server on the loopback.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import oscar_elyra as oe
from oscar_elyra import deepaas
from oscar_elyra.artifacts import Artifact, Manifest, read_manifest, write_manifest
from oscar_elyra.config import ClusterConfig
from oscar_elyra.errors import ServiceError, ValidationError
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.session import connect

pytest.importorskip("deepaas", reason="deepaas not installed: pip install -e '.[local]'")

SERVICE = "deepaas-digits"


@pytest.fixture(scope="module")
def sess(client):
    return connect(client=client)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return sample_digits(tmp_path_factory.mktemp("digits"), count=12)


def _label(path) -> int:
    return int(path.name.split("-")[1])


def _expected(path) -> int:
    """The digit the model gives a sample: its label (digit-<label>-<n>), except 0005, which
    the classifier (deterministic: logistic regression) reads as 9."""
    return 9 if path.stem == "digit-5-0005" else _label(path)


# --------------------------------------------------------------------------- codecs


HELP_TEXT = (
    "[*] command: deepaas-cli predict --help\n"
    "usage: deepaas-cli predict [-h] --image IMAGE [--top_k TOP_K] [--ink INK]\n\n"
    "options:\n"
    "  -h, --help\n"
    "          show this help message and exit\n"
    "  --image IMAGE\n"
    "          Image of one digit\n"
    "          Type: str (filepath)\n"
    "          *Required*\n"
    "  --top_k TOP_K\n"
    "          How many\n"
    "          Type: int\n"
    "          Default: 3\n"
    "  --flags FLAGS\n"
    '          Type: list, enclosed as string: "[...]"\n'
    "          Default: [1, 2]\n"
    "  --ink INK\n"
    "          Ink colour\n"
    "          Type: str\n"
    "          Default: auto\n"
    "          Choices: ['auto', 'dark', 'light']\x1b[00m\n"
)


def test_parse_help_argparse_text():
    args = {a.name: a for a in deepaas.parse_help(HELP_TEXT)}
    assert list(args) == ["image", "top_k", "flags", "ink"]
    assert args["image"].type == "file" and args["image"].required
    assert args["top_k"].type == "int" and args["top_k"].default == 3
    assert args["flags"].type == "list" and args["flags"].default == [1, 2]
    assert args["ink"].choices == ("auto", "dark", "light") and args["ink"].default == "auto"
    assert args["ink"].help == "Ink colour"


def test_parse_help_refuses_a_non_deepaas_answer():
    with pytest.raises(ServiceError, match="no DEEPaaS argument list"):
        deepaas.parse_help("moo\n")


@pytest.mark.parametrize(
    "text",
    [
        '{"digit": 7}',  # JSON
        "2026-01-01 00:00:00.000 1 INFO deepaas.cmd.cli [-] predict was called.\x1b[00m\n"
        "2026-01-01 00:00:01.000 1 INFO deepaas.cmd.cli [-] return: {'digit': 7}\x1b[00m\n",
        "{'digit': 7}",  # a hub script printing the dict repr
        "[*] processing\n{'digit': 7}\n",
        base64.b64encode(b"{'digit': 7}\n").decode(),  # one output file, base64 from OSCAR
    ],
)
def test_parse_answer_forms(text):
    assert deepaas.parse_answer(text) == {"digit": 7}


def test_parse_answer_never_evaluates_code():
    assert deepaas.parse_answer("return: __import__('os').system('echo pwned')") is None
    pred = deepaas.Prediction("s", "return: Output is saved in /tmp/x.json")
    assert not pred.ok
    with pytest.raises(ServiceError, match="no prediction"):
        pred.json()


def test_request_body_streams_exact_json(tmp_path):
    f = tmp_path / "x.PNG"
    f.write_bytes(os.urandom(500_000))
    body = deepaas.RequestBody({"top_k": 2}, {"image": f})
    raw = b"".join(body)
    assert len(raw) == len(body)
    data = json.loads(raw)
    assert data["top_k"] == 2
    (item,) = data["oscar-files"]
    assert item["key"] == "image" and item["file_format"] == "png"
    assert base64.b64decode(item["data"]) == f.read_bytes()
    assert json.loads(b"".join(deepaas.RequestBody({}, {"image": f})))["oscar-files"]


# --------------------------------------------------------------------------- the real model


def test_help_lists_the_model_arguments(sess):
    args = deepaas.help(SERVICE, session=sess, refresh=True)
    assert [a.to_dict() for a in args] == [
        {
            "name": "image",
            "type": "file",
            "required": True,
            "default": None,
            "help": "Image of one digit",
            "choices": None,
        },
        {
            "name": "top_k",
            "type": "int",
            "required": False,
            "default": 3,
            "help": "How many of the most probable digits to return (1-10)",
            "choices": None,
        },
        {
            "name": "ink",
            "type": "str",
            "required": False,
            "default": "auto",
            "help": "Ink colour: dark on light paper, light on dark, or auto",
            "choices": ["auto", "dark", "light"],
        },
    ]


def test_sync_predict_png_gives_the_right_digit(sess, digits):
    for png in digits[:3]:
        pred = oe.deepaas.predict(SERVICE, files={"image": png}, top_k=2, session=sess)
        out = pred.json()
        assert out["digit"] == _label(png), (png.name, out)
        assert len(out["top_k"]) == 2 and len(out["probabilities"]) == 10
        assert "return:" in pred.log and pred.text == pred.log


def test_arguments_checked_before_any_upload(sess, digits):
    in_uri = "s3://deepaas-digits/inputs/"
    before = {o.key for o in sess.store.list(in_uri)}
    with pytest.raises(ValidationError) as exc:
        deepaas.submit(SERVICE, files={"image": digits[0]}, session=sess, topk=3)
    msg = str(exc.value)
    assert "'topk'" in msg and "top_k (int, default 3)" in msg and "image (file, required)" in msg
    with pytest.raises(ValidationError, match="required model argument.*image"):
        deepaas.predict(SERVICE, session=sess, top_k=3)
    with pytest.raises(ValidationError, match="choose one of 'auto', 'dark', 'light'"):
        deepaas.predict(SERVICE, files={"image": digits[0]}, session=sess, ink="blue")
    with pytest.raises(ValidationError, match="not a valid int"):
        deepaas.predict(SERVICE, files={"image": digits[0]}, session=sess, top_k="three")
    assert {o.key for o in sess.store.list(in_uri)} == before


def test_sync_failure_carries_the_log_excerpt(sess, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ServiceError) as exc:
        deepaas.predict(SERVICE, files={"image": bad}, session=sess)
    assert "UnidentifiedImageError" in str(exc.value) or "cannot identify" in str(exc.value)
    assert exc.value.log and "Traceback" in exc.value.log


@pytest.mark.slow
def test_async_map_with_one_corrupt_input(sess, digits, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in digits:
        (inputs / p.name).write_bytes(p.read_bytes())
    corrupt = inputs / digits[7].name
    corrupt.write_bytes(b"garbage" * 10)
    out = tmp_path / "out"
    res = deepaas.map(SERVICE, inputs, output_dir=out, session=sess, top_k=1, timeout=600)
    assert len(res) == len(digits)
    failed = [r for r in res if r["status"] == "failed"]
    ok = [r for r in res if r["status"] == "ok"]
    assert len(ok) == len(digits) - 1 and len(failed) == 1, res.counts()
    assert failed[0]["input"] == str(corrupt)
    assert "only" in failed[0]["error"] and ".log" in failed[0]["error"]
    assert "cannot identify image file" in failed[0]["error"]
    assert not (out / f"{corrupt.stem}.json").exists() and (out / f"{corrupt.stem}.log").exists()
    for r in ok:
        assert r["prediction"]["digit"] == _expected(Path(r["input"])), r
        stem = os.path.basename(r["input"]).rsplit(".", 1)[0]
        assert json.loads((out / f"{stem}.json").read_text()) == r["prediction"]
        assert len(r["prediction"]["top_k"]) == 1


MEM_PROBE = textwrap.dedent(
    """\
    import json, sys
    from oscar_elyra import deepaas
    from oscar_elyra.errors import ServiceError
    from oscar_elyra.session import connect
    sess = connect()
    deepaas.help("deepaas-digits", session=sess)
    def hwm():
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM"))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS: the baseline
    base = hwm()
    try:
        deepaas.predict("deepaas-digits", files={"image": sys.argv[1]}, session=sess)
        error = None
    except ServiceError as exc:
        error = str(exc)[:300]
    print(json.dumps({"delta": hwm() - base, "base": base, "error": error}))
    """
)


@pytest.mark.slow
def test_oscar_files_streamed_memory_bounded(cluster_env, tmp_path):
    """A 128 MB file goes out base64 (171 MB) in oscar-files with the client < 64 MB above
    its baseline (a client that held the file or its encoding would be 128 MB or more)."""
    big = tmp_path / "big.png"
    chunk = os.urandom(1 << 20)
    with open(big, "wb") as fh:
        for _ in range(128):
            fh.write(chunk)
    proc = subprocess.run(
        [sys.executable, "-c", MEM_PROBE, str(big)],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["delta"] < 64 * 1024 * 1024, info
    # the model saw the whole file and refused it as an image: the request arrived intact
    assert info["error"] and "cannot identify image file" in info["error"], info


# --------------------------------------------------------------------------- pipeline node


def test_palette_component_predicts_each_artifact(sess, digits, cluster_env, tmp_path):
    """``python -m oscar_elyra.components.deepaas_predict``: manifest in, predictions out."""
    arts = []
    for png in digits[:3]:
        info = sess.store.put_file(png, f"s3://oscar-elyra/test-deepaas/in/{png.name}")
        arts.append(Artifact.from_object(info, name=png.name))
    manifest = tmp_path / "in.json"
    write_manifest(Manifest(node="upload", run="test", artifacts=arts), manifest)
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "oscar_elyra.components.deepaas_predict",
            "--service",
            SERVICE,
            "--input-manifest",
            str(manifest),
            "--model-args",
            "top_k=2, ink=auto",
            "--destination",
            "s3://oscar-elyra/test-deepaas/out/",
            "--output-manifest",
            str(out),
        ],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = read_manifest(out).artifacts
    assert [a.name for a in preds] == [p.stem + ".json" for p in digits[:3]]
    for art, png in zip(preds, digits[:3], strict=True):
        data = json.loads(sess.store.get_bytes(art.uri))
        assert data["digit"] == _label(png) and len(data["top_k"]) == 2
        assert art.source.endswith(png.name) and art.service == SERVICE


def test_model_args_parameter_forms():
    assert deepaas.parse_model_args("top_k=3, ink=dark") == {"top_k": "3", "ink": "dark"}
    assert deepaas.parse_model_args('{"top_k": 3}') == {"top_k": 3}
    assert deepaas.parse_model_args("  ") == {}
    with pytest.raises(ValidationError, match="name=value"):
        deepaas.parse_model_args("top_k")


# --------------------------------------------------------------------------- 502 while pulling


class _Pulling(http.server.BaseHTTPRequestHandler):
    """Answers 502 to the first ``fails`` POSTs (an image being pulled), then a DEEPaaS log."""

    fails = 2
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        type(self).seen.append((self.path, self.headers.get("Authorization"), body))
        if len(type(self).seen) <= type(self).fails:
            self.send_response(502)
            self.end_headers()
            self.wfile.write(b"Bad Gateway")
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"INFO deepaas.cmd.cli [-] return: {'digit': 4}\n")

    def log_message(self, *args):
        pass


def test_502_while_the_image_is_pulled_is_retried(caplog, tmp_path):
    _Pulling.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pulling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        token = "ab" * 32
        cfg = ClusterConfig(
            cluster_id="pulling",
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            service_token=token,
        )
        f = tmp_path / "x.png"
        f.write_bytes(b"png")
        with caplog.at_level("WARNING", logger="oscar_elyra.deepaas"):
            pred = deepaas.predict(
                "m", files={"image": f}, session=connect(cfg), validate=False, pull_wait=30
            )
        assert pred.json() == {"digit": 4}
        assert len(_Pulling.seen) == 3
        assert all(s[1] == f"Bearer {token}" for s in _Pulling.seen)
        assert len({s[2] for s in _Pulling.seen}) == 1  # the same body, rebuilt per attempt
        assert "still being pulled" in caplog.text and "retrying" in caplog.text
    finally:
        server.shutdown()
