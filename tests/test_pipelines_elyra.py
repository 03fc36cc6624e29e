"""The example pipelines through Elyra's own CLI (``elyra-pipeline``) as real subprocesses,
against the embedded cluster. Each pipeline runs once per session; several things are
asserted on that run."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from oscar_elyra.artifacts import read_manifest, sha256_file

# each test runs its own pipeline (no fixture shared across tests), so xdist may spread them
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _workspace(base: Path) -> Path:
    """A private copy of notebooks/ and pipelines/ (Elyra runs notebooks in place)."""
    for sub in ("notebooks", "pipelines"):
        shutil.copytree(ROOT / sub, base / sub)
    return base


@pytest.fixture(scope="module")
def elyra_env(cluster_env, tmp_path_factory) -> dict:
    jupyter = tmp_path_factory.mktemp("jupyter")
    (jupyter / "runtime").mkdir()
    env = {k: v for k, v in cluster_env.items() if not k.startswith("ELYRA_")}
    env.update(
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        OSCAR_ARTIFACTS_URI=f"s3://pipelines-test/{uuid.uuid4().hex[:8]}",
    )
    return env


def elyra(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "elyra-pipeline"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_pipeline(name: str, base: Path, env: dict) -> dict:
    ws = _workspace(base)
    validate = elyra("validate", f"pipelines/{name}.pipeline", cwd=ws, env=env)
    run = elyra("run", f"pipelines/{name}.pipeline", cwd=ws, env=env)
    runs = ws / "notebooks" / "runs"
    manifests = {p.name.split(".")[0]: read_manifest(p) for p in runs.glob("*.manifest.json")}
    return {"ws": ws, "validate": validate, "run": run, "manifests": manifests}


@pytest.fixture(scope="module")
def store(cluster):
    from oscar_elyra import ops
    from oscar_elyra.client import OscarClient
    from oscar_elyra.config import resolve_cluster

    config = resolve_cluster(
        endpoint=cluster.endpoint,
        user=cluster.user,
        password=cluster.password,
        ssl_verify=False,
        env={},
    )
    return ops.get_store(client=OscarClient(config))


@pytest.fixture(scope="module")
def sync_run(elyra_env, tmp_path_factory):
    return _run_pipeline("digits_sync", tmp_path_factory.mktemp("sync"), elyra_env)


@pytest.fixture(scope="module")
def async_run(elyra_env, tmp_path_factory):
    return _run_pipeline("digits_async", tmp_path_factory.mktemp("async"), elyra_env)


def _check_stored(store, manifest) -> None:
    for art in manifest.artifacts:
        info = store.stat(art.uri)
        # objects written by OSCAR jobs carry no sha256 metadata: hash their bytes
        digest = info.sha256 or hashlib.sha256(store.get_bytes(art.uri)).hexdigest()
        assert info.size == art.size and digest == art.sha256, art.uri


def _accuracy(predictions_csv: Path) -> float:
    rows = list(csv.DictReader(predictions_csv.open()))
    assert len(rows) == 40
    right = sum(int(r["predicted"]) == int(r["input"].split("-")[1]) for r in rows)
    return right / len(rows)


def test_digits_sync_pipeline(sync_run, store, cluster):
    assert sync_run["validate"].returncode == 0, sync_run["validate"].stdout
    assert "Pipeline validation SUCCEEDED" in sync_run["validate"].stdout
    result = sync_run["run"]
    assert result.returncode == 0, result.stdout + result.stderr
    manifests = sync_run["manifests"]
    assert set(manifests) == {"upload", "grayify", "digits", "report"}
    [run_name] = {m.run for m in manifests.values()}
    assert run_name.startswith("digits_sync-")
    assert {m.runtime for m in manifests.values()} == {"local"}
    assert len(manifests["upload"].artifacts) == 40
    assert len(manifests["grayify"].artifacts) == len(manifests["digits"].artifacts) == 40
    assert {a.source for a in manifests["digits"].artifacts} == {
        a.uri for a in manifests["grayify"].artifacts
    }
    for manifest in manifests.values():
        _check_stored(store, manifest)
    report = {a.name: a for a in manifests["report"].artifacts}
    for art in report.values():  # local copies match the stored ones
        assert sha256_file(art.path) == art.sha256
    assert _accuracy(Path(report["predictions.csv"].path)) >= 0.8
    assert manifests["report"].extra["accuracy"] >= 0.8
    text = "".join(p.read_text() for p in (sync_run["ws"] / "notebooks").rglob("*.json"))
    assert cluster.password not in text and cluster.s3_secret_key not in text


def test_digits_async_pipeline(async_run, store):
    assert async_run["validate"].returncode == 0, async_run["validate"].stdout
    result = async_run["run"]
    assert result.returncode == 0, result.stdout + result.stderr
    manifests = async_run["manifests"]
    assert set(manifests) == {"upload", "digits", "download", "report"}
    [run_name] = {m.run for m in manifests.values()}
    assert run_name.startswith("digits_async-")
    outputs = manifests["digits"].artifacts
    assert len(outputs) == 40
    assert all(a.uri.startswith("s3://digits/out/") and a.service == "digits" for a in outputs)
    for manifest in manifests.values():
        _check_stored(store, manifest)
    downloaded = manifests["download"].artifacts
    assert sorted(a.uri for a in downloaded) == sorted(a.uri for a in outputs)
    for art in downloaded:
        assert Path(art.path).is_file() and sha256_file(art.path) == art.sha256
    report = {a.name: a for a in manifests["report"].artifacts}
    assert _accuracy(Path(report["predictions.csv"].path)) >= 0.8
    assert Path(report["report.html"].path).read_text().count("<tr>") == 40  # one row per image


def _snapshot(cluster) -> dict[str, tuple]:
    from minio import Minio

    endpoint = cluster.s3_endpoint.split("://", 1)[-1]
    mc = Minio(endpoint, cluster.s3_access_key, cluster.s3_secret_key, secure=False)
    return {
        f"{b.name}/{o.object_name}": (o.size, o.etag)
        for b in mc.list_buckets()
        for o in mc.list_objects(b.name, recursive=True)
    }


def _variant(ws: Path, name: str, node: str, var: str, value: str) -> str:
    path = ws / "pipelines" / f"{name}.pipeline"
    doc = json.loads(path.read_text())
    for n in doc["pipelines"][0]["nodes"]:
        if n["app_data"]["label"] == node:
            for item in n["app_data"]["component_parameters"]["env_vars"]:
                if item["env_var"] == var:
                    item["value"] = value
    variant = path.with_name(f"{name}_broken_{node}.pipeline")
    variant.write_text(json.dumps(doc))
    return f"pipelines/{variant.name}"


def test_missing_service_or_input_folder_fails_clearly_and_keeps_buckets(
    elyra_env, cluster, store, tmp_path
):
    ws = _workspace(tmp_path)
    # objects a failed run must not touch: earlier results, including this run's upload prefix
    prefix = elyra_env["OSCAR_ARTIFACTS_URI"]
    for uri in (f"{prefix}/keep/a.txt", "s3://grayify/out/keep.png", f"{prefix}/x/upload/y"):
        store.ensure_bucket(uri[5:].split("/", 1)[0])
        store.put_bytes(f"keep {uri}", uri)
    before = _snapshot(cluster)

    missing_dir = elyra(
        "run",
        _variant(ws, "digits_async", "upload-folder", "INPUT_DIR", "../pipelines/data/nope"),
        cwd=ws,
        env=elyra_env,
    )
    assert missing_dir.returncode != 0
    out = missing_dir.stdout + missing_dir.stderr
    assert "ParameterError INPUT_DIR='../pipelines/data/nope': no such folder" in out
    assert _snapshot(cluster) == before  # nothing written, nothing lost

    missing_service = elyra(
        "run",
        _variant(ws, "digits_sync", "grayify-sync", "SERVICE", "no-such-service"),
        cwd=ws,
        env=elyra_env,
    )
    assert missing_service.returncode != 0
    out = missing_service.stdout + missing_service.stderr
    assert "service 'no-such-service' is not deployed" in out
    after = _snapshot(cluster)
    assert {k: after.get(k) for k in before} == before  # nothing deleted or overwritten
    assert cluster.password not in out


def test_kfp_pipeline_exports_with_elyra(elyra_env, tmp_path):
    """digits_kfp.pipeline (palette components) validates and compiles for Kubeflow."""
    ws = _workspace(tmp_path)
    env = {**elyra_env, "JUPYTER_DATA_DIR": str(tmp_path / "jd")}
    install = subprocess.run(
        [str(BIN / "oscar-elyra"), "catalog", "install"], env=env, capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr
    create = subprocess.run(
        [
            str(BIN / "elyra-metadata"), "create", "runtimes", "--schema_name=kfp",
            "--name=kfp-test", "--display_name=KFP test",
            "--api_endpoint=http://127.0.0.1:9/pipeline", "--cos_endpoint=http://127.0.0.1:9",
            "--cos_username=placeholder", "--cos_password=placeholder", "--cos_bucket=bucket",
            "--engine=Argo",
        ],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert create.returncode == 0, create.stdout + create.stderr
    out = tmp_path / "digits_kfp.yaml"
    export = elyra(
        "export", "--runtime-config", "kfp-test", "--output", str(out),
        "pipelines/digits_kfp.pipeline", cwd=ws, env=env,
    )  # fmt: skip
    assert export.returncode == 0, export.stdout + export.stderr
    compiled = out.read_text()
    for module in ("upload", "invoke_sync", "invoke_async", "download"):
        assert f"oscar_elyra.components.{module}" in compiled
    assert "inputs.artifacts['input_manifest'].path" in compiled.replace("''", "'")
