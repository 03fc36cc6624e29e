"""OSCAR Hub: RO-Crates read from a folder and over HTTP, shown, and deployed to the cluster.

The hub is ``tests/hub`` (crates written by this project in grycap/oscar-hub's layout, their
FDL and script the project's own examples); HTTP is a real server on the loopback serving it.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from oscar_elyra import deepaas
from oscar_elyra.cli import main
from oscar_elyra.errors import UnsafePathError, ValidationError
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.hub import Hub, github_contents_url, parse_crate, rename_service
from oscar_elyra.session import connect

HUB = Path(__file__).resolve().parent / "hub"
CRATES = sorted(p.name for p in (HUB / "crates").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def http_hub():
    """``http://127.0.0.1:PORT/crates``: tests/hub served by a real HTTP server."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HUB))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/crates"
    finally:
        server.shutdown()
        thread.join()


def _copy_hub(tmp_path: Path) -> Path:
    dest = tmp_path / "hub"
    shutil.copytree(HUB / "crates", dest)  # symlinks followed: real files
    return dest


# --------------------------------------------------------------------------- metadata


def test_folder_hub_lists_and_parses_every_crate():
    hub = Hub(HUB)  # the folder holding crates/, as a clone of grycap/oscar-hub
    assert hub.folder == HUB / "crates"
    assert hub.slugs() == CRATES == ["cowsay", "deepaas-digits"]
    assert json.loads((HUB / "crates" / "index.json").read_text()) == CRATES
    crates, broken = hub.crates()
    assert broken == {}
    digits = {c.slug: c for c in crates}["deepaas-digits"]
    assert digits.name == "Handwritten digits (DEEPaaS)"
    assert digits.memory == "2 GiB" and digits.processors == ["1 vCPU", "0 GPU"]
    assert digits.service_types == ["synchronous", "asynchronous"]
    assert digits.license == "Apache License 2.0" and digits.author == "oscar-elyra"
    assert digits.files == ["fdl.yml", "script.sh"]
    # the arguments of the model (tests/test_deepaas.py), but choices: a FormalParameter has none
    assert [(a.name, a.type, a.required, a.default, a.choices) for a in digits.arguments] == [
        ("image", "file", True, None, None),
        ("top_k", "int", False, 3, None),
        ("ink", "str", False, "auto", None),
    ]
    assert digits.arguments[1].help == "How many of the most probable digits to return (1-10)"
    assert {c.slug: c for c in crates}["cowsay"].arguments is None
    (svc,) = hub.services("deepaas-digits")
    assert svc["name"] == "deepaas-digits" and svc["script"].startswith("#!/bin/bash")
    assert svc["environment"]["variables"] == {"DEEPAAS_V2_MODEL": "deepaas-digits"}


def test_http_hub_reads_the_same_crates(http_hub):
    local, remote = Hub(HUB), Hub(http_hub)
    assert remote.url == http_hub and remote.slugs() == local.slugs()
    for slug in CRATES:
        assert remote.crate(slug) == local.crate(slug)
        assert remote.services(slug) == local.services(slug)
    with pytest.raises(ValidationError, match="has no crate 'nope'.*hub ls"):
        remote.crate("nope")


def test_hub_location_from_the_environment(monkeypatch):
    monkeypatch.setenv("OSCAR_HUB", str(HUB))
    assert Hub().folder == HUB / "crates"
    monkeypatch.delenv("OSCAR_HUB")
    assert Hub().url == "https://raw.githubusercontent.com/grycap/oscar-hub/main/crates"
    with pytest.raises(ValidationError, match="neither an http"):
        Hub("/no/such/folder")


def test_github_raw_url_lists_through_the_contents_api():
    assert (
        github_contents_url("https://raw.githubusercontent.com/grycap/oscar-hub/main/crates/")
        == "https://api.github.com/repos/grycap/oscar-hub/contents/crates?ref=main"
    )
    assert github_contents_url("https://raw.githubusercontent.com/o/r/v1.0") == (
        "https://api.github.com/repos/o/r/contents?ref=v1.0"
    )
    assert github_contents_url("https://example.org/hub/crates") is None


