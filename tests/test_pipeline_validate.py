"""Bad pipelines and arguments: exit 2, one clear line, nothing executed; validate/describe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.pipeline import load_pipeline, resolve_parameters, validate_pipeline
from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline

MARK = "import pathlib; pathlib.Path('executed.marker').write_text('x')\n"


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def good(tmp_path):
    """A valid 2-node script pipeline whose nodes leave a marker when executed."""
    (tmp_path / "a.py").write_text(MARK)
    (tmp_path / "b.py").write_text(MARK)
    a = node("a", "a.py")
    b = node("b", "b.py", parents=[a], parameters=["size"])
    doc = pipeline(
        [a, b],
        parameters=[
            {"name": "size", "type": "Integer", "value": 3},
            {"name": "flag", "type": "Bool", "value": False},
        ],
    )
    return tmp_path, doc


def _bad_cases(tmp_path, doc):
    """(name, pipeline text, expected fragment of the message) for each bad pipeline."""
    cases = [("invalid-json", '{"doc_type": "pipeline", "pipelines": [', "not valid JSON")]

    cyc = json.loads(json.dumps(doc))
    nodes = cyc["pipelines"][0]["nodes"]
    nodes[0]["inputs"][0]["links"] = [
        {"id": "l1", "node_id_ref": nodes[1]["id"], "port_id_ref": "outPort"}
    ]
    cases.append(("cycle", json.dumps(cyc), "cycle"))

    missing = json.loads(json.dumps(doc))
    missing["pipelines"][0]["nodes"][1]["app_data"]["component_parameters"]["filename"] = "nope.py"
    cases.append(("missing-file", json.dumps(missing), "'nope.py' not found"))

    unknown = json.loads(json.dumps(doc))
    unknown["pipelines"][0]["nodes"][1]["op"] = "execute-fortran-node"
    cases.append(("unknown-op", json.dumps(unknown), "unknown op 'execute-fortran-node'"))

    no_op = json.loads(json.dumps(doc))
    del no_op["pipelines"][0]["nodes"][1]["op"]
    cases.append(("no-op", json.dumps(no_op), "node 'b' has unknown op ''"))

    old = json.loads(json.dumps(doc))
    old["pipelines"][0]["app_data"]["version"] = 7
    cases.append(
        ("version-7", json.dumps(old), "open and save it in the Elyra 4.1 pipeline editor")
    )

    req = json.loads(json.dumps(doc))
    params = req["pipelines"][0]["app_data"]["properties"]["pipeline_parameters"]
    params[0].update(required=True, default_value={"type": "Integer", "value": ""})
    cases.append(("missing-param", json.dumps(req), "--param size=VALUE"))

    other = json.loads(json.dumps(doc))
    other["pipelines"][0]["nodes"][1]["op"] = "elyra-kfp-examples-catalog:a08014f9252f"
    other["pipelines"][0]["nodes"][1]["app_data"]["component_source"] = json.dumps(
        {
            "catalog_type": "elyra-kfp-examples-catalog",
            "component_ref": {"component-id": "download_data.yaml"},
        }
    )
    cases.append(("other-catalog", json.dumps(other), "elyra-kfp-examples-catalog:a08014f9252f"))
    return cases


def test_bad_pipelines_exit_2_with_one_line_and_run_nothing(good, monkeypatch):
    tmp_path, doc = good
    monkeypatch.chdir(tmp_path)
    for name, text, fragment in _bad_cases(tmp_path, doc):
        path = tmp_path / f"{name}.pipeline"
        path.write_text(text)
        result = CliRunner().invoke(main, ["run", str(path)])
        assert result.exit_code == 2, (name, result.output)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, result.output)
        assert fragment in lines[0], (name, lines[0])
        assert not (tmp_path / "executed.marker").exists(), name
        assert not (tmp_path / "runs").exists(), name
        # validate reports the same problem (and exits 2)
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 2, (name, result.output)
        assert fragment in result.output, (name, result.output)


def test_param_types_and_unknown_names(good, monkeypatch):
    tmp_path, doc = good
    monkeypatch.chdir(tmp_path)
    path = write_pipeline(tmp_path / "p.pipeline", doc)
    for args, fragment in [
        (["--param", "size=big"], "parameter 'size' is Integer, got 'big'"),
        (["--param", "size=1.5"], "parameter 'size' is Integer"),
        (["--param", "flag=maybe"], "parameter 'flag' (Bool): 'maybe' is not a boolean"),
        (["--param", "colour=red"], "unknown parameter 'colour'"),
        (["--param", "size"], "is not NAME=VALUE"),
        (["--only", "zzz"], "no node 'zzz'"),
    ]:
        result = CliRunner().invoke(main, ["run", str(path), *args])
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.output, (args, result.output)
        assert not (tmp_path / "executed.marker").exists()

    pl = load_pipeline(path)
    values = resolve_parameters(pl, {"size": "7", "flag": "TRUE"})
    assert values == {"size": 7, "flag": True}
    assert resolve_parameters(pl) == {"size": 3, "flag": False}
    issues = validate_pipeline(pl, values)
    assert not [i for i in issues if i.severity == "error"]
    # 'flag' is defined with a value but no node uses it: a warning, as in Elyra
    assert any("flag" in i.message and i.severity == "warning" for i in issues)


def test_validate_and_describe(good):
    tmp_path, doc = good
    path = write_pipeline(tmp_path / "p.pipeline", doc)
    result = _cli("validate", str(path))
    assert result.exit_code == 0 and "valid (2 nodes)" in result.output
    result = _cli("--json", "describe", str(path))
    info = json.loads(result.output)
    assert [n["label"] for n in info["nodes"]] == ["a", "b"]
    assert info["nodes"][1]["depends_on"] == ["a"]
    assert info["nodes"][1]["parameters"] == ["size"]
    assert {p["name"]: (p["type"], p["default"]) for p in info["parameters"]} == {
        "size": ("Integer", 3),
        "flag": ("Bool", False),
    }
    human = _cli("describe", str(path)).output
    assert "b [python] b.py  after: a" in human and "size (Integer) = 3" in human


def test_reference_pipelines_parse():
    """The real Elyra files: the generic one parses fully; the KFP one names its catalog."""
    ref = Path(__file__).resolve().parent / "reference"
    generic = load_pipeline(ref / "elyra-generic-producer-consumer.pipeline")
    assert len(generic.nodes) == 5
    consumer = generic.find("consumer.ipynb")
    assert len(consumer.parents) == 2
    assert generic.find("producer.ipynb").env == {}  # NB_USER has no value: dropped like Elyra
    order = [generic.nodes[n].label for n in generic.topological_order()]
    assert (
        order.index("setup.py")
        < order.index("create-source-files.py")
        < order.index("consumer.ipynb")
    )
    kfp = load_pipeline(ref / "elyra-kfp-3-node-custom.pipeline")
    issues = validate_pipeline(kfp)
    assert any("elyra-kfp-examples-catalog" in i.message for i in issues if i.severity == "error")
    hash_node = kfp.find("Calculate data hash")
    assert hash_node.component_id == "calculate_hash.yaml"


def test_palette_checks_and_describe(tmp_path):
    """Palette nodes: required inputs, inputpath wiring, services used; no execution."""
    up = node("Upload", component="oscar_upload.yaml", inputs={"source": str(tmp_path)})
    call = node(
        "Call",
        component="oscar_invoke_sync.yaml",
        parents=[up],
        inputs={"service": "cowsay", "input_manifest": ("from", up, "manifest")},
    )
    path = write_pipeline(tmp_path / "ok.pipeline", pipeline([up, call]))
    pl = load_pipeline(path)
    assert not [i for i in validate_pipeline(pl) if i.severity == "error"]
    info = json.loads(_cli("--json", "describe", str(path)).output)
    assert info["services"] == {"cowsay": ["Call"]}
    assert info["nodes"][1]["inputs"]["input_manifest"] == "<output_manifest of Upload>"

    no_service = node(
        "Call",
        component="oscar_invoke_sync.yaml",
        parents=[up],
        inputs={"input_manifest": ("from", up, "manifest")},
    )
    not_upstream = node(
        "Other",
        component="oscar_invoke_sync.yaml",
        inputs={"service": "x", "input_manifest": ("from", up, "manifest")},
    )
    wrong_output = node(
        "Wrong",
        component="oscar_invoke_sync.yaml",
        parents=[up],
        inputs={"service": "x", "input_manifest": ("from", up, "nothing")},
    )
    missing = node("Ghost", component="no_such_component.yaml")
    path = write_pipeline(
        tmp_path / "bad.pipeline",
        pipeline([up, no_service, not_upstream, wrong_output, missing]),
    )
    messages = [i.message for i in validate_pipeline(load_pipeline(path)) if i.severity == "error"]
    assert any("'Call' is missing a value for required input 'service'" in m for m in messages)
    assert any("'Other'" in m and "not upstream" in m for m in messages)
    assert any("'Wrong'" in m and "no such output" in m for m in messages)
    assert any("no_such_component.yaml" in m and "not found" in m for m in messages)


def test_super_node_is_flattened_like_elyras_parser(tmp_path):
    """a -> [super node: binding -> inner -> binding] -> c  gives a -> inner -> c."""
    for n in ("a", "inner", "c"):
        (tmp_path / f"{n}.py").write_text("pass\n")
    a = node("a", "a.py", node_id="aaaa-1")
    inner = node("inner", "inner.py", node_id="bbbb-2")
    c = node("c", "c.py", node_id="cccc-3")
    inner["inputs"][0]["links"] = [{"id": "l1", "node_id_ref": "bind-4", "port_id_ref": "outPort"}]
    c["inputs"][0]["links"] = [
        {"id": "l3", "node_id_ref": "super-6", "port_id_ref": "bbbb-2_outPort"}
    ]
    sup = {
        "id": "super-6",
        "type": "super_node",
        "subflow_ref": {"pipeline_id_ref": "sub-7"},
        "app_data": {"ui_data": {"label": "group"}},
        "inputs": [
            {
                "id": "bbbb-2_inPort",
                "subflow_node_ref": "bind-4",
                "links": [{"id": "l2", "node_id_ref": "aaaa-1", "port_id_ref": "outPort"}],
            }
        ],
        "outputs": [{"id": "bbbb-2_outPort", "subflow_node_ref": "bind-5"}],
    }
    doc = pipeline([a, sup, c])
    doc["pipelines"].append(
        {
            "id": "sub-7",
            "nodes": [
                {"id": "bind-4", "type": "binding"},
                inner,
                {"id": "bind-5", "type": "binding"},
            ],
            "app_data": {"version": 8},
        }
    )
    pl = load_pipeline(write_pipeline(tmp_path / "sn.pipeline", doc))
    assert [pl.nodes[n].label for n in pl.topological_order()] == ["a", "inner", "c"]
    assert pl.nodes["bbbb-2"].parents == ["aaaa-1"] and pl.nodes["cccc-3"].parents == ["bbbb-2"]
    assert not [i for i in validate_pipeline(pl) if i.severity == "error"]


def test_pipeline_check_skips_rfc3987_syntax(tmp_path):
    """The first validation in a process imports jsonschema without rfc3987-syntax (seconds
    of grammar compiling for format checks no schema here uses); it still finds errors."""
    code = (
        "import json, sys\n"
        "from oscar_elyra.errors import ValidationError\n"
        "from oscar_elyra.pipeline import load_pipeline\n"
        "load_pipeline(sys.argv[1])\n"
        "try:\n"
        "    load_pipeline(sys.argv[2])\n"
        "except ValidationError as exc:\n"
        "    bad = str(exc)\n"
        "print(json.dumps({'rfc': 'rfc3987_syntax' in sys.modules, 'bad': bad}))\n"
    )
    good = write_pipeline(tmp_path / "ok.pipeline", pipeline([node("a", "a.py")], name="ok"))
    (tmp_path / "a.py").write_text("print(1)\n")
    broken = tmp_path / "bad.pipeline"
    broken.write_text(json.dumps({"doc_type": "pipeline", "version": "3.0", "pipelines": 7}))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(good), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["rfc"] is False and "pipelines" in seen["bad"]
