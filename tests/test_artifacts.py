"""Artifact manifests: publish/inputs between nodes, run filtering, fetch with checksums."""

from __future__ import annotations

import json
import uuid

import pytest

from oscar_elyra import artifacts, nodes
from oscar_elyra._paths import sha256_file
from oscar_elyra.artifacts import Artifact, inputs, manifest_path, publish, read_manifest
from oscar_elyra.errors import IntegrityError, ValidationError
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.session import connect


def _art(name: str, node: str = "x") -> Artifact:
    return Artifact(uri=f"s3://b/{node}/{name}", size=3, sha256="0" * 64, name=name)


@pytest.fixture()
def run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELYRA_RUN_NAME", "pipe-0101")
    monkeypatch.setenv("ELYRA_RUNTIME_ENV", "local")
    return tmp_path


def test_publish_then_inputs_round_trip(run):
    path = publish([_art("a.png"), _art("b.png")], "upload", service=None)
    assert path == run / "runs" / "upload.manifest.json"
    data = json.loads(path.read_text())
    assert data["run"] == "pipe-0101" and data["runtime"] == "local" and data["node"] == "upload"
    assert {a["node"] for a in data["artifacts"]} == {"upload"}
    got = inputs()
    assert [a.name for a in got] == ["a.png", "b.png"]
    assert all(a.run == "pipe-0101" for a in got)
    assert not list((run / "runs").glob("*.tmp"))  # written via temp name + rename


def test_inputs_ignore_stale_runs_and_pick_latest_or_named(run, monkeypatch):
    monkeypatch.setenv("ELYRA_RUN_NAME", "pipe-old")
    publish([_art("stale.png")], "grayify")
    monkeypatch.setenv("ELYRA_RUN_NAME", "pipe-new")
    with pytest.raises(ValidationError, match="no upstream artifacts in run 'pipe-new'"):
        inputs()
    publish([_art("u.png")], "upload")
    publish([], "deploy", extra={"services": []})  # manifests without files are skipped
    publish([_art("g.png")], "grayify")
    assert [a.name for a in inputs()] == ["g.png"]  # newest of this run, not the stale one
    assert [a.name for a in inputs("upload")] == ["u.png"]
    assert [a.name for a in inputs("upload, grayify")] == ["u.png", "g.png"]
    assert [a.name for a in inputs(exclude="grayify")] == ["u.png"]
    with pytest.raises(ValidationError, match=r"node 'digits'.*grayify, upload"):
        inputs("digits")


def test_manifest_validation(run):
    (run / "runs").mkdir()
    (run / "runs" / "other.manifest.json").write_text('{"kind": "something else"}')
    (run / "runs" / "broken.manifest.json").write_text("{not json")
    assert artifacts.manifests() == []  # foreign or broken files are not manifests
    with pytest.raises(ValidationError, match="not an oscar-elyra artifact manifest"):
        read_manifest(run / "runs" / "other.manifest.json")
    with pytest.raises(ValidationError, match="manifest file not found"):
        read_manifest(run / "missing.json")
    for bad in ["", "../x", "a/b", "-x", "x" * 101]:
        with pytest.raises(ValidationError, match="invalid node name"):
            manifest_path(bad)
    with pytest.raises(ValidationError, match="cannot publish"):
        publish([object()], "n")


def test_outside_pipeline_run_name_and_local_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ELYRA_RUN_NAME", raising=False)
    assert artifacts.run_name() == "interactive"
    monkeypatch.setenv("ELYRA_RUN_NAME", "my pipe/1")
    assert artifacts.local_dir("report", tmp_path) == tmp_path / "runs" / "my_pipe_1" / "report"


def test_fetch_checks_checksums_and_manifest_has_no_secrets(cluster, run):
    store = connect(client=_client(cluster)).store
    src = run / "in"
    src.mkdir()
    (src / "one.txt").write_text("hello")
    (src / "two.bin").write_bytes(bytes(range(256)) * 40)
    dest = f"s3://artifacts-test/{uuid.uuid4().hex}/"
    arts = nodes.upload(src, destination=dest, store=store)
    path = publish(arts, "upload")
    text = path.read_text()
    assert cluster.password not in text and cluster.s3_secret_key not in text
    got = inputs("upload")
    files = artifacts.fetch(got, run / "out", store=store)
    assert [p.read_bytes() for p in files] == [
        (src / "one.txt").read_bytes(),
        (src / "two.bin").read_bytes(),
    ]
    assert [sha256_file(p) for p in files] == [a.sha256 for a in got]
    tampered = Artifact.from_dict({**got[0].to_dict(), "sha256": "f" * 64})
    with pytest.raises(IntegrityError, match="sha256 differs"):
        artifacts.fetch([tampered], run / "bad", store=store)
    assert not (run / "bad" / "one.txt").exists()
    wrong_size = Artifact.from_dict({**got[0].to_dict(), "size": 999})
    with pytest.raises(IntegrityError, match="manifest says 999"):
        artifacts.fetch([wrong_size], run / "bad2", store=store)
    assert not (run / "bad2" / "one.txt").exists()


def _client(cluster):
    from oscar_elyra.client import OscarClient
    from oscar_elyra.config import resolve_cluster

    return OscarClient(
        resolve_cluster(
            endpoint=cluster.endpoint,
            user=cluster.user,
            password=cluster.password,
            ssl_verify=False,
            env={},
        )
    )


def test_sync_results_keep_nested_names_and_same_stems_apart(cluster, run):
    client = _client(cluster)
    store = connect(client=client).store
    for sub in ("x", "y"):
        sample_digits(run / "in" / sub, 1)
    dest = f"s3://artifacts-test/{uuid.uuid4().hex}/"
    uploaded = nodes.upload(run / "in", destination=dest, store=store)
    assert sorted(a.name for a in uploaded) == ["x/digit-0-0000.png", "y/digit-0-0000.png"]
    results = nodes.invoke_sync("grayify", uploaded, node="gray", client=client, store=store)
    assert sorted(a.name for a in results) == ["x/digit-0-0000.png", "y/digit-0-0000.png"]
    files = artifacts.fetch(results, run / "out", store=store)
    assert len(files) == 2 and all(p.is_file() for p in files)
    local = nodes.invoke_sync(
        "grayify", [run / "in" / "x" / "digit-0-0000.png", run / "in" / "y" / "digit-0-0000.png"],
        node="gray2", client=client, store=store,
    )  # fmt: skip
    assert sorted(a.name for a in local) == ["digit-0-0000-1.png", "digit-0-0000.png"]


def test_artifact_without_checksum_round_trips(run):
    """An object stored without a sha256 (written by an OSCAR job) survives its manifest."""
    art = Artifact(uri="s3://b/k/out.json", size=3)
    publish([art], "n")
    (back,) = read_manifest(manifest_path("n")).artifacts
    assert back.uri == art.uri and back.size == 3 and back.sha256 is None
