"""Elyra pipeline runs against the embedded cluster, as real subprocesses.

- The example pipelines through Elyra's own CLI (``elyra-pipeline``): each runs once per
  module; several things are asserted on that run.
- ``oscar-elyra run`` gives the outputs ``elyra-pipeline run`` gives: both runners work on
  their own copy of ``pipelines/`` and ``notebooks/`` (Elyra writes the notebooks back in place);
  ``digits_kfp.pipeline`` (palette components, which Elyra's local runtime refuses) runs too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from oscar_elyra._paths import sha256_file
from oscar_elyra.artifacts import read_manifest
from oscar_elyra.session import connect

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERIC = sorted(
    p.name
    for p in (REPO / "pipelines").glob("*.pipeline")
    if '"execute-notebook-node"' in p.read_text() or '"execute-python-node"' in p.read_text()
)

pytestmark = pytest.mark.slow

#: the images _copy() keeps and the digit the classifier gives each: the label in the name
#: (digit-<label>-<n>), except 0005, which it reads as 9 (deterministic: logistic regression)
EXPECTED = {"digit-0-0000": 0, "digit-2-0022": 2, "digit-5-0005": 9, "digit-7-0027": 7}


def _copy(dst: Path) -> Path:
    """A private copy of notebooks/ and pipelines/ (Elyra runs notebooks in place)."""
    dst.mkdir()
    shutil.copytree(REPO / "pipelines", dst / "pipelines", ignore=shutil.ignore_patterns("runs"))
    shutil.copytree(REPO / "notebooks", dst / "notebooks", ignore=shutil.ignore_patterns("runs"))
    # a few images are enough to compare the runners and keep the suite fast
    for i, png in enumerate(sorted((dst / "pipelines").rglob("*.png"))):
        if i % 10:
            png.unlink()
    return dst


#: how a kernel of Elyra's own runner dies when another process took one of the TCP ports
#: jupyter_client picked for it before it bound them (an upstream race that parallel tests
#: make likely; our runner's kernels use Unix sockets, see tests/test_kernels.py)
PORT_RACE = "zmq.error.ZMQError: Address already in use"


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    raced = PORT_RACE in res.stdout + res.stderr
    if res.returncode and cmd[0].endswith("elyra-pipeline") and raced:
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _predictions(root: Path, skip: Path | None = None) -> list[dict]:
    """Rows of every predictions.csv under ``root`` (the uri column, run-specific, dropped)."""
    rows = []
    for path in sorted(root.rglob("predictions.csv")):
        if skip and skip in path.parents:
            continue
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                row.pop("uri", None)
                rows.append(row)
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


@pytest.mark.parametrize("name", GENERIC)
def test_same_outputs_as_elyra(name, tmp_path, elyra_env, store, cluster):
    """``elyra-pipeline run`` then ``oscar-elyra run`` of an example pipeline, each on its own
    copy (4 of the 40 images): the same predictions, the right digit for each image, the same
    declared output files; then what Elyra's run left is checked (``CHECKS``)."""
    elyra_dir = _copy(tmp_path / "elyra")
    ours_dir = _copy(tmp_path / "ours")
    _run([str(BIN / "elyra-pipeline"), "run", f"pipelines/{name}"], elyra_dir, elyra_env)
    run_dir = tmp_path / "run"
    _run(
        [str(BIN / "oscar-elyra"), "run", f"pipelines/{name}", "-q", "--run-dir", str(run_dir)],
        ours_dir,
        elyra_env,
    )

    theirs = _predictions(elyra_dir)
    ours = _predictions(ours_dir, skip=run_dir)
    assert ours == theirs
    assert {r["input"]: int(r["predicted"]) for r in theirs} == EXPECTED
    # same declared output files, and our source notebooks are untouched
    rec = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in rec["nodes"]] == ["succeeded"] * len(rec["nodes"])
    for node in rec["nodes"]:
        for art in node["artifacts"]:
            twin = elyra_dir / Path(art["path"]).relative_to(ours_dir)
            assert twin.is_file(), twin
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert (ours_dir / "notebooks" / nb.name).read_bytes() == nb.read_bytes()
    check = CHECKS.get(name)
    if check:
        check(elyra_dir, elyra_env, store, cluster)


