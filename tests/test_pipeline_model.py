"""The ``.pipeline`` model (Elyra 4.1 files): what a user sees from parsing, parameter typing,
node properties, graph order and every refusal message, word for word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oscar_elyra.errors import ValidationError
from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline
from oscar_elyra.pipeline.model import (
    Node,
    Parameter,
    Pipeline,
    coerce_parameter,
    load_pipeline,
    parse_pipeline,
    render_value,
    slug,
)

SRC = Path("/work/p.pipeline")
EDITOR = "open and save it in the Elyra 4.1 pipeline editor to update it to version 8"


def _err(fn, *args) -> str:
    with pytest.raises(ValidationError) as info:
        fn(*args)
    return str(info.value)


def _doc(*nodes, **kw) -> dict:
    return pipeline(list(nodes) or [node("a", "a.py", node_id="a1")], **kw)


def _app(doc: dict) -> dict:
    return doc["pipelines"][0]["app_data"]


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    "ptype,value,expected",
    [
        ("Integer", None, None),
        ("Integer", "", None),
        ("Integer", 5, 5),
        ("Integer", 5.0, 5),
        ("Integer", " 7 ", 7),
        ("Integer", "-3", -3),
        ("Float", "1.5", 1.5),
        ("Float", 2, 2.0),
        ("Float", " 2.5 ", 2.5),
        ("Bool", "yes", True),
        ("Bool", "OFF", False),
        ("Bool", 1, True),
        ("Bool", False, False),
        ("String", 5, "5"),
        ("String", "x y", "x y"),
        ("String", False, "False"),
    ],
)
def test_coerce_parameter_values(ptype, value, expected):
    got = coerce_parameter("n", ptype, value)
    assert got == expected and type(got) is type(expected)
    assert Parameter("n", ptype).coerce(value) == expected


@pytest.mark.parametrize(
    "ptype,value",
    [
        ("Integer", True),
        ("Integer", False),
        ("Integer", 5.5),
        ("Integer", "1.5"),
        ("Integer", "big"),
        ("Float", True),
        ("Float", "x"),
        ("Float", [1]),
    ],
)
def test_coerce_parameter_refusals(ptype, value):
    assert _err(coerce_parameter, "n", ptype, value) == (
        f"parameter 'n' is {ptype}, got {value!r}: pass a valid {ptype} value"
    )


def test_bool_parameter_refusal_names_the_parameter():
    assert _err(coerce_parameter, "flag", "Bool", "maybe") == (
        "parameter 'flag' (Bool): 'maybe' is not a boolean; "
        "use true/false (also 1/0, yes/no, on/off)"
    )


def test_parameter_defaults():
    p = Parameter("n")
    assert (p.type, p.default, p.required, p.description) == ("String", None, False, "")


@pytest.mark.parametrize(
    "value,text", [(True, "true"), (False, "false"), (3, "3"), (1.5, "1.5"), ("x", "x")]
)
def test_render_value(value, text):
    assert render_value(value) == text


# ------------------------------------------------------------------ nodes


def _node(op="execute-python-node", **kw) -> Node:
    return Node(id=kw.pop("id", "abcdef-123456"), label=kw.pop("label", "lbl"), op=op, **kw)


def test_node_kinds_and_catalog():
    assert _node("execute-notebook-node").kind == "notebook"
    assert _node("execute-python-node").kind == "python"
    assert _node("execute-r-node").kind == "r"
    palette = _node("oscar-catalog:abc123")
    assert (palette.kind, palette.catalog_type) == ("component", "oscar-catalog")
    other = _node("elyra-kfp-examples-catalog:a:b")
    assert (other.kind, other.catalog_type) == ("unknown", "elyra-kfp-examples-catalog")
    assert _node("execute-python-node").catalog_type is None
    assert _node("no-colon").kind == "unknown"
    # the component source wins over the op prefix
    src = {"catalog_type": "oscar-catalog", "component_ref": {"component-id": "x.yaml"}}
    by_source = _node("some-other:op", component_source=src)
    assert (by_source.kind, by_source.catalog_type) == ("component", "oscar-catalog")
    assert by_source.component_id == "x.yaml"
    empty_type = _node("kfp:op", component_source={"catalog_type": ""})
    assert empty_type.catalog_type == "kfp"


def test_node_component_id():
    assert _node(component_source=None).component_id is None
    assert _node(component_source={"component_ref": "x.yaml"}).component_id is None
    assert _node(component_source={"component_ref": {"component-id": ""}}).component_id is None
    assert _node(component_source={"component_ref": {"component-id": 7}}).component_id == "7"


def test_node_files_and_display():
    n = _node(params={"filename": "a.py", "outputs": ["o.txt", "", None, 3], "dependencies": []})
    assert n.filename == "a.py"
    assert n.outputs == ["o.txt", "3"]
    assert n.dependencies == []
    for missing in (None, "", "None"):
        assert _node(params={"filename": missing}).filename is None
    assert _node(params={}).filename is None and _node(params={}).outputs == []
    deps = _node(params={"dependencies": ["d.csv", "", "e/"]}).dependencies
    assert deps == ["d.csv", "e/"]
    assert _node(label="").display == "abcdef-123456"
    assert _node(label="Nice").display == "Nice"
    fresh = Node(id="i", label="l", op="o")
    assert (fresh.parents, fresh.params, fresh.env, fresh.env_names) == ([], {}, {}, [])
    assert (fresh.parameter_refs, fresh.component_source) == ([], None)


@pytest.mark.parametrize(
    "label,op,nid,expected",
    [
        ("My node!", "x", "ab/cd ef12-3456", "My_node-abcdef12"),
        ("", "execute-python-node", "id", "execute-python-node-id"),
        ("", "", "id", "node-id"),
        ("...", "x", "id", "node-id"),
        ("._a b_.", "x", "id", "a_b-id"),
        ("XmasX", "x", "id", "XmasX-id"),
        ("x" * 50, "x", "0123456789", "x" * 40 + "-01234567"),
    ],
)
def test_slug(label, op, nid, expected):
    assert slug(Node(id=nid, label=label, op=op)) == expected


# ------------------------------------------------------------------ graph


def _graph(edges: dict[str, list[str]]) -> Pipeline:
    nodes = {
        n: Node(id=n, label=n.upper(), op="execute-python-node", parents=p)
        for n, p in edges.items()
    }
    return Pipeline(path=SRC, name="p", nodes=nodes)


def test_graph_relations_and_order():
    pl = _graph({"d": ["b", "c"], "a": [], "b": ["a"], "c": ["a", "ghost"], "e": []})
    assert pl.dir == Path("/work")
    assert pl.children("a") == ["b", "c"]
    assert pl.children("d") == []
    assert pl.descendants(["a"]) == {"b", "c", "d"}
    assert pl.descendants({"b"}) == {"d"}
    assert pl.descendants([]) == set()
    assert pl.ancestors("d") == {"a", "b", "c"}  # the unknown 'ghost' is not one
    assert pl.ancestors("a") == set()
    # every node after its parents, in file order as soon as its parents are placed
    assert pl.topological_order() == ["a", "b", "c", "e", "d"]
    assert pl.find_cycle() is None


def test_cycles():
    pl = _graph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert pl.find_cycle() == ["a", "b", "c", "a"]
    assert _err(pl.topological_order) == "pipeline p.pipeline has a cycle"
    self_loop = _graph({"x": [], "y": ["y"]})
    assert self_loop.find_cycle() == ["y", "y"]
    tail = _graph({"a": [], "b": ["a", "d"], "c": ["b"], "d": ["c"]})
    assert tail.find_cycle() == ["b", "c", "d", "b"]


def test_find_by_id_or_label():
    pl = _graph({"n1": [], "n2": []})
    pl.nodes["n2"].label = "n1"  # n2's label is n1's id: the id wins
    assert pl.find("n1").id == "n1"
    assert pl.find("N1").id == "n1"
    assert pl.find("n2").id == "n2"
    pl.nodes["n3"] = Node(id="n3", label="N1", op="x")
    assert _err(pl.find, "N1") == "node label 'N1' is ambiguous (ids n1, n3): pass the node id"
    pl.nodes["n4"] = Node(id="n4", label="", op="x")
    assert _err(pl.find, "zz") == "no node 'zz' in p.pipeline: nodes are 'N1', 'N1', 'n1', 'n4'"


def test_resolve(tmp_path, monkeypatch):
    pl = Pipeline(path=tmp_path / "p.pipeline", name="p", nodes={})
    assert pl.resolve("a/b.py") == tmp_path / "a" / "b.py"
    assert pl.resolve("../x.py") == tmp_path.parent / "x.py"
    assert pl.resolve("/abs/y.py") == Path("/abs/y.py")
    assert pl.resolve("c.py", base=tmp_path / "sub") == tmp_path / "sub" / "c.py"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pl.resolve("~/h.py") == tmp_path / "home" / "h.py"
    assert (pl.parameters, pl.description, pl.runtime, pl.problems) == ({}, "", "", [])


# ------------------------------------------------------------------ parsing


def test_parse_reads_what_the_editor_wrote():
    a = node("a", "a.py", node_id="a1", env={"X": " 1 ", "EMPTY": "", "N": "v"})
    b = node(
        "b",
        "b.ipynb",
        node_id="b2",
        parents=[a],
        parameters=["size", ""],
        outputs=["out.csv"],
    )
    doc = _doc(
        a,
        b,
        env={"X": "default", "D": "d", "BLANK": ""},
        parameters=[
            {"name": "size", "type": "Integer", "value": "3", "description": "how many"},
            {"name": "flag", "type": "Bool", "value": "no", "required": True},
            {"name": "s", "type": "CustomString", "value": 12},
        ],
    )
    props = _app(doc)["properties"]
    props["description"] = "my pipeline"
    props["runtime"] = "Generic"
    _app(doc)["runtime_type"] = "LOCAL"
    pl = parse_pipeline(doc, SRC)
    assert (pl.name, pl.path, pl.description) == ("p", SRC, "my pipeline")
    assert (pl.runtime, pl.runtime_type, pl.problems) == ("Generic", "LOCAL", [])
    na, nb = pl.nodes["a1"], pl.nodes["b2"]
    assert list(pl.nodes) == ["a1", "b2"]
    assert (na.label, na.kind, na.filename, na.parents) == ("a", "python", "a.py", [])
    # node env over pipeline defaults, values stripped, empty ones dropped
    assert na.env == {"X": "1", "D": "d", "N": "v"}
    assert na.env_names == ["X", "EMPTY", "N"]
    assert nb.env == {"X": "default", "D": "d"} and nb.env_names == []
    assert (nb.kind, nb.parents, nb.parameter_refs, nb.outputs) == (
        "notebook",
        ["a1"],
        ["size"],
        ["out.csv"],
    )
    params = {n: (p.type, p.default, p.required, p.description) for n, p in pl.parameters.items()}
    assert params == {
        "size": ("Integer", 3, False, "how many"),
        "flag": ("Bool", False, True, ""),
        "s": ("String", "12", False, ""),
    }


def test_parse_parameter_details():
    doc = _doc()
    props = _app(doc)["properties"]
    props["pipeline_parameters"] = [
        {"name": " padded ", "default_value": {"type": "Float", "value": "1"}},
        {"name": "untyped", "default_value": "just text"},
        {"name": "given", "default_value": {"type": "Integer", "value": 1}, "value": "2"},
        {"name": "blank", "default_value": {"type": "Integer", "value": 1}, "value": ""},
        {"name": "notype", "default_value": {"type": "", "value": "v"}},
    ]
    params = parse_pipeline(doc, SRC).parameters
    assert list(params) == ["padded", "untyped", "given", "blank", "notype"]
    assert (params["padded"].type, params["padded"].default) == ("Float", 1.0)
    assert (params["untyped"].type, params["untyped"].default) == ("String", None)
    assert params["given"].default == 2
    assert params["blank"].default == 1
    assert (params["notype"].type, params["notype"].default) == ("String", "v")
    props["pipeline_parameters"] = []
    assert parse_pipeline(doc, SRC).parameters == {}


@pytest.mark.parametrize(
    "params,message",
    [
        (
            [{"name": ""}],
            "p.pipeline: a pipeline parameter has no name",
        ),
        (
            [{"description": "x"}],
            "p.pipeline: a pipeline parameter has no name",
        ),
        (
            [{"name": "1x"}],
            "p.pipeline: '1x' is not a valid parameter name (use a Python identifier)",
        ),
        (
            [{"name": "class"}],
            "p.pipeline: 'class' is not a valid parameter name (use a Python identifier)",
        ),
        (
            [{"name": "l", "default_value": {"type": "List", "value": []}}],
            "p.pipeline: parameter 'l' has type 'List'; supported types are "
            "String, Integer, Float, Bool",
        ),
        (
            [{"name": "n", "default_value": {"type": "Integer", "value": "x"}}],
            "parameter 'n' is Integer, got 'x': pass a valid Integer value",
        ),
    ],
)
def test_bad_parameters(params, message):
    doc = _doc()
    _app(doc)["properties"]["pipeline_parameters"] = params
    assert _err(parse_pipeline, doc, SRC) == message


def test_parameters_that_are_not_a_list():
    doc = _doc()
    props = _app(doc)["properties"]
    props["pipeline_parameters"] = {"a": 1}
    # the document shape is checked first: one line naming where
    assert "pipeline_parameters" in _err(parse_pipeline, doc, SRC)
    props["pipeline_parameters"] = ""
    assert "pipeline_parameters" in _err(parse_pipeline, doc, SRC)
    props.pop("pipeline_parameters")
    assert parse_pipeline(doc, SRC).parameters == {}


def test_env_vars_as_elyra_reads_them():
    a = node("a", "a.py", node_id="a1")
    a["app_data"]["component_parameters"]["env_vars"] = [
        {"env_var": " NAME ", "value": " v "},
        {"env_var": "", "value": "x"},
        {"value": "no name"},
        {"env_var": "NUM", "value": 3},
        {"env_var": "FALSE", "value": False},
        {"env_var": "NONE", "value": None},
        {"env_var": "SPACES", "value": "   "},
    ]
    n = parse_pipeline(_doc(a), SRC).nodes["a1"]
    assert n.env == {"NAME": "v", "NUM": "3", "FALSE": "False"}
    assert n.env_names == ["NAME", "NUM", "FALSE", "NONE", "SPACES"]
    a["app_data"]["component_parameters"].pop("env_vars")
    n = parse_pipeline(_doc(a), SRC).nodes["a1"]
    assert (n.env, n.env_names) == ({}, [])


def test_links_and_ports():
    a = node("a", "a.py", node_id="a1")
    b = node("b", "b.py", node_id="b2")
    c = node("c", "c.py", node_id="c3")
    c["inputs"] = [
        {
            "id": "inPort",
            "links": [
                {"id": "1", "node_id_ref": "a1", "port_id_ref": "outPort"},
                {"id": "2", "node_id_ref": "a1"},  # no port: the node itself
                {"id": "3", "node_id_ref": "zz", "port_id_ref": "b2_outPort"},
                {"id": "4", "node_id_ref": "b2", "port_id_ref": "a-long-port-name"},
            ],
        },
        {"id": "second"},
    ]
    pl = parse_pipeline(_doc(a, b, c), SRC)
    assert pl.nodes["c3"].parents == ["a1", "b2"]
    assert pl.topological_order() == ["a1", "b2", "c3"]


def test_unknown_parent_is_a_problem_not_an_error():
    b = node("b", "b.py", node_id="b2")
    b["inputs"][0]["links"] = [{"id": "1", "node_id_ref": "gone", "port_id_ref": "outPort"}]
    pl = parse_pipeline(_doc(b), SRC)
    assert pl.problems == [("b2", "is linked to a node 'gone' that does not exist")]


def test_palette_node_parameters_and_sources():
    up = node("Upload", component="oscar_upload.yaml", inputs={"source": "d"}, node_id="u1")
    call = node(
        "Call",
        component="oscar_invoke_sync.yaml",
        parents=[up],
        node_id="c2",
        inputs={"service": ("param", "svc"), "empty": ("param", ""), "n": 3},
    )
    pl = parse_pipeline(_doc(up, call, parameters=[{"name": "svc", "value": "x"}]), SRC)
    c = pl.nodes["c2"]
    assert (c.kind, c.component_id, c.label) == ("component", "oscar_invoke_sync.yaml", "Call")
    assert c.parameter_refs == ["svc"] and c.env == {} and c.env_names == []
    assert c.params["n"] == {"widget": "number", "value": 3}
    # component_source as a dict, a bare file name, or missing
    call["app_data"]["component_source"] = {"component_ref": {"component-id": "d.yaml"}}
    assert parse_pipeline(_doc(up, call), SRC).nodes["c2"].component_id == "d.yaml"
    call["app_data"]["component_source"] = "bare.yaml"
    assert parse_pipeline(_doc(up, call), SRC).nodes["c2"].component_id == "bare.yaml"
    call["app_data"]["component_source"] = "  "
    assert parse_pipeline(_doc(up, call), SRC).nodes["c2"].component_source is None


def test_labels_from_ui_data_or_app_data():
    a = node("ui-label", "a.py", node_id="a1")
    a["app_data"]["label"] = "app-label"
    assert parse_pipeline(_doc(a), SRC).nodes["a1"].label == "ui-label"
    a["app_data"]["ui_data"] = {"label": ""}
    assert parse_pipeline(_doc(a), SRC).nodes["a1"].label == "app-label"
    a["app_data"].pop("label")
    assert parse_pipeline(_doc(a), SRC).nodes["a1"].label == ""


def test_generic_node_parameter_refs():
    a = node("a", "a.py", node_id="a1")
    a["app_data"]["component_parameters"].pop("pipeline_parameters")
    assert parse_pipeline(_doc(a), SRC).nodes["a1"].parameter_refs == []


def _refusal(mutate) -> str:
    doc = _doc(node("a", "a.py", node_id="a1"))
    mutate(doc)
    return _err(parse_pipeline, doc, SRC)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda d: d.update(doc_type="component"),
            "p.pipeline is not an Elyra pipeline (a JSON object with doc_type 'pipeline')",
        ),
        (
            lambda d: d.update(primary_pipeline="nope"),
            "p.pipeline: primary pipeline 'nope' not found in 'pipelines'",
        ),
        (
            lambda d: d["pipelines"][0].pop("app_data"),
            "p.pipeline: the primary pipeline has no 'app_data'",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"].pop("version"),
            f"p.pipeline has no pipeline version: {EDITOR}",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"].update(version=7.5),
            f"p.pipeline is a version 7.5 pipeline: {EDITOR}",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"].update(version=9),
            "p.pipeline is a version 9 pipeline, newer than Elyra 4.1's version 8: "
            "save it with Elyra 4.1 or update oscar-elyra",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"].update(version="8.5"),
            "p.pipeline is a version 8.5 pipeline, newer than Elyra 4.1's version 8: "
            "save it with Elyra 4.1 or update oscar-elyra",
        ),
        (
            lambda d: d.update(version="2.0"),
            "p.pipeline uses pipeline-flow schema 2.0; Elyra 4.1 needs 3.0",
        ),
        (
            lambda d: d["pipelines"][0].update(nodes=[]),
            "p.pipeline has no nodes: add at least one node in the pipeline editor",
        ),
        (
            lambda d: d["pipelines"][0].pop("nodes"),
            "p.pipeline has no nodes: add at least one node in the pipeline editor",
        ),
        (
            lambda d: d["pipelines"][0].update(nodes=[{"id": "b", "type": "binding"}]),
            "p.pipeline has no nodes: add at least one node in the pipeline editor",
        ),
        (
            lambda d: d["pipelines"][0]["nodes"][0].update(type="model_node"),
            "p.pipeline: node 'a1' has unsupported type 'model_node'",
        ),
        (
            lambda d: d["pipelines"][0]["nodes"][0].update(id=""),
            "p.pipeline: a node has no id",
        ),
        (
            lambda d: d["pipelines"][0]["nodes"].append(dict(d["pipelines"][0]["nodes"][0])),
            "p.pipeline: two nodes have the id 'a1'",
        ),
        (
            lambda d: d["pipelines"][0]["nodes"][0]["app_data"].pop("component_parameters"),
            "p.pipeline: node 'a' has no 'component_parameters': "
            "open and save the pipeline in the pipeline editor",
        ),
        (
            lambda d: d["pipelines"][0]["nodes"][0].update(app_data={}),
            "p.pipeline: node 'a1' has no 'component_parameters': "
            "open and save the pipeline in the pipeline editor",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"]["properties"].update(runtime="APACHE_AIRFLOW"),
            "p.pipeline: runtime 'APACHE_AIRFLOW' is not supported; oscar-elyra runs Generic and "
            "Kubeflow Pipelines pipelines (use `elyra-pipeline submit` for others)",
        ),
        (
            lambda d: d["pipelines"][0]["app_data"].update(runtime_type="APACHE_AIRFLOW"),
            "p.pipeline: runtime type 'APACHE_AIRFLOW' is not supported; oscar-elyra runs "
            "LOCAL, KUBEFLOW_PIPELINES pipelines (use `elyra-pipeline submit` for others)",
        ),
    ],
)
def test_refusals_name_the_file_and_the_fix(mutate, message):
    assert _refusal(mutate) == message


def test_refusals_before_the_shape_check():
    assert _err(parse_pipeline, [], SRC) == (
        "p.pipeline is not an Elyra pipeline (a JSON object with doc_type 'pipeline')"
    )
    doc = _doc()
    doc.pop("doc_type")  # doc_type defaults to "pipeline"
    assert parse_pipeline(doc, SRC).name == "p"
    doc["pipelines"] = []
    assert "pipelines" in _err(parse_pipeline, doc, SRC)


def test_versions_and_schema_that_are_accepted():
    for version in (8, 8.0, "8", "8.0"):
        doc = _doc()
        _app(doc)["version"] = version
        assert parse_pipeline(doc, SRC).name == "p"
    for schema in ("3", "3.0", 3):
        doc = _doc()
        doc["version"] = schema
        assert parse_pipeline(doc, SRC).name == "p"
    doc = _doc()
    doc.pop("version")
    assert parse_pipeline(doc, SRC).name == "p"
    doc = _doc()
    _app(doc)["version"] = "eight"
    assert _err(parse_pipeline, doc, SRC) == "p.pipeline: pipeline version 'eight' is not a number"


def test_runtime_from_properties_or_app_data():
    doc = _doc()
    _app(doc)["properties"].pop("runtime")
    _app(doc)["runtime"] = "Kubeflow Pipelines"
    assert parse_pipeline(doc, SRC).runtime == "Kubeflow Pipelines"
    _app(doc).pop("runtime")
    assert parse_pipeline(doc, SRC).runtime == ""
    assert parse_pipeline(doc, SRC).runtime_type == ""
    _app(doc).pop("properties")
    pl = parse_pipeline(doc, SRC)
    assert (pl.runtime, pl.description, pl.parameters) == ("", "", {})


def _super(inner_nodes: list, sub_id: str = "sub") -> tuple[dict, dict]:
    sup = {
        "id": "super",
        "type": "super_node",
        "subflow_ref": {"pipeline_id_ref": sub_id},
        "inputs": [
            {
                "id": "i1_inPort",
                "links": [{"id": "l", "node_id_ref": "a1", "port_id_ref": "outPort"}],
            },
            {"id": "other", "links": [{"id": "m", "node_id_ref": "a1"}]},
        ],
    }
    sub = {"id": "sub", "nodes": inner_nodes, "app_data": {"version": 8}}
    return sup, sub


def test_super_nodes():
    a = node("a", "a.py", node_id="a1")
    inner = node("i", "i.py", node_id="i1")
    inner["inputs"][0]["links"] = [{"id": "x", "node_id_ref": "bind", "port_id_ref": "outPort"}]
    inner2 = node("j", "j.py", node_id="i2")
    sup, sub = _super([{"id": "bind", "type": "binding"}, inner, inner2])
    doc = _doc(a, sup)
    doc["pipelines"].append(sub)
    pl = parse_pipeline(doc, SRC)
    assert pl.nodes["i1"].parents == ["a1"]  # not the binding
    assert pl.nodes["i2"].parents == []
    # a link the inner node already has is not added twice
    inner["inputs"][0]["links"].append({"id": "y", "node_id_ref": "a1", "port_id_ref": "outPort"})
    doc = _doc(a, sup)
    doc["pipelines"].append(sub)
    assert parse_pipeline(doc, SRC).nodes["i1"].parents == ["a1"]
    sup["subflow_ref"]["pipeline_id_ref"] = "gone"
    assert _err(parse_pipeline, doc, SRC) == (
        "p.pipeline: super node 'super' refers to a missing pipeline 'gone'"
    )


def test_super_nodes_nested_too_deep():
    a = node("a", "a.py", node_id="a1")
    loop = {"id": "loop", "type": "super_node", "subflow_ref": {"pipeline_id_ref": "sub"}}
    doc = _doc(a, loop)
    doc["pipelines"].append({"id": "sub", "nodes": [loop], "app_data": {"version": 8}})
    assert _err(parse_pipeline, doc, SRC) == (
        "p.pipeline: super node 'loop' refers to a missing pipeline 'sub'"
    )
    # super nodes nested 21 deep are flattened; one more level is refused
    assert "z" in parse_pipeline(_nested(a, 21), SRC).nodes
    assert _err(parse_pipeline, _nested(a, 22), SRC) == (
        "p.pipeline: super node 's21' refers to a missing pipeline 'p22'"
    )


def _nested(a: dict, levels: int) -> dict:
    """``levels`` super nodes, each inside the previous one's pipeline; node z at the bottom."""
    doc = _doc(a, {"id": "s0", "type": "super_node", "subflow_ref": {"pipeline_id_ref": "p1"}})
    for i in range(1, levels + 1):
        ref = {"pipeline_id_ref": f"p{i + 1}"}
        nodes = [{"id": f"s{i}", "type": "super_node", "subflow_ref": ref}]
        if i == levels:
            nodes = [node("z", "z.py", node_id="z")]
        doc["pipelines"].append({"id": f"p{i}", "nodes": nodes})
    return doc


