"""Palette (oscar-catalog) component nodes run locally against the embedded cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from oscar_elyra.artifacts import read_manifest
from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "oscar-elyra"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_palette_components_chain(tmp_path, cluster_env):
    """upload -> invoke_sync(cowsay) -> download, wired with inputpath widgets and a
    parameter; output files (the download's folder artifact too) are in the run dir, all nodes
    share the run's object storage folder; --check-services sees the service."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "hello.txt").write_text('{"message": "hello from a palette node"}')
    (src / "skip.bin").write_bytes(b"not matched by the pattern parameter")
    up = node(
        "Upload",
        component="oscar_upload.yaml",
        inputs={"source": str(src), "pattern": ("param", "pattern")},
    )
    call = node(
        "Cowsay",
        component="oscar_invoke_sync.yaml",
        parents=[up],
        inputs={"service": "cowsay", "input_manifest": ("from", up, "manifest")},
    )
    down = node(
        "Download",
        component="oscar_download.yaml",
        parents=[call],
        inputs={"input_manifest": ("from", call, "results")},
    )
    doc = pipeline(
        [up, call, down],
        name="palette",
        parameters=[{"name": "pattern", "type": "String", "value": "*"}],
    )
    path = write_pipeline(tmp_path / "palette.pipeline", doc)
    run_dir = tmp_path / "run"

    res = _cli(
        [
            "run",
            str(path),
            "--run-dir",
            str(run_dir),
            "--param",
            "pattern=*.txt",
            "--check-services",
            "-q",
        ],
        cluster_env,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    rec = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in rec["nodes"]] == ["succeeded"] * 3
    manifest = next(n for n in rec["nodes"] if n["label"] == "Upload")["artifacts"][0]
    assert manifest["name"] == "manifest" and Path(manifest["path"]).is_relative_to(run_dir)
    download = next(n for n in rec["nodes"] if n["label"] == "Download")["artifacts"]
    dest = Path(next(a["path"] for a in download if a["name"] == "files"))
    assert dest.is_relative_to(run_dir)
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert len(files) == 1, res.stderr  # only hello.txt matched the pattern parameter
    assert "hello from a palette node" in "".join(p.read_text() for p in files)
    runs = {
        art.run
        for n in rec["nodes"]
        for a in n["artifacts"]
        if a["name"] in ("manifest", "results")
        for art in read_manifest(a["path"]).artifacts
    }
    assert runs == {rec["run_name"]}  # one object storage folder for the whole run

    # the same pipeline against a service that does not exist: exit 2, nothing runs
    bad = json.loads(path.read_text())
    bad_node = bad["pipelines"][0]["nodes"][1]["app_data"]["component_parameters"]
    bad_node["service"]["value"] = "no-such-service"
    bad_path = tmp_path / "bad.pipeline"
    bad_path.write_text(json.dumps(bad))
    res = _cli(
        ["run", str(bad_path), "--run-dir", str(tmp_path / "run2"), "--check-services"],
        cluster_env,
        tmp_path,
    )
    assert res.returncode == 2, res.stderr
    assert "no-such-service" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run2").exists()