def test_digits_kfp_runs(tmp_path, cluster_env):
    src = REPO / "pipelines" / "digits_kfp.pipeline"
    doc = json.loads(src.read_text())
    for n in doc["pipelines"][0]["nodes"]:
        params = n["app_data"]["component_parameters"]
        if "source" in params:
            params["source"]["value"] = str(tmp_path / "digits")
        if "sample_digits" in params:
            params["sample_digits"]["value"] = 4  # fewer images, same path through the nodes
    path = tmp_path / "digits_kfp.pipeline"
    path.write_text(json.dumps(doc))
    run_dir = tmp_path / "run"
    _run(
        [
            str(BIN / "oscar-elyra"),
            "run",
            str(path),
            "-q",
            "--run-dir",
            str(run_dir),
            "--check-services",
        ],
        tmp_path,
        cluster_env,
    )
    rec = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in rec["nodes"]] == ["succeeded"] * len(rec["nodes"])
    # the download node's `files` output (a KFP artifact) is a folder in the run directory
    download = next(n for n in rec["nodes"] if n["label"] == "download")
    out = Path(next(a["path"] for a in download["artifacts"] if a["name"] == "files"))
    assert out.is_relative_to(run_dir)
    results = {p.name: json.loads(p.read_text())["digit"] for p in out.rglob("*.json")}
    assert len(results) == 4, results
    for name, digit in results.items():  # digit-<label>-<n>.json
        assert digit == int(name.split("-")[1]), results
    # all OSCAR nodes of the run share one run folder in object storage
    manifests = [n["artifacts"][-1]["path"] for n in rec["nodes"]]
    runs = {a.run for m in manifests for a in read_manifest(m).artifacts}
    assert runs == {rec["run_name"]}


def _producer_consumer(root: Path) -> Path:
    """The files of Elyra's reference producer-consumer pipeline, written for the test."""
    from oscar_elyra.pipeline.builder import write_notebook

    (root / "scripts").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "scripts" / "setup.txt").write_text("seed 7\n")
    (root / "scripts" / "setup.py").write_text(
        "open('setup.out', 'w').write(open('setup.txt').read().upper())\n"
    )
    p = root / "pipelines"
    (p / "create-source-files.py").write_text(
        "seed = int(open('../scripts/setup.out').read().split()[1])\n"
        "for i in (1, 2):\n"
        "    open(f'input-{i}.csv', 'w').write('\\n'.join(str(seed * i + k) for k in range(5)))\n"
    )
    (p / "producer-script.py").write_text(
        "for i in (1, 2):\n"
        "    rows = open(f'input-{i}.csv').read().split()\n"
        "    open(f'output-{i + 2}.csv', 'w').write('\\n'.join(str(int(r) ** 2) for r in rows))\n"
    )
    write_notebook(
        p / "producer.ipynb",
        "import os\nuser = os.environ.get('NB_USER', '-')",
        "for i in (1, 2):\n"
        "    rows = open(f'input-{i}.csv').read().split()\n"
        "    open(f'output-{i}.csv', 'w').write(user + ':' + ','.join(r * 2 for r in rows))",
    )
    write_notebook(
        p / "consumer.ipynb",
        "import os\nparts = [open(f'output-{i}.csv').read() for i in range(1, 5)]",
        "open('summary.txt', 'w').write(os.environ['ELYRA_RUNTIME_ENV'] + '|' + '|'.join(parts))",
    )
    shutil.copy(
        REPO / "tests" / "reference" / "elyra-generic-producer-consumer.pipeline",
        p / "producer-consumer.pipeline",
    )
    return p / "producer-consumer.pipeline"


def _outputs(root: Path, skip: Path) -> dict[str, str]:
    return {
        str(f.relative_to(root)): f.read_text()
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.suffix in (".csv", ".out", ".txt") and skip not in f.parents
    }


