"""The node notebooks: committed clean, run with papermill on their own with env vars set."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest

from oscar_elyra import nodes
from oscar_elyra.errors import ParameterError
from oscar_elyra.pipeline.kernels import kernel_manager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED = {
    "oscar_invoke_sync",
    "oscar_invoke_async",
    "upload_inputs",
    "download_outputs",
    "deploy_service",
    "digits_report",
}

PARAMETERS = {
    name
    for path in NOTEBOOKS
    for name in re.findall(
        r"^(\w+) = os\.environ\.get", nbformat.read(path, 4).cells[1].source, re.M
    )
}


def test_notebooks_committed_clean():
    assert {p.stem for p in NOTEBOOKS} >= REQUIRED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        params = nb.cells[1]
        assert "parameters" in params.metadata.get("tags", []), path.name
        # every parameter defaults to the environment variable of the same name
        for name, env in re.findall(r'^(\w+) = os\.environ\.get\("(\w+)"', params.source, re.M):
            assert name == env
            assert f"`{name}`" in nb.cells[0].source, f"{path.name}: {name} undocumented"
        text = path.read_text()
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        assert "pip install" not in text and "import requests" not in text
        assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*\s*=", text), path.name
        assert "oscar_elyra" in text


def _execute(name: str, workdir: Path, env: dict, monkeypatch) -> nbformat.NotebookNode:
    import papermill

    for key in [k for k in os.environ if k.startswith(("OSCAR_", "ELYRA_")) or k in PARAMETERS]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    out = workdir / f"{name}.out.ipynb"
    # a kernel on Unix sockets: over TCP, a port jupyter_client picked can be taken by a
    # parallel test before the kernel binds it ("Address already in use")
    km = kernel_manager("python3")
    try:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / f"{name}.ipynb"),
            str(out),
            cwd=str(workdir),
            progress_bar=False,
            kernel_name="python3",
            km=km,
        )
    finally:  # nbclient leaves a kernel manager it did not make running
        if km.has_kernel:
            km.shutdown_kernel(now=False)
    return nbformat.read(out, as_version=4)


def _outputs(nb) -> str:
    return json.dumps([c.get("outputs", []) for c in nb.cells])


@pytest.mark.slow
def test_notebooks_run_as_a_chain(cluster, tmp_path, monkeypatch):
    base = {**cluster.env(), "ELYRA_RUN_NAME": f"nbtest-{uuid.uuid4().hex[:6]}"}
    base["OSCAR_ARTIFACTS_URI"] = "s3://notebooks-test/runs"
    run = lambda name, **env: _execute(name, tmp_path, {**base, **env}, monkeypatch)  # noqa: E731

    nb = run("upload_inputs", INPUT_DIR="data", SAMPLE_DIGITS="6")
    assert "digit-0-" in _outputs(nb)  # the artifact table is shown inline
    nb = run("oscar_invoke_sync", SERVICE="grayify", INPUT_FROM="upload")
    assert "image/png" in _outputs(nb)  # the grayscale images are shown inline
    run("oscar_invoke_async", SERVICE="digits", INPUT_FROM="grayify", TIMEOUT="240")
    run("download_outputs", OUTPUT_DIR="downloaded")
    nb = run("digits_report")
    assert "accuracy" in _outputs(nb) and "image/png" in _outputs(nb)

    manifests = {
        p.stem.split(".")[0]: json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")
    }
    assert set(manifests) == {"upload", "grayify", "digits", "download", "report"}
    assert {m["run"] for m in manifests.values()} == {base["ELYRA_RUN_NAME"]}
    assert len(list((tmp_path / "downloaded").glob("*.json"))) == 6
    assert manifests["report"]["extra"]["accuracy"] >= 0.6
    report_dir = tmp_path / "runs" / base["ELYRA_RUN_NAME"] / "report"
    assert {"report.html", "report.png", "predictions.csv"} <= {
        p.name for p in report_dir.iterdir()
    }
    for nb_file in tmp_path.glob("*.out.ipynb"):
        text = nb_file.read_text()
        assert cluster.password not in text and cluster.s3_secret_key not in text


def test_deploy_service_notebook(cluster, tmp_path, monkeypatch):
    from oscar_elyra.local import examples

    cowsay = next(p for p in examples.fdl_paths() if p.stem == "cowsay")
    name = f"nbcow-{uuid.uuid4().hex[:6]}"
    shutil.copy(cowsay.parent / "script.sh", tmp_path / "script.sh")
    text = (
        cowsay.read_text().replace("name: cowsay", f"name: {name}").replace("cowsay/", f"{name}/")
    )
    (tmp_path / "svc.yaml").write_text(text)
    env = {**cluster.env(), "ELYRA_RUN_NAME": "deploytest", "FDL_FILE": "svc.yaml"}
    nb = _execute("deploy_service", tmp_path, env, monkeypatch)
    assert "created" in _outputs(nb)
    manifest = json.loads((tmp_path / "runs" / "deploy.manifest.json").read_text())
    assert manifest["artifacts"] == [] and manifest["extra"]["services"][0]["service"] == name


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("oscar_invoke_sync", {}, "SERVICE is not set: expected the name of the OSCAR service"),
        ("upload_inputs", {"INPUT_DIR": "no/such/dir"}, "INPUT_DIR='no/such/dir': no such folder"),
        ("oscar_invoke_async", {"SERVICE": "digits", "TIMEOUT": "ten"}, "TIMEOUT='ten' is not a"),
    ],
)
def test_missing_or_wrong_variable_is_one_line(name, env, message, tmp_path, monkeypatch):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as info:
        _execute(name, tmp_path, {"ELYRA_RUN_NAME": "x", **env}, monkeypatch)
    err = info.value
    assert err.ename == "ParameterError"
    assert message in err.evalue and "\n" not in err.evalue
    # the notebook shows just that line, no traceback
    assert [line for line in err.traceback if line.strip()] == [f"ParameterError: {err.evalue}"]


def test_parameter_helpers_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.png").write_bytes(b"b")
    (tmp_path / "d" / "a.png").write_bytes(b"a")
    (tmp_path / "c.txt").write_text("c")
    # folders expand to their files, sorted; paths stay relative to the working directory
    assert nodes.local_files("INPUT_FILES", "d, c.txt") == [
        Path("d/a.png"),
        Path("d/b.png"),
        Path("c.txt"),
    ]
    cases = [
        (lambda: nodes.require("SERVICE", "  ", "a service name"), "SERVICE is not set: expected"),
        (lambda: nodes.as_int("TIMEOUT", "0", minimum=1), "TIMEOUT=0 is too small"),
        (lambda: nodes.as_node("NODE_NAME", "a/b"), "NODE_NAME='a/b' is not a valid node name"),
        (lambda: nodes.local_files("INPUT_FILES", "nope.png"), "INPUT_FILES='nope.png': no such"),
        (lambda: nodes.check_source("FDL_FILE", "d", want_file=True), "FDL_FILE='d': no such file"),
    ]
    for call, message in cases:
        with pytest.raises(ParameterError) as info:
            call()
        assert message in str(info.value) and "\n" not in str(info.value)
    assert nodes.as_int("TIMEOUT", "", default=300) == 300
    assert nodes.ParameterError is ParameterError  # re-exported where the helpers are


def test_library_error_is_one_line_too(cluster, tmp_path, monkeypatch):
    import papermill

    env = {**cluster.env(), "ELYRA_RUN_NAME": "x", "SERVICE": "no-such-service"}
    env["INPUT_TEXT"] = "hello"
    with pytest.raises(papermill.PapermillExecutionError) as info:
        _execute("oscar_invoke_sync", tmp_path, env, monkeypatch)
    err = info.value
    assert err.ename == "NotFoundError"
    assert "service 'no-such-service' is not deployed" in err.evalue
    assert err.traceback == [f"NotFoundError: {err.evalue}"]
    assert cluster.password not in json.dumps(err.traceback)
