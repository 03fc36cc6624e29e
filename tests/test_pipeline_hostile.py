"""Malformed or hostile .pipeline files: one clear line, exit 2, nothing runs (validate == run)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oscar_elyra.cli import main

REF = Path(__file__).resolve().parent / "reference" / "elyra-generic-producer-consumer.pipeline"


def _p(doc: dict) -> dict:
    return doc["pipelines"][0]


def _params(doc: dict, i: int = 0) -> dict:
    return _p(doc)["nodes"][i]["app_data"]["component_parameters"]


# (name, mutation, what the message must say)
CASES = [
    ("inputs string", lambda d: _p(d)["nodes"][1].update(inputs="abc"), "inputs: 'abc' is not"),
    ("inputs number", lambda d: _p(d)["nodes"][1].update(inputs=5), "inputs: 5 is not of type"),
    ("links string", lambda d: _p(d)["nodes"][1]["inputs"][0].update(links="x"), "links: 'x'"),
    ("links number", lambda d: _p(d)["nodes"][1]["inputs"][0].update(links=3), "links: 3"),
    ("properties list", lambda d: _p(d)["app_data"].update(properties=[1]), "properties: [1]"),
    ("version NaN", lambda d: _p(d)["app_data"].update(version="NaN"), "version 'NaN' is not"),
    ("version inf", lambda d: _p(d)["app_data"].update(version="inf"), "is not a number"),
    ("env_vars string", lambda d: _params(d).update(env_vars="A=1"), "env_vars: 'A=1' is not"),
    (
        "unknown runtime",
        lambda d: _p(d)["app_data"]["properties"].update(runtime="Apache Airflow"),
        "runtime 'Apache Airflow' is not supported",
    ),
    (
        "unknown runtime type",
        lambda d: _p(d)["app_data"].update(runtime_type="NOPE"),
        "runtime type 'NOPE' is not supported",
    ),
    (
        "env name with =",
        lambda d: _params(d, 0).update(env_vars=[{"env_var": "A=B", "value": "1"}]),
        "environment variable name 'A=B' is not valid",
    ),
    (
        "env value with NUL",
        lambda d: _params(d, 0).update(env_vars=[{"env_var": "A", "value": "x\x00y"}]),
        "'A' contains a NUL",
    ),
    (
        "super node ref not an object",
        lambda d: _p(d)["nodes"].append({"id": "s", "type": "super_node", "subflow_ref": "zz"}),
        "subflow_ref: 'zz' is not of type 'object'",
    ),
    ("node id number", lambda d: _p(d)["nodes"][0].update(id=5), "id: 5 is not of type"),
    (
        "dependencies string",
        lambda d: _params(d).update(dependencies="x"),
        "dependencies: 'x' is not",
    ),
    (
        "parameters string",
        lambda d: _p(d)["app_data"]["properties"].update(pipeline_parameters="x"),
        "pipeline_parameters: 'x' is not",
    ),
]


@pytest.fixture
def workspace(tmp_path):
    """The reference pipeline's node files, each writing a marker when it runs."""
    doc = json.loads(REF.read_text())
    marker = tmp_path / "ran.marker"
    code = f"open({str(marker)!r}, 'a').write('x')\n"
    base = tmp_path / "pipelines"  # where the pipeline file goes: names are relative to it
    base.mkdir()
    for raw in _p(doc)["nodes"]:
        params = raw["app_data"]["component_parameters"]
        target = (base / params["filename"]).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        for dep in params.get("dependencies") or []:
            (target.parent / dep).touch()
        if target.suffix == ".ipynb":
            cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": code}
            cell.update(execution_count=None, id="c1")
            nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            target.write_text(json.dumps(nb))
        else:
            target.write_text(code)
    return base, doc, marker


def _both(path: Path) -> list:
    runner = CliRunner()
    return [
        runner.invoke(main, ["validate", str(path)]),
        runner.invoke(main, ["run", str(path), "-q", "--run-dir", str(path.parent / "run")]),
    ]


def test_the_unchanged_reference_is_valid(workspace):
    tmp_path, doc, _marker = workspace
    path = tmp_path / "ok.pipeline"
    path.write_text(json.dumps(doc))
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 0 and "valid (5 nodes)" in res.output, res.output


@pytest.mark.parametrize("name,mutate,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_pipeline_is_refused_by_validate_and_run(workspace, name, mutate, expected):
    tmp_path, doc, marker = workspace
    doc = copy.deepcopy(doc)
    mutate(doc)
    path = tmp_path / "bad.pipeline"
    path.write_text(json.dumps(doc))
    for res in _both(path):
        assert res.exit_code == 2, (name, res.output)
        assert expected in res.output, (name, res.output)
        assert "Traceback" not in res.output, (name, res.output)
        assert isinstance(res.exception, SystemExit), (name, res.exception)
    assert not marker.exists(), "a node ran"
    assert not (tmp_path / "run").exists(), "run made a run directory for a refused pipeline"
    assert not list(tmp_path.parent.rglob("run.json"))


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"pipelines": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ('{"pipelines": [' + '{"a":' * 100 + "1" + "}" * 100 + "]}", "nested more than 64 levels"),
        ("[1, 2]", "is not an Elyra pipeline"),
        ("\x89PNG\r\n", "is not"),
    ],
    ids=["deep lists", "deep objects", "a list", "binary"],
)
def test_unparseable_documents(tmp_path, text, expected):
    path = tmp_path / "x.pipeline"
    path.write_text(text, encoding="latin-1")
    for res in _both(path):
        assert res.exit_code == 2 and expected in res.output, res.output
        assert isinstance(res.exception, SystemExit), res.exception


def test_node_file_that_is_not_a_notebook(workspace):
    tmp_path, doc, marker = workspace
    (tmp_path / "producer.ipynb").write_text("print('not a notebook')\n")
    path = tmp_path / "x.pipeline"
    path.write_text(json.dumps(doc))
    for res in _both(path):
        assert res.exit_code == 2, res.output
        assert "'producer.ipynb' is not a valid notebook" in res.output, res.output
    assert not marker.exists()
