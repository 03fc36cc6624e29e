"""Typed palette nodes for DEEPaaS models (``oscar-elyra palette add|ls|rm``).

Generated components go through Elyra's own catalog connector and KFP component parser and
through kfp 2 (load and compile); ``palette add deepaas-digits`` against the embedded cluster
gives a node whose inputs are the model's arguments, and ``oscar-elyra run`` of a pipeline
using it calls the real model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oscar_elyra import deepaas
from oscar_elyra.artifacts import read_manifest
from oscar_elyra.cli import main
from oscar_elyra.deepaas import Argument
from oscar_elyra.elyra import CATALOG_TYPE
from oscar_elyra.elyra import model_components as mc
from oscar_elyra.elyra.user_catalog import USER_CATEGORY, component_path
from oscar_elyra.errors import ValidationError
from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline
from oscar_elyra.pipeline.model import load_pipeline
from oscar_elyra.pipeline.validation import validate_pipeline
from oscar_elyra.session import connect

HUB = Path(__file__).resolve().parent / "hub"
SETTINGS = {"service", "destination", "timeout"}

#: every kind of argument a DEEPaaS model may declare, and names that need care
ODD_ARGS = [
    Argument("data", "file", True, None, "Main input"),
    Argument("mask", "file", False, None, "Optional second file"),
    Argument("prompt", "str", True, None, "What to do"),
    Argument("top_k", "int", False, 5, "How many"),
    Argument("threshold", "float", False, 0.25, "Cut-off"),
    Argument("verbose", "bool", False, True, "Talk more"),
    Argument("sizes", "list", False, [1, 2], "Sizes"),
    Argument("options", "dict", False, None, "Extra options"),
    Argument("mode", "str", False, "fast", "Mode", ("fast", "slow")),
    Argument("service", "str", False, "x", "A model argument named like a node setting"),
    Argument("timeout", "int", False, 10, "Another one"),
    Argument("My-Arg", "str", False, None, "Not an identifier"),
    Argument("2x", "bool", False, None, "Starts with a digit"),
]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "components"
    monkeypatch.setenv("OSCAR_ELYRA_COMPONENTS", str(folder))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir()
    return folder


def _user_entries():
    """The user catalog as Elyra reads it: entry point connector, ``components: user``."""
    import entrypoints
    from elyra.pipeline.component_metadata import ComponentCatalogMetadata

    connector = entrypoints.get_group_named("elyra.component.catalog_types")[CATALOG_TYPE].load()
    instance = ComponentCatalogMetadata(
        name="oscar-models-test",
        display_name="OSCAR models",
        schema_name=CATALOG_TYPE,
        metadata={
            "runtime_type": "KUBEFLOW_PIPELINES",
            "components": "user",
            "categories": [USER_CATEGORY],
        },
    )
    return connector([".yaml"]).read_component_definitions(instance)


def _elyra_properties(entry) -> dict:
    from elyra.pipeline.kfp.kfp_component_parser import KfpComponentParser

    [component] = KfpComponentParser().parse(entry)
    return {p.ref: p for p in component.properties}


def _compile(path: Path, tmp_path: Path, values: dict) -> str:
    """Compile a KFP pipeline: OSCAR upload -> the component (its manifests from upload)."""
    import kfp.compiler
    import kfp.components
    from kfp import dsl

    comp = kfp.components.load_component_from_file(str(path))
    upload = kfp.components.load_component_from_file(str(component_path("oscar_upload.yaml")))
    manifests = [n for n, s in comp.component_spec.inputs.items() if s.type.startswith("system.")]

    @dsl.pipeline(name="typed-model")
    def typed():  # no return annotation: kfp would read "None" as an output type
        up = upload(source="/data")
        comp(**{n: up.outputs["manifest"] for n in manifests}, **values)

    out = tmp_path / "compiled.yaml"
    kfp.compiler.Compiler().compile(typed, str(out))
    return out.read_text()


def _model_inputs(spec: dict) -> dict:
    return {i["name"]: i for i in spec["inputs"] if i["name"] not in SETTINGS}


# --------------------------------------------------------------------------- generation


def test_every_kind_of_argument_is_accepted_by_elyra_and_kfp(user_dir, tmp_path):
    comp = mc.write_component("odd-model", ODD_ARGS)
    assert comp.path == user_dir / "odd-model.yaml" and comp.component_id == "user/odd-model.yaml"
    spec = yaml.safe_load(comp.path.read_text())
    names = [i["name"] for i in spec["inputs"]]
    assert names == [
        "data",
        "mask",
        "prompt",
        "top_k",
        "threshold",
        "verbose",
        "sizes",
        "options",
        "mode",
        "service",
        "timeout",
        "my_arg",
        "arg_2x",
        "oscar_service",
        "destination",
        "oscar_timeout",
    ]
    by = {i["name"]: i for i in spec["inputs"]}
    assert [by[n]["type"] for n in names[:13]] == [
        "OscarManifest",
        "OscarManifest",
        "String",
        "Integer",
        "Float",
        "Boolean",
        "String",
        "String",
        "String",
        "String",
        "Integer",
        "String",
        "Boolean",
    ]
    assert by["top_k"]["default"] == "5" and by["verbose"]["default"] == "true"
    assert by["sizes"]["default"] == "[1, 2]" and "One of: fast, slow." in by["mode"]["description"]
    assert "optional" not in by["data"] and "optional" not in by["prompt"]
    assert by["mask"]["optional"] is True and "default" not in by["options"]
    assert by["oscar_service"]["default"] == "odd-model"
    args = spec["implementation"]["container"]["args"]
    assert args[:2] == ["--service", {"inputValue": "oscar_service"}]
    # the model sees its own argument names
    assert {
        "if": {
            "cond": {"isPresent": "my_arg"},
            "then": ["--arg", "My-Arg", {"inputValue": "my_arg"}],
        }
    } in args
    assert {
        "if": {"cond": {"isPresent": "mask"}, "then": ["--file", "mask", {"inputPath": "mask"}]}
    } in args

    [entry] = _user_entries()
    assert entry.entry_reference == {"component-id": "user/odd-model.yaml"}
    assert entry.categories == [USER_CATEGORY]
    props = _elyra_properties(entry)
    assert set(props) == set(names) | {"output_predictions"}
    assert props["data"].allowed_input_types == ["inputpath"] and props["data"].required
    assert props["prompt"].required and not props["top_k"].required
    assert props["top_k"].json_data_type == "number" and props["top_k"].value == 5
    assert props["verbose"].json_data_type == "boolean" and props["verbose"].value is True
    assert props["output_predictions"].allowed_input_types == [None]

    compiled = _compile(comp.path, tmp_path, {"prompt": "hi", "arg_2x": True})
    assert "--file" in compiled and "'{{$.inputs.artifacts[''data''].path}}'" in compiled


def test_a_model_without_files_and_bad_names(user_dir, tmp_path):
    comp = mc.write_component("text-model", [Argument("text", "str", True, None, "")])
    spec = yaml.safe_load(comp.path.read_text())
    assert "one prediction (the model takes no file)" in spec["description"]
    assert _model_inputs(spec)["text"]["description"] == "Model argument text."
    _compile(comp.path, tmp_path, {"text": "hello"})
    with pytest.raises(ValidationError, match="not an OSCAR service name"):
        mc.write_component("../evil", [])
    with pytest.raises(ValidationError, match="twice"):
        mc.write_component("dup", [Argument("a"), Argument("a")])
    assert [c.service for c in mc.list_components()] == ["text-model"]
    assert component_path("user/../text-model.yaml") is None
    assert component_path("user/text-model.yaml") == comp.path


def test_an_unconnected_optional_file_input_is_valid(user_dir, tmp_path):
    mc.write_component("odd-model", ODD_ARGS)
    up = node("Upload", component="oscar_upload.yaml", inputs={"source": str(tmp_path)})
    model = node(
        "Model",
        component="user/odd-model.yaml",
        parents=[up],
        inputs={"data": ("from", up, "manifest"), "prompt": "hi"},
    )
    path = write_pipeline(tmp_path / "p.pipeline", pipeline([up, model]))
    issues = [i for i in validate_pipeline(load_pipeline(path)) if i.severity == "error"]
    assert issues == []
    gone = node("Model", component="user/other.yaml", parents=[up], inputs={})
    path = write_pipeline(tmp_path / "q.pipeline", pipeline([up, gone]))
    [issue] = [i for i in validate_pipeline(load_pipeline(path)) if i.severity == "error"]
    assert "oscar-elyra palette add other" in issue.message


def test_palette_add_from_a_hub_crate(user_dir):
    runner = CliRunner()
    res = runner.invoke(
        main, ["palette", "add", "deepaas-digits", "--crate", "deepaas-digits", "--hub", str(HUB)]
    )
    assert res.exit_code == 0, res.output
    assert "image, top_k, ink" in res.output
    spec = yaml.safe_load((user_dir / "deepaas-digits.yaml").read_text())
    inputs = _model_inputs(spec)
    assert {
        n: (i["type"], i.get("default"), i.get("optional", False)) for n, i in inputs.items()
    } == {
        "image": ("OscarManifest", None, False),
        "top_k": ("Integer", "3", True),
        "ink": ("String", "auto", True),
    }
    stored = user_dir.parent / "jupyter" / "metadata" / "component-catalogs" / "oscar-models.json"
    instance = json.loads(stored.read_text())
    assert instance["metadata"]["components"] == "user" and instance["schema_name"] == CATALOG_TYPE
    cowsay = runner.invoke(
        main, ["palette", "add", "cowsay", "--crate", "cowsay", "--hub", str(HUB)]
    )
    assert cowsay.exit_code == 2 and "describes no model arguments" in cowsay.output
    assert not (user_dir / "cowsay.yaml").exists()


# --------------------------------------------------------------------------- the real model


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "oscar-elyra"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_palette_add_deepaas_digits_then_run_a_pipeline(cluster_env, client, tmp_path, monkeypatch):
    """`palette add deepaas-digits`: Elyra and kfp accept it, its inputs are the model's
    arguments, and `oscar-elyra run` of upload -> model predicts the right digits."""
    pytest.importorskip("deepaas")
    folder = tmp_path / "components"
    env = {
        **cluster_env,
        "OSCAR_ELYRA_COMPONENTS": str(folder),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    (tmp_path / "runtime").mkdir()
    added = _cli(["palette", "add", "deepaas-digits"], env, tmp_path)
    assert added.returncode == 0, added.stderr
    assert "'user/deepaas-digits.yaml'" in added.stdout

    # its inputs are the model's arguments
    model_args = deepaas.help("deepaas-digits", session=connect(client=client), refresh=True)
    spec = yaml.safe_load((folder / "deepaas-digits.yaml").read_text())
    inputs = _model_inputs(spec)
    assert list(inputs) == [a.name for a in model_args]
    for arg in model_args:
        got = inputs[arg.name]
        assert got["type"] == ("OscarManifest" if arg.is_file else mc.KFP_TYPES[arg.type])
        assert got.get("optional", False) is (not arg.required)
        assert got.get("default") == (None if arg.default is None else str(arg.default))
        assert got["description"].startswith(arg.help)
    assert "One of: auto, dark, light." in inputs["ink"]["description"]
    monkeypatch.setenv("OSCAR_ELYRA_COMPONENTS", str(folder))
    [entry] = _user_entries()
    props = _elyra_properties(entry)
    assert {a.name for a in model_args} <= set(props)
    assert props["image"].allowed_input_types == ["inputpath"]
    _compile(folder / "deepaas-digits.yaml", tmp_path, {"top_k": 2})

    # a pipeline using it, run by oscar-elyra run
    up = node(
        "Digits",
        component="oscar_upload.yaml",
        inputs={"source": str(tmp_path / "digits"), "sample_digits": 5},  # digits 0-4
    )
    model = node(
        "Classify",
        component="user/deepaas-digits.yaml",
        parents=[up],
        inputs={"image": ("from", up, "manifest"), "top_k": ("param", "k")},
    )
    doc = pipeline(
        [up, model], name="typed", parameters=[{"name": "k", "type": "Integer", "value": 2}]
    )
    path = write_pipeline(tmp_path / "typed.pipeline", doc)
    run_dir = tmp_path / "run"
    res = _cli(
        ["run", str(path), "--run-dir", str(run_dir), "--check-services", "-q"], env, tmp_path
    )
    assert res.returncode == 0, res.stderr + res.stdout
    rec = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in rec["nodes"]] == ["succeeded", "succeeded"]
    out = next(n for n in rec["nodes"] if n["label"] == "Classify")["artifacts"][0]
    preds = read_manifest(out["path"]).artifacts
    assert len(preds) == 5
    sess = connect(client=client)
    for art in preds:
        label = int(Path(art.source).name.split("-")[1])
        data = json.loads(sess.store.get_bytes(art.uri))
        assert data["digit"] == label and len(data["top_k"]) == 2, (art.source, data)
        assert art.service == "deepaas-digits" and art.name == Path(art.source).stem + ".json"

    # ls and rm
    listed = _cli(["--json", "palette", "ls"], env, tmp_path)
    [item] = json.loads(listed.stdout)
    assert item["service"] == "deepaas-digits" and item["source"] == "deepaas help"
    assert item["arguments"] == ["image", "top_k", "ink"]
    gone = _cli(["palette", "rm", "deepaas-digits"], env, tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert not (folder / "deepaas-digits.yaml").exists()
    again = _cli(["palette", "rm", "deepaas-digits"], env, tmp_path)
    assert (
        again.returncode == 2
        and "no palette component for service 'deepaas-digits'" in again.stderr
    )
