"""Each palette component run exactly as its YAML command line, against the embedded cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from oscar_elyra._paths import sha256_file
from oscar_elyra.artifacts import read_manifest
from oscar_elyra.elyra import components_dir
from oscar_elyra.palette import COMPONENTS

#: what KFP resolves ``{{$.pipeline_job_uuid}}`` to in one run
RUN_ID = "0b6f7c2e-kfp-run"


def command_line(component: str, values: dict, paths: dict) -> list[str]:
    """The container command + args of ``component`` with KFP placeholders filled in
    (``python`` -> this interpreter), as a KFP launcher would build them."""
    spec = yaml.safe_load((components_dir() / component).read_text())
    defaults = {i["name"]: i.get("default", "") for i in spec.get("inputs", [])}
    container = spec["implementation"]["container"]
    argv: list[str] = []
    for arg in container["command"] + container["args"]:
        if isinstance(arg, str):
            argv.append(sys.executable if not argv and arg == "python" else arg)
        elif "inputValue" in arg:
            argv.append(str(values.get(arg["inputValue"], defaults[arg["inputValue"]])))
        else:  # inputPath / outputPath
            argv.append(str(paths[next(iter(arg.values()))]))
    return argv


def run_component(component, values, paths, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        command_line(component, values, paths),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


#: ``python -m MODULE --help`` for each MODULE of argv, as ``-m`` runs it (runpy, as
#: ``__main__``), in one interpreter: the output of each, then a separator line
RUN_HELPS = """\
import runpy, sys
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    try:
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        print(f"exit {exc.code or 0}")
    print("=" * 8, flush=True)