# ------------------------------------------------------------------ files


def test_load_pipeline_messages(tmp_path):
    missing = tmp_path / "nope.pipeline"
    assert _err(load_pipeline, missing) == f"pipeline file not found: {missing}"
    assert _err(load_pipeline, tmp_path) == f"pipeline file not found: {tmp_path}"
    binary = tmp_path / "b.pipeline"
    binary.write_bytes(b"\xff\xfe\x00")
    assert _err(load_pipeline, binary) == "b.pipeline is not a text file: is it a .pipeline file?"
    bad = tmp_path / "bad.pipeline"
    bad.write_text('{\n  "doc_type": "pipeline",\n  oops\n}')
    assert _err(load_pipeline, bad) == (
        "bad.pipeline is not valid JSON (line 3, column 3: Expecting property name enclosed in "
        "double quotes); fix it or save it again from the pipeline editor"
    )
    deep = tmp_path / "deep.pipeline"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert _err(load_pipeline, deep) == "deep.pipeline is nested too deeply to be a .pipeline file"


def test_load_pipeline_resolves_the_path(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write_pipeline(tmp_path / "sub" / "x.pipeline", _doc())
    monkeypatch.chdir(tmp_path)
    pl = load_pipeline("sub/../sub/x.pipeline")
    assert pl.path == tmp_path / "sub" / "x.pipeline" and pl.name == "x"
    assert pl.dir == tmp_path / "sub"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_pipeline("~/sub/x.pipeline").path == tmp_path / "sub" / "x.pipeline"
    text = json.loads((tmp_path / "sub" / "x.pipeline").read_text())
    assert (
        load_pipeline(tmp_path / "sub" / "x.pipeline").nodes.keys()
        == parse_pipeline(text, SRC).nodes.keys()
    )
