"""FDL loading and service validation (oscar_elyra.fdl)."""

from __future__ import annotations

import pytest

from oscar_elyra.errors import ValidationError
from oscar_elyra.fdl import load_fdl, normalize_storage_path, validate_service
from oscar_elyra.local.examples import EXAMPLES, fdl_paths

GOOD = {"name": "svc-1", "image": "alpine", "script": "echo hi"}


def test_examples_load_and_inline_scripts():
    names = []
    for path in fdl_paths():
        (svc,) = load_fdl(path)
        names.append(svc["name"])
        assert svc["script"] == (path.parent / "script.sh").read_text()
        assert svc["_cluster_id"] == "oscar-cluster"
        # deepaas-digits keeps the AI4EOSC template's <name>/inputs, <name>/outputs
        sub_in, sub_out = (
            ("inputs", "outputs") if svc["name"].startswith("deepaas") else ("in", "out")
        )
        path_in = f"{svc['name']}/{sub_in}"
        assert svc["input"] == [{"storage_provider": "minio.default", "path": path_in}]
        assert svc["output"][0]["path"] == f"{svc['name']}/{sub_out}"
        assert "/" in svc["image"]
    assert tuple(names) == EXAMPLES


def test_fdl_several_clusters_and_storage_providers(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.sh").write_text("echo a\n")
    fdl = tmp_path / "f.yaml"
    fdl.write_text(
        """
functions:
  oscar:
  - c1:
      name: svc-a
      image: img
      script: s/a.sh
      environment: {variables: {N: 3, FLAG: true}}
      input: [{path: in}]
  - c2:
      name: svc-b
      image: img
      script: s/a.sh
      output: [{path: /other/out/, storage_provider: minio.c2, suffix: .png}]
storage_providers:
  minio:
    c2: {endpoint: "https://minio.example.org", verify: true}
"""
    )
    a, b = load_fdl(fdl)
    assert (a["_cluster_id"], b["_cluster_id"]) == ("c1", "c2")
    assert a["script"] == "echo a\n"
    assert a["input"] == [{"path": "svc-a/in", "storage_provider": "minio.default"}]
    assert a["environment"]["variables"] == {"N": "3", "FLAG": "true"}
    assert b["output"] == [
        {"path": "other/out", "storage_provider": "minio.c2", "suffix": [".png"]}
    ]
    assert b["storage_providers"]["minio"]["c2"]["endpoint"] == "https://minio.example.org"


def test_fdl_missing_script_names_the_file(tmp_path):
    fdl = tmp_path / "f.yaml"
    fdl.write_text(
        "functions:\n  oscar:\n  - c:\n      name: a\n      image: i\n      script: nope.sh\n"
    )
    with pytest.raises(ValidationError, match=r"script file not found: .*nope\.sh"):
        load_fdl(fdl)


@pytest.mark.parametrize(
    "text, match",
    [
        ("functions: [", "not valid YAML"),
        ("foo: 1", "no 'functions:'"),
        ("functions: {oscar: []}", "non-empty list"),
        ("functions: {oscar: [{c: {name: a, image: i}}]}", "'script'"),
    ],
)
def test_fdl_malformed(tmp_path, text, match):
    fdl = tmp_path / "f.yaml"
    fdl.write_text(text)
    with pytest.raises(ValidationError, match=match):
        load_fdl(fdl)


def test_fdl_file_missing(tmp_path):
    with pytest.raises(ValidationError, match="FDL file not found"):
        load_fdl(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"name": None}, "'name' is required"),
        ({"image": ""}, "'image' is required"),
        ({"script": None}, "'script' is required"),
        ({"name": "a" * 40}, "40 characters long; the maximum is 39"),
        ({"name": "Bad_Name"}, "not a DNS label"),
        ({"name": "-x"}, "not a DNS label"),
        ({"name": 5}, "must be a string"),
        ({"input": [{"storage_provider": "minio"}]}, r"input\[0\]: field 'path' is required"),
        ({"input": "x"}, "'input' must be a list"),
        ({"output": [{"path": "b/../x"}]}, r"output\[0\].*'\.\.'"),
        ({"output": [{"path": "B_ad/x"}]}, "not a valid bucket name"),
        ({"environment": {"variables": {"A": {"x": 1}}}}, "must be a scalar"),
    ],
)
def test_validate_service_errors(change, match):
    svc = {**GOOD, **change}
    svc = {k: v for k, v in svc.items() if v is not None}
    with pytest.raises(ValidationError, match=match):
        validate_service(svc)


def test_validate_service_normalizes_copy():
    svc = {**GOOD, "input": [{"path": "in"}], "memory": 1, "extra": {"kept": True}}
    out = validate_service(svc)
    assert out["input"] == [{"path": "svc-1/in", "storage_provider": "minio.default"}]
    assert out["memory"] == "1" and out["extra"] == {"kept": True}
    assert svc["input"] == [{"path": "in"}]  # input untouched
    assert validate_service({**GOOD, "name": "a" * 39})["name"] == "a" * 39


@pytest.mark.parametrize(
    "path, expected",
    [("in", "svc/in"), ("/bucket/dir/", "bucket/dir"), ("b-1/a/b", "b-1/a/b"), ("in/", "svc/in")],
)
def test_normalize_storage_path(path, expected):
    assert normalize_storage_path(path, "svc") == expected


@pytest.mark.parametrize("path", ["", "/", "a//b", "ab/./c", "x/y"])
def test_normalize_storage_path_rejects(path):
    with pytest.raises(ValidationError):
        normalize_storage_path(path, "svc")