"""


@pytest.mark.parametrize("package", ["oscar_elyra.palette", "oscar_elyra.components"])
def test_entry_points_and_their_alias_run_with_python_m(package):
    names = list(COMPONENTS)
    done = subprocess.run(
        [sys.executable, "-c", RUN_HELPS, *(f"{package}.{n}" for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    helps = done.stdout.split("=" * 8 + "\n")
    assert len(helps) == len(names) + 1 and helps[-1] == "", done.stdout
    for name, text in zip(names, helps, strict=False):
        assert text.endswith("exit 0\n"), text
        assert f"usage: python -m oscar_elyra.palette.{name}" in text
        assert COMPONENTS[name] in text  # the module docstring names its YAML
    listing = subprocess.run(
        [sys.executable, "-m", package], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and all(f in listing.stdout for f in COMPONENTS.values())


@pytest.fixture()
def env(cluster_env):
    e = {k: v for k, v in cluster_env.items() if not k.startswith("ELYRA_")}
    e["OSCAR_ARTIFACTS_URI"] = f"s3://components-test/{uuid.uuid4().hex[:8]}"
    return e


@pytest.mark.slow
def test_upload_sync_async_download_chain(env, tmp_path, cluster):
    folder = tmp_path / "digits"
    up = run_component(
        "oscar_upload.yaml",
        {"source": folder, "pattern": "*.png", "sample_digits": 6, "run_id": RUN_ID},
        {"manifest": tmp_path / "kfp" / "upload.json"},
        env,
        tmp_path,
    )
    assert up.returncode == 0, up.stderr
    assert "uploaded 6 file(s)" in up.stdout
    uploaded = read_manifest(tmp_path / "kfp" / "upload.json").artifacts
    # the run id KFP puts in place of {{$.pipeline_job_uuid}} names the run folder
    run_folder = f"{env['OSCAR_ARTIFACTS_URI']}/{RUN_ID}/"
    assert len(uploaded) == 6 and all(a.uri.startswith(run_folder) for a in uploaded)
    for art in uploaded:
        assert art.sha256 == sha256_file(folder / art.name)

    gray = run_component(
        "oscar_invoke_sync.yaml",
        {"service": "grayify", "run_id": RUN_ID},
        {"input_manifest": tmp_path / "kfp" / "upload.json", "results": tmp_path / "gray.json"},
        env,
        tmp_path,
    )
    assert gray.returncode == 0, gray.stderr
    grayed = read_manifest(tmp_path / "gray.json").artifacts
    assert sorted(a.name for a in grayed) == sorted(a.name for a in uploaded)
    assert all(a.service == "grayify" and a.content_type == "image/png" for a in grayed)
    assert all(a.uri.startswith(run_folder) for a in grayed)
    assert {a.source for a in grayed} == {a.uri for a in uploaded}

    digits = run_component(
        "oscar_invoke_async.yaml",
        {"service": "digits", "timeout": 240, "run_id": RUN_ID},
        {"input_manifest": tmp_path / "gray.json", "results": tmp_path / "digits.json"},
        env,
        tmp_path,
    )
    assert digits.returncode == 0, digits.stderr
    outputs = read_manifest(tmp_path / "digits.json").artifacts
    assert len(outputs) == 6 and all(a.name.endswith(".json") for a in outputs)
    assert all(a.run == RUN_ID for a in outputs)

    down = run_component(
        "oscar_download.yaml",
        {},
        {
            "input_manifest": tmp_path / "digits.json",
            "files": tmp_path / "out",  # the KFP output artifact's local path
            "manifest": tmp_path / "down.json",
        },
        env,
        tmp_path,
    )
    assert down.returncode == 0, down.stderr
    local = read_manifest(tmp_path / "down.json").artifacts
    predicted = {}
    for art in local:
        path = Path(art.path)
        assert path.parent == tmp_path / "out" and sha256_file(path) == art.sha256
        result = json.loads(path.read_text())
        (sample,) = re.findall(r"digit-\d-\d{4}\.png", result["input"])  # the uploaded name
        predicted[sample] = result["digit"]
    # the label is in the file name (digit-<d>-NNNN); the classifier is deterministic (logistic
    # regression, lbfgs) and gets each sample right but one, always the same: 0005 reads as 9
    expected = {f"digit-{d}-{d:04d}.png": d for d in range(6)} | {"digit-5-0005.png": 9}
    assert predicted == expected


def test_deploy_service_creates_then_updates(env, tmp_path, cluster):
    from oscar_elyra.local import examples

    cowsay = next(p for p in examples.fdl_paths() if p.stem == "cowsay")
    name = f"cowsay-{uuid.uuid4().hex[:6]}"
    shutil.copy(cowsay.parent / "script.sh", tmp_path / "script.sh")
    fdl = tmp_path / "svc.yaml"
    fdl.write_text(
        cowsay.read_text().replace("name: cowsay", f"name: {name}").replace("cowsay/", f"{name}/")
    )
    out = tmp_path / "services.json"
    first = run_component(
        "oscar_deploy_service.yaml", {"fdl": fdl}, {"services": out}, env, tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(out.read_text()) == [{"service": name, "action": "created"}]
    again = run_component(
        "oscar_deploy_service.yaml", {"fdl": fdl.read_text()}, {"services": out}, env, tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(out.read_text()) == [{"service": name, "action": "updated"}]


def test_bad_inputs_fail_with_one_line(env, tmp_path, cluster):
    manifest = tmp_path / "in.json"
    up = run_component(
        "oscar_upload.yaml",
        {"source": tmp_path / "missing-folder"},
        {"manifest": manifest},
        env,
        tmp_path,
    )
    assert up.returncode == 2
    assert up.stderr.strip().splitlines() == [
        f"Error: input folder or file {str(tmp_path / 'missing-folder')!r} does not exist"
    ]
    assert not manifest.exists()

    (tmp_path / "a.txt").write_text("hi")
    assert (
        run_component(
            "oscar_upload.yaml",
            {"source": tmp_path / "a.txt"},
            {"manifest": manifest},
            env,
            tmp_path,
        ).returncode
        == 0
    )
    out = tmp_path / "never.json"
    missing = run_component(
        "oscar_invoke_sync.yaml",
        {"service": "no-such-service"},
        {"input_manifest": manifest, "results": out},
        env,
        tmp_path,
    )
    assert missing.returncode == 1
    [line] = missing.stderr.strip().splitlines()
    assert "service 'no-such-service' is not deployed" in line
    assert not out.exists()
    bad_timeout = run_component(
        "oscar_invoke_async.yaml",
        {"service": "digits", "timeout": "soon"},
        {"input_manifest": manifest, "results": out},
        env,
        tmp_path,
    )
    assert bad_timeout.returncode == 2
    assert "timeout='soon' is not a whole number" in bad_timeout.stderr
    assert env["OSCAR_PASSWORD"] not in missing.stderr + missing.stdout