def test_reference_pipeline_same_outputs(tmp_path):
    """Elyra's own producer-consumer .pipeline (../scripts, dependencies, NB_USER without a
    value, 5 nodes, 2 parallel branches): the same files with both runners."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELYRA_")}
    env["NB_USER"] = "tester"
    theirs_root, ours_root = tmp_path / "elyra", tmp_path / "ours"
    _producer_consumer(theirs_root)
    path = _producer_consumer(ours_root)
    sources = {f: f.read_bytes() for f in (ours_root / "pipelines").glob("*.ipynb")}
    _run(
        [str(BIN / "elyra-pipeline"), "run", "pipelines/producer-consumer.pipeline"],
        theirs_root,
        env,
    )
    run_dir = tmp_path / "run"
    _run(
        [str(BIN / "oscar-elyra"), "run", str(path), "-q", "--run-dir", str(run_dir)],
        ours_root,
        env,
    )
    theirs = _outputs(theirs_root, run_dir)
    ours = _outputs(ours_root, run_dir)
    assert "pipelines/summary.txt" in theirs and theirs["pipelines/summary.txt"].startswith(
        "local|"
    )
    assert "tester:" in theirs["pipelines/output-1.csv"]
    assert ours == theirs
    assert {f: f.read_bytes() for f in sources} == sources


# each test runs its own pipelines (no run shared across tests), so xdist may spread them


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


@pytest.fixture(scope="module")
def store(cluster):
    return connect(
        endpoint=cluster.endpoint,
        user=cluster.user,
        password=cluster.password,
        ssl_verify=False,
        env={},
    ).store


def _manifests(ws: Path) -> dict:
    """The manifests an Elyra run of the generic nodes left, by node name."""
    runs = ws / "notebooks" / "runs"
    return {p.name.split(".")[0]: read_manifest(p) for p in runs.glob("*.manifest.json")}


def _check_stored(store, manifest) -> None:
    for art in manifest.artifacts:
        info = store.stat(art.uri)
        # objects written by OSCAR jobs carry no sha256 metadata: hash their bytes
        digest = info.sha256 or hashlib.sha256(store.get_bytes(art.uri)).hexdigest()
        assert info.size == art.size and digest == art.sha256, art.uri


def _check_digits_sync(ws: Path, env: dict, store, cluster) -> None:
    validate = elyra("validate", "pipelines/digits_sync.pipeline", cwd=ws, env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Pipeline validation SUCCEEDED" in validate.stdout
    manifests = _manifests(ws)
    assert set(manifests) == {"upload", "grayify", "digits", "report"}
    [run_name] = {m.run for m in manifests.values()}
    assert run_name.startswith("digits_sync-")
    assert {m.runtime for m in manifests.values()} == {"local"}
    assert len(manifests["upload"].artifacts) == 4
    assert len(manifests["grayify"].artifacts) == len(manifests["digits"].artifacts) == 4
    assert {a.source for a in manifests["digits"].artifacts} == {
        a.uri for a in manifests["grayify"].artifacts
    }
    for manifest in manifests.values():
        _check_stored(store, manifest)
    report = {a.name: a for a in manifests["report"].artifacts}
    for art in report.values():  # local copies match the stored ones
        assert sha256_file(art.path) == art.sha256
    assert manifests["report"].extra["accuracy"] == 0.75  # 3 of EXPECTED's 4
    text = "".join(p.read_text() for p in (ws / "notebooks").rglob("*.json"))
    assert cluster.password not in text and cluster.s3_secret_key not in text


def _check_digits_async(ws: Path, env: dict, store, cluster) -> None:
    manifests = _manifests(ws)
    assert set(manifests) == {"upload", "digits", "download", "report"}
    [run_name] = {m.run for m in manifests.values()}
    assert run_name.startswith("digits_async-")
    outputs = manifests["digits"].artifacts
    assert len(outputs) == 4
    assert all(a.uri.startswith("s3://digits/out/") and a.service == "digits" for a in outputs)
    for manifest in manifests.values():
        _check_stored(store, manifest)
    downloaded = manifests["download"].artifacts
    assert sorted(a.uri for a in downloaded) == sorted(a.uri for a in outputs)
    for art in downloaded:
        assert Path(art.path).is_file() and sha256_file(art.path) == art.sha256
    report = {a.name: a for a in manifests["report"].artifacts}
    assert Path(report["report.html"].path).read_text().count("<tr>") == 4  # one row per image


#: further checks of an Elyra run, by pipeline
CHECKS = {"digits_sync.pipeline": _check_digits_sync, "digits_async.pipeline": _check_digits_async}


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
    ws = _copy(tmp_path / "ws")
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
