"""The project's pipelines: ``oscar-elyra run`` gives the outputs ``elyra-pipeline run`` gives.

Both runners work on their own copy of ``pipelines/`` and ``notebooks/`` (Elyra writes the
notebooks back in place) against the embedded cluster; the predictions must be the same.
``digits_kfp.pipeline`` (palette components, which Elyra's local runtime refuses) runs too.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERIC = sorted(
    p.name
    for p in (REPO / "pipelines").glob("*.pipeline")
    if '"execute-notebook-node"' in p.read_text() or '"execute-python-node"' in p.read_text()
)

pytestmark = pytest.mark.slow


def _copy(dst: Path) -> Path:
    dst.mkdir()
    shutil.copytree(REPO / "pipelines", dst / "pipelines", ignore=shutil.ignore_patterns("runs"))
    shutil.copytree(REPO / "notebooks", dst / "notebooks", ignore=shutil.ignore_patterns("runs"))
    # a few images are enough to compare the runners and keep the suite fast
    for i, png in enumerate(sorted((dst / "pipelines").rglob("*.png"))):
        if i % 10:
            png.unlink()
    return dst


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
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
def test_same_outputs_as_elyra(name, tmp_path, cluster_env):
    elyra_dir = _copy(tmp_path / "elyra")
    ours_dir = _copy(tmp_path / "ours")
    _run([str(BIN / "elyra-pipeline"), "run", f"pipelines/{name}"], elyra_dir, cluster_env)
    run_dir = tmp_path / "run"
    _run(
        [str(BIN / "oscar-elyra"), "run", f"pipelines/{name}", "-q", "--run-dir", str(run_dir)],
        ours_dir,
        cluster_env,
    )

    theirs = _predictions(elyra_dir)
    ours = _predictions(ours_dir, skip=run_dir)
    assert theirs, "elyra-pipeline run produced no predictions"
    assert ours == theirs
    # same declared output files, and our source notebooks are untouched
    rec = json.loads((run_dir / "run.json").read_text())
    assert all(n["status"] == "succeeded" for n in rec["nodes"])
    for node in rec["nodes"]:
        for art in node["artifacts"]:
            twin = elyra_dir / Path(art["path"]).relative_to(ours_dir)
            assert twin.is_file(), twin
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert (ours_dir / "notebooks" / nb.name).read_bytes() == nb.read_bytes()


def test_digits_kfp_runs(tmp_path, cluster_env):
    src = REPO / "pipelines" / "digits_kfp.pipeline"
    if not src.is_file():
        pytest.skip("pipelines/digits_kfp.pipeline not there yet")
    doc = json.loads(src.read_text())
    out = tmp_path / "digits-out"
    for n in doc["pipelines"][0]["nodes"]:
        params = n["app_data"]["component_parameters"]
        if "source" in params:
            params["source"]["value"] = str(tmp_path / "digits")
        if "sample_digits" in params:
            params["sample_digits"]["value"] = 4  # fewer images, same path through the nodes
        if params.get("destination", {}).get("value") == "/tmp/digits-out":
            params["destination"]["value"] = str(out)
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
    results = [json.loads(p.read_text()) for p in out.rglob("*.json")]
    assert len(results) == 4 and all(0 <= r["digit"] <= 9 for r in results)


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
        Path("/work/shared/reference/elyra-generic-producer-consumer.pipeline"),
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
    if not Path("/work/shared/reference/elyra-generic-producer-consumer.pipeline").is_file():
        pytest.skip("reference pipeline not available")
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