def test_unsafe_names_are_refused_before_any_read(tmp_path):
    hub = Hub(_copy_hub(tmp_path))
    for slug in ("../crates", "a/b", ".hidden", ""):
        with pytest.raises(ValidationError, match="not a crate name"):
            hub.crate(slug)
    fdl = tmp_path / "hub" / "cowsay" / "fdl.yml"
    fdl.write_text(fdl.read_text().replace("script: script.sh", "script: ../../secret.sh"))
    (tmp_path / "secret.sh").write_text("echo secret")
    with pytest.raises(UnsafePathError):
        hub.services("cowsay")


def test_a_broken_crate_is_reported_not_fatal(tmp_path):
    root = _copy_hub(tmp_path)
    (root / "cowsay" / "ro-crate-metadata.json").write_text("{not json")
    result = CliRunner(mix_stderr=False).invoke(main, ["hub", "ls", "--hub", str(root)])
    assert result.exit_code == 0, result.output
    assert "deepaas-digits" in result.stdout and "Handwritten digits" in result.stdout
    assert "warning: crate cowsay" in result.stderr and "not JSON" in result.stderr
    with pytest.raises(ValidationError, match="no root data entity"):
        parse_crate("x", {"@graph": [{"@id": "other"}]})


def test_rename_moves_the_buckets_too():
    svc = {
        "name": "phyto",
        "image": "img",
        "script": "echo",
        "input": [{"storage_provider": "minio.default", "path": "phytoplankton/input"}],
        "output": [
            {"storage_provider": "minio.default", "path": "phytoplankton/output"},
            {"storage_provider": "s3.aws", "path": "mine/out"},
        ],
    }
    renamed, moved = rename_service(svc, "phyto-2")
    assert renamed["name"] == "phyto-2"
    assert [i["path"] for i in renamed["input"] + renamed["output"]] == [
        "phyto-2/input",
        "phyto-2/output",
        "mine/out",  # not MinIO: left alone
    ]
    assert moved == {
        "phytoplankton/input": "phyto-2/input",
        "phytoplankton/output": "phyto-2/output",
    }
    with pytest.raises(ValidationError, match="not a DNS label"):
        rename_service(svc, "Bad_Name")


def test_cli_show_and_json():
    runner = CliRunner()
    shown = runner.invoke(main, ["hub", "show", "deepaas-digits", "--hub", str(HUB)])
    assert shown.exit_code == 0, shown.output
    assert "service:   deepaas-digits (image ghcr.io/oscar-elyra/deepaas-digits" in shown.output
    assert "top_k (int, default 3)" in shown.output and "image (file, required)" in shown.output
    listed = runner.invoke(main, ["--json", "hub", "ls", "--hub", str(HUB)])
    assert [c["slug"] for c in json.loads(listed.output)] == CRATES
    missing = runner.invoke(main, ["hub", "show", "nope", "--hub", str(HUB)])
    assert missing.exit_code == 2 and "has no crate 'nope'" in missing.output


# --------------------------------------------------------------------------- deploy


def test_hub_deploy_then_predict(cluster_env, client, tmp_path):
    """`hub deploy deepaas-digits --name hub-digits` from the test hub, then a prediction."""
    pytest.importorskip("deepaas")
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "oscar-elyra"),
            "hub",
            "deploy",
            "deepaas-digits",
            "--hub",
            str(HUB),
            "--name",
            "hub-digits",
        ],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "created hub-digits (image ghcr.io/oscar-elyra/deepaas-digits:0.1.0)" in proc.stdout
    assert "deepaas-digits/inputs -> hub-digits/inputs" in proc.stdout
    try:
        svc = client.get_service("hub-digits")
        assert [i["path"] for i in svc["input"]] == ["hub-digits/inputs"]
        sess = connect(client=client)
        for png in sample_digits(tmp_path, count=3):
            pred = deepaas.predict("hub-digits", files={"image": png}, session=sess, top_k=1)
            assert pred.json()["digit"] == int(png.name.split("-")[1]), png.name
    finally:
        client.delete_service("hub-digits")
