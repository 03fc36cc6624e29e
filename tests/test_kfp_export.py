"""``digits_kfp.pipeline`` exported by Elyra's own CLI (``elyra-pipeline export``) to KFP IR YAML:
the tasks, images, commands, wiring, caching, pod labels and run folder a Kubeflow run gets,
and no secret in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oscar_elyra.elyra import COMPONENT_IMAGE, components_dir

pytestmark = pytest.mark.slow  # the export (three Elyra CLI runs) takes a while

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "s3cr3t-not-for-kfp"
#: node label -> (palette module, component YAML)
TASKS = {
    "upload": "upload",
    "grayify-sync": "invoke_sync",
    "digits-async": "invoke_async",
    "download": "download",
}


def _run(args: list[str], env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    res = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[dict, dict, str]:
    """(pipeline spec, kubernetes platform spec, raw text) of the exported digits_kfp."""
    tmp = tmp_path_factory.mktemp("kfp-export")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OSCAR_", "ELYRA_"))},
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        # settings a careless export could leak into the tasks
        "OSCAR_ENDPOINT": "https://oscar.example.org",
        "OSCAR_USER": "someone",
        "OSCAR_PASSWORD": SECRET,
    }
    (tmp / "runtime").mkdir()
    _run([str(BIN / "oscar-elyra"), "catalog", "install"], env)
    _run(
        [
            str(BIN / "elyra-metadata"), "create", "runtimes", "--schema_name=kfp",
            "--name=kfp-test", "--display_name=KFP test",
            "--api_endpoint=http://127.0.0.1:9/pipeline", "--cos_endpoint=http://127.0.0.1:9",
            "--cos_auth_type=KUBERNETES_SECRET", "--cos_secret=cos-secret",
            f"--cos_username={SECRET}", f"--cos_password={SECRET}", "--cos_bucket=bucket",
            "--engine=Argo",
        ],
        env,
    )  # fmt: skip
    out = tmp / "digits_kfp.yaml"
    _run(
        [
            str(BIN / "elyra-pipeline"), "export", "--runtime-config", "kfp-test",
            "--output", str(out), "pipelines/digits_kfp.pipeline",
        ],
        env,
    )  # fmt: skip
    text = out.read_text()
    spec, platform = list(yaml.safe_load_all(text))
    return spec, platform["platforms"]["kubernetes"], text


def _tasks(spec: dict) -> dict[str, dict]:
    """Exported tasks by their node label (``taskInfo.name``)."""
    return {t["taskInfo"]["name"]: t for t in spec["root"]["dag"]["tasks"].values()}


def _executor(spec: dict, task: dict) -> dict:
    comp = spec["components"][task["componentRef"]["name"]]
    return spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]


def test_tasks_images_and_commands(exported):
    spec, _, _ = exported
    tasks = _tasks(spec)
    assert set(tasks) == set(TASKS)  # the nodes' own labels name the tasks
    for label, module in TASKS.items():
        container = _executor(spec, tasks[label])
        assert container["image"] == COMPONENT_IMAGE
        assert container["command"] == ["python", "-m", f"oscar_elyra.palette.{module}"]
        # the arguments the component YAML declares, in its order
        declared = yaml.safe_load((components_dir() / f"oscar_{module}.yaml").read_text())
        flags = [a for a in declared["implementation"]["container"]["args"] if isinstance(a, str)]
        assert [a for a in container["args"] if a.startswith("--")] == flags
        assert "env" not in container  # settings come from the PodDefault, not the spec


def test_wiring_passes_manifests_as_artifacts(exported):
    spec, _, _ = exported
    tasks = _tasks(spec)
    ids = {t["taskInfo"]["name"]: tid for tid, t in spec["root"]["dag"]["tasks"].items()}
    chain = [
        ("upload", "manifest", "grayify-sync"),
        ("grayify-sync", "results", "digits-async"),
        ("digits-async", "results", "download"),
    ]
    for producer, output, consumer in chain:
        task = tasks[consumer]
        source = task["inputs"]["artifacts"]["input_manifest"]["taskOutputArtifact"]
        assert source == {"producerTask": ids[producer], "outputArtifactKey": output}
        assert task["dependentTasks"] == [ids[producer]]
        container = _executor(spec, task)
        i = container["args"].index("--input-manifest")
        assert container["args"][i + 1] == "{{$.inputs.artifacts['input_manifest'].path}}"
    assert "dependentTasks" not in tasks["upload"]
    assert tasks["grayify-sync"]["inputs"]["parameters"]["service"]["runtimeValue"] == {
        "constant": "grayify"
    }
    assert tasks["digits-async"]["inputs"]["parameters"]["service"]["runtimeValue"] == {
        "constant": "digits"
    }


def test_download_output_is_a_kfp_artifact(exported):
    spec, _, _ = exported
    task = _tasks(spec)["download"]
    outputs = spec["components"][task["componentRef"]["name"]]["outputDefinitions"]
    assert set(outputs["artifacts"]) == {"files", "manifest"}
    args = _executor(spec, task)["args"]
    assert args[args.index("--output-dir") + 1] == "{{$.outputs.artifacts['files'].path}}"
    assert not any(a.startswith("/tmp") for a in args)


def test_caching_off_and_one_run_folder(exported):
    spec, _, _ = exported
    for label, task in _tasks(spec).items():
        # KFP would skip an OSCAR call whose inputs did not change: caching must be off
        assert task.get("cachingOptions", {}).get("enableCache") is not True, label
        # the KFP backend replaces an input constant equal to this placeholder with the run id
        run_id = task["inputs"]["parameters"]["run_id"]["runtimeValue"]
        assert run_id == {"constant": "{{$.pipeline_job_uuid}}"}, label
        args = _executor(spec, task)["args"]
        assert args[args.index("--run-id") + 1] == "{{$.inputs.parameters['run_id']}}"


def test_pod_label_selects_the_credentials_poddefault_and_no_secret(exported):
    spec, platform, text = exported
    executors = platform["deploymentSpec"]["executors"]
    for task in _tasks(spec).values():
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        assert executors[label]["podMetadata"]["labels"]["oscar-credentials"] == "true"
    assert SECRET not in text
    assert "someone" not in text and "oscar.example.org" not in text
    assert "OSCAR_PASSWORD" not in text
