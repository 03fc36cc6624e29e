"""The OSCAR component catalog: connector and schema through Elyra's entry points, the
component YAML through Elyra's and KFP's parsers, catalog install/uninstall, image tag."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import entrypoints
import pytest
import requests
import yaml
from click.testing import CliRunner
from jupyter_dirs import free_port, stop, throwaway_env

from oscar_elyra.elyra import (
    CATALOG_INSTANCE,
    CATALOG_TYPE,
    COMPONENT_IMAGE,
    component_files,
    components_dir,
)
from oscar_elyra.elyra.catalog import EXTENSION, created_at_start

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "oscar_upload.yaml",
    "oscar_invoke_sync.yaml",
    "oscar_invoke_async.yaml",
    "oscar_download.yaml",
    "oscar_deploy_service.yaml",
    "oscar_deepaas_predict.yaml",
}


def _catalog_instance():
    from elyra.pipeline.component_metadata import ComponentCatalogMetadata

    return ComponentCatalogMetadata(
        name="oscar-test",
        display_name="OSCAR",
        schema_name=CATALOG_TYPE,
        metadata={"runtime_type": "KUBEFLOW_PIPELINES", "categories": ["OSCAR"]},
    )


def _entries():
    connector_cls = entrypoints.get_group_named("elyra.component.catalog_types")[
        CATALOG_TYPE
    ].load()
    connector = connector_cls([".yaml"])
    return connector_cls, connector.read_component_definitions(_catalog_instance())


def test_connector_through_entry_point_lists_every_component():
    connector_cls, entries = _entries()
    assert {e.entry_reference["component-id"] for e in entries} == EXPECTED
    assert connector_cls.get_hash_keys() == ["component-id"]
    ids = {e.entry_reference["component-id"]: e.id for e in entries}
    assert len(set(ids.values())) == len(ids)  # one id per component
    # the ops saved in the example pipeline (by Elyra, from this catalog) still name the same
    # components: ids are stable across versions and installations
    saved = json.loads((ROOT / "pipelines" / "digits_kfp.pipeline").read_text())
    ops = [
        (n["op"], json.loads(n["app_data"]["component_source"])["component_ref"]["component-id"])
        for n in saved["pipelines"][0]["nodes"]
    ]
    assert len(ops) == 4 and all(ids[cid] == op for op, cid in ops), (ops, ids)
    for entry in entries:
        assert entry.categories == ["OSCAR"]
        assert type(entry.entry_data).__name__ == "KfpEntryData"


def test_each_component_parses_with_elyra_and_kfp():
    import kfp.components
    from elyra.pipeline.kfp.kfp_component_parser import KfpComponentParser

    parser = KfpComponentParser()
    _, entries = _entries()
    assert len(entries) == len(EXPECTED)
    for entry in entries:
        [component] = parser.parse(entry)
        assert component.name.startswith("OSCAR ")
        props = {p.ref: p for p in component.properties}
        outputs = [p.ref for p in props.values() if p.allowed_input_types == [None]]
        want = ["output_files", "output_manifest"] if "download" in component.name else None
        assert (sorted(outputs) == want) if want else len(outputs) == 1, entry.entry_reference
        for ref, prop in props.items():
            if ref.endswith("manifest") and not ref.startswith("output_"):
                assert prop.allowed_input_types == ["inputpath"]  # wired with inputpath widgets
    for path in component_files():
        spec = kfp.components.load_component_from_file(str(path))
        assert spec.name


def test_unknown_entry_is_skipped_not_fatal():
    connector_cls, _ = _entries()
    connector = connector_cls([".yaml"])
    assert connector.get_entry_data({"component-id": "../pyproject.toml"}, {}) is None
    assert connector.get_entry_data({"component-id": "nope.yaml"}, {}) is None


def test_schema_provider_registered_in_component_catalogs():
    from elyra.metadata.schema import SchemaManager

    schema = SchemaManager.instance().get_schema("component-catalogs", CATALOG_TYPE)
    assert schema["properties"]["metadata"]["properties"]["categories"]["default"] == ["OSCAR"]


def test_yaml_commands_match_entry_points_and_image():
    for path in component_files():
        spec = yaml.safe_load(path.read_text())
        container = spec["implementation"]["container"]
        assert container["image"] == COMPONENT_IMAGE
        command = container["command"]
        assert command[:2] == ["python", "-m"] and command[2].startswith("oscar_elyra.palette.")
        module = importlib.import_module(command[2])
        # the old module path stays an alias (component YAML, exported KFP pipelines)
        alias = importlib.import_module(command[2].replace(".palette.", ".components."))
        assert (alias.build, alias.work, alias.main) == (module.build, module.work, module.main)
        parser: argparse.ArgumentParser = module.build()
        flags = {a.option_strings[0] for a in parser._actions if a.option_strings[0] != "-h"}
        yaml_flags = {a for a in container["args"] if isinstance(a, str) and a.startswith("--")}
        assert yaml_flags == flags, path.name
        # every input/output is passed, and no input carries a secret
        used = {next(iter(a.values())) for a in container["args"] if isinstance(a, dict)}
        names = {i["name"] for i in spec.get("inputs", []) + spec.get("outputs", [])}
        assert used == names
        assert not any(re.search(r"password|token|secret|key", n) for n in names)


def test_dockerfile_and_top_level_components_agree():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COMPONENT_IMAGE" in dockerfile
    tags = set(re.findall(r"ghcr\.io/[\w./-]+:[\w.-]+", dockerfile))
    assert tags <= {COMPONENT_IMAGE}
    top = ROOT / "components"
    assert {p.name for p in top.glob("*.yaml")} == EXPECTED
    for p in top.glob("*.yaml"):
        assert p.resolve() == (components_dir() / p.name).resolve()


def _extension_enabled() -> bool | None:
    """Whether Jupyter servers started now load the oscar_elyra extension (all config levels,
    merged as jupyter_server merges them)."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    manager = ExtensionConfigManager(read_config_path=jupyter_config_path())
    return manager.get_jpserver_extensions().get(EXTENSION)


