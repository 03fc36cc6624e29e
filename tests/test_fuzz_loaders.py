"""Property-based tests (hypothesis): loaders of hostile input only ever answer with the
project's one-line errors, and what they accept is safe.

Covered: the ``.pipeline`` loader, the FDL loader, artifact manifests, URI parsing and zip
extraction. ``make test`` runs the default profile (hundreds of cases per property, a few
thousand in all); ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``) runs 20,000 per property.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from oscar_elyra._paths import bucket_problem
from oscar_elyra.artifacts import MANIFEST_KIND, Manifest, read_manifest
from oscar_elyra.errors import OscarError, ServiceError, UnsafePathError, ValidationError
from oscar_elyra.fdl import load_fdl
from oscar_elyra.invoke.sync import _extract_zip
from oscar_elyra.pipeline.model import load_pipeline
from oscar_elyra.storage import parse_uri

REF = Path(__file__).resolve().parent / "reference" / "elyra-generic-producer-consumer.pipeline"
REF_DOC = json.loads(REF.read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


def _paths_of(doc, prefix=()):
    """Every (path) of a dict/list document, to replace one part of it."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths_of(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths_of(v, (*prefix, i))


REF_PATHS = list(_paths_of(REF_DOC))[1:]


def _replace(doc, path, value):
    doc = json.loads(json.dumps(doc))
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


pipelines = st.one_of(
    json_values,
    st.builds(_replace, st.just(REF_DOC), st.sampled_from(REF_PATHS), json_values),
)


def _load_file(loader, name: str, raw: bytes) -> None:
    """``loader(path)`` of a file holding ``raw``: a result or ValidationError, nothing else."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(raw)
        try:
            loader(path)
        except ValidationError:
            pass


@given(doc=pipelines)
def test_pipeline_loader(doc):
    _load_file(load_pipeline, "p.pipeline", json.dumps(doc).encode())


@given(raw=st.binary(max_size=200))
def test_pipeline_loader_bytes(raw):
    _load_file(load_pipeline, "p.pipeline", raw)


service = st.fixed_dictionaries(
    {"name": st.text(max_size=12), "image": st.text(max_size=5), "script": st.just("s.sh")},
    optional={
        "input": json_values,
        "output": json_values,
        "environment": json_values,
        "memory": json_values,
        "cpu": json_values,
        "storage_providers": json_values,
    },
)
fdl_docs = st.one_of(
    json_values,
    st.builds(
        lambda svcs, top: {"functions": {"oscar": [{"c": s} for s in svcs]}, **top},
        st.lists(service, min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(["storage_providers", "x"]), json_values, max_size=2),
    ),
)


@pytest.mark.slow
@given(doc=fdl_docs, text=st.one_of(st.none(), st.text(max_size=200)))
def test_fdl_loader(doc, text):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "s.sh").write_text("echo\n")
        path = Path(d) / "f.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(doc), encoding="utf-8")
        try:
            services = load_fdl(path)
        except ValidationError:
            return
        for svc in services:  # what is accepted is sound
            for io_ in (svc.get("input") or []) + (svc.get("output") or []):
                assert bucket_problem(io_["path"].split("/", 1)[0]) is None


@given(data=json_values)
def test_manifest_from_dict(data):
    try:
        Manifest.from_dict(data)
    except ValidationError:
        pass


@given(
    data=st.builds(
        lambda arts, extra: {"kind": MANIFEST_KIND, "artifacts": arts, "extra": extra},
        json_values,
        json_values,
    )
)
def test_manifest_shaped(data):
    try:
        Manifest.from_dict(data)
    except ValidationError:
        pass


@given(raw=st.binary(max_size=300))
def test_read_manifest_bytes(raw):
    _load_file(read_manifest, "m.json", raw)


uris = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, bucket, key: scheme + bucket + "/" + key,
        st.sampled_from(["s3://", "minio.default:", "minio:", "", "s3:///", "http://"]),
        st.text(alphabet="abcAB.-_0123456789/\x00 ", max_size=70),
        st.text(max_size=20),
    ),
)


@given(uri=uris)
def test_uri_parsing(uri):
    try:
        bucket, key = parse_uri(uri)
    except ValidationError:
        return
    assert bucket_problem(bucket) is None and "\x00" not in key


member_names = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.sampled_from(["..", ".", "", "a", "b.txt", "/", "\\", "C:", "x\x00", "ü"]),
        min_size=1,
        max_size=5,
    ).map("/".join),
)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@given(names=st.lists(member_names, min_size=1, max_size=4), symlink=st.booleans())
def test_zip_extraction_stays_inside(names, symlink):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        dest = root / "out"
        dest.mkdir()
        zpath = root / "a.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            for i, name in enumerate(names):
                info = zipfile.ZipInfo(name.split("\x00")[0] or "x")  # zip names end at NUL
                if symlink and i == 0:
                    info.external_attr = 0o120777 << 16
                zf.writestr(info, b"data")
        before = set(os.listdir(root))
        try:
            written = _extract_zip(zpath, dest)
        except (UnsafePathError, ServiceError, ValidationError):
            written = []
        except OscarError as exc:  # any other project error is a bug here
            raise AssertionError(exc) from None
        assert set(os.listdir(root)) == before  # nothing next to the target
        for path in written:
            assert dest.resolve() in path.resolve().parents


def test_zip_of_random_bytes_is_a_project_error():
    with tempfile.TemporaryDirectory() as d:
        zpath = Path(d) / "a.zip"
        zpath.write_bytes(b"PK\x03\x04" + bytes(50))
        try:
            _extract_zip(zpath, Path(d) / "out")
        except OscarError:
            pass
    assert io.BytesIO  # keep the import used for readers adding byte-level cases