def test_catalog_install_is_idempotent_and_uninstall_removes(tmp_path, monkeypatch):
    from oscar_elyra.cli import main

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    # installing the package enables the extension (make install does it for editable installs)
    assert _extension_enabled() is True, "run `make install` (it enables the oscar_elyra extension)"
    runner = CliRunner()
    stored = tmp_path / "metadata" / "component-catalogs" / "oscar-components.json"
    first = runner.invoke(main, ["--json", "catalog", "install"])
    assert first.exit_code == 0, first.output
    assert '"created"' in first.output and stored.is_file()
    content = stored.read_text()
    second = runner.invoke(main, ["--json", "catalog", "install"])
    assert second.exit_code == 0 and '"unchanged"' in second.output
    assert stored.read_text() == content
    assert '"schema_name": "oscar-catalog"' in content
    gone = runner.invoke(main, ["--json", "catalog", "uninstall"])
    assert gone.exit_code == 0 and '"removed": true' in gone.output and not stored.exists()
    assert _extension_enabled() is True and not created_at_start()  # not created again at start
    again = runner.invoke(main, ["--json", "catalog", "uninstall"])
    assert again.exit_code == 0 and '"removed": false' in again.output
    back = runner.invoke(main, ["--json", "catalog", "install"])
    assert back.exit_code == 0 and '"created"' in back.output and stored.is_file()
    assert created_at_start()


@pytest.mark.parametrize("other", ["local-directory-catalog"])
def test_install_refuses_to_replace_a_foreign_catalog(tmp_path, monkeypatch, other):
    from elyra.metadata.manager import MetadataManager
    from elyra.metadata.metadata import Metadata

    from oscar_elyra.cli import main

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    MetadataManager(schemaspace="component-catalogs").create(
        "oscar-components",
        Metadata(
            name="oscar-components",
            display_name="mine",
            schema_name=other,
            metadata={"runtime_type": "KUBEFLOW_PIPELINES", "paths": [str(tmp_path)]},
        ),
    )
    result = CliRunner().invoke(main, ["catalog", "install"])
    assert result.exit_code == 2
    assert "already exists" in result.output


def _palette(server: subprocess.Popen, url: str, token: str, deadline: float) -> dict:
    """The palette categories (label -> component labels) once OSCAR is among them; {} when
    the server exits or the deadline passes first."""
    categories: dict = {}
    while time.monotonic() < deadline:
        try:
            resp = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=10)
        except requests.ConnectionError:
            resp = None
        if resp is not None and resp.status_code == 200:
            categories = {
                c["label"]: sorted(n["label"] for n in c["node_types"])
                for c in resp.json()["categories"]
            }
            if "OSCAR" in categories:
                return categories
        try:
            server.wait(timeout=0.5)  # polls while waiting on the server's exit
            return categories
        except subprocess.TimeoutExpired:
            continue
    return categories


@pytest.mark.slow
def test_jupyter_server_start_creates_the_palette(tmp_path):
    """A Jupyter server started with fresh Jupyter dirs and no other command serves the OSCAR
    palette category with every component, and the catalog instance is stored."""
    port, token = free_port(), uuid.uuid4().hex
    env = throwaway_env(tmp_path)
    (tmp_path / "root").mkdir()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter-server"), "--no-browser",
            "--allow-root", f"--port={port}", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path / 'root'}",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/elyra/pipeline/components/KUBEFLOW_PIPELINES"
    try:
        categories = _palette(server, url, token, time.monotonic() + 180)
    finally:
        stop(server)
        log.close()
    server_log = (tmp_path / "server.log").read_text(errors="replace")[-3000:]
    names = sorted(yaml.safe_load(p.read_text())["name"] for p in component_files())
    assert categories.get("OSCAR") == names, f"palette: {categories}\n{server_log}"
    stored = tmp_path / "data" / "metadata" / "component-catalogs" / f"{CATALOG_INSTANCE}.json"
    assert stored.is_file() and CATALOG_TYPE in stored.read_text()
