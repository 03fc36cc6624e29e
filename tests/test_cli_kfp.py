"""``oscar-elyra kfp credentials``: the Secret and the Kubeflow PodDefault for palette tasks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.config import ENV_VARS
from oscar_elyra.elyra import POD_LABEL

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "pw-7f3a-not-in-logs"
ENV = {
    "OSCAR_ENDPOINT": "https://oscar.example.org",
    "OSCAR_USER": "alice",
    "OSCAR_PASSWORD": PASSWORD,
}


def _cli(*args: str, env: dict | None = None):
    return CliRunner(mix_stderr=False).invoke(
        main, ["kfp", "credentials", *args], env=env if env is not None else ENV
    )


def test_prints_secret_and_poddefault_for_the_pipeline_label(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _cli("--namespace", "kubeflow-alice")
    assert res.exit_code == 0, res.stderr
    secret, poddefault = yaml.safe_load_all(res.stdout)
    assert secret["kind"] == "Secret" and secret["metadata"]["namespace"] == "kubeflow-alice"
    data = secret["stringData"]
    assert data["endpoint"] == "https://oscar.example.org" and data["user"] == "alice"
    assert data["password"] == PASSWORD and data["ssl_verify"] == "true"

    assert (
        poddefault["apiVersion"] == "kubeflow.org/v1alpha1" and poddefault["kind"] == "PodDefault"
    )
    assert poddefault["metadata"]["namespace"] == "kubeflow-alice"
    spec = poddefault["spec"]
    assert spec["selector"] == {"matchLabels": {POD_LABEL: "true"}}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["env"]}
    # every key of the Secret reaches the task as the OSCAR_* variable config.py reads
    for key in data:
        var = next(v for v, r in refs.items() if r["key"] == key)
        assert var in ENV_VARS and refs[var]["name"] == secret["metadata"]["name"]
    # the example KFP pipeline labels its nodes so that this PodDefault selects them
    doc = json.loads((REPO / "pipelines" / "digits_kfp.pipeline").read_text())
    defaults = doc["pipelines"][0]["app_data"]["properties"]["pipeline_defaults"]
    assert {"key": POD_LABEL, "value": "true"} in defaults["kubernetes_pod_labels"]
    assert list(tmp_path.iterdir()) == []  # nothing written unless asked


def test_output_file_is_private_and_stdout_stays_clean(tmp_path):
    out = tmp_path / "oscar-credentials.yaml"
    res = _cli("-n", "team", "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert PASSWORD not in res.stdout + res.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    secret, _ = yaml.safe_load_all(out.read_text())
    assert secret["stringData"]["password"] == PASSWORD


def test_refresh_token_and_warnings():
    env = {
        "OSCAR_ENDPOINT": "http://127.0.0.1:8080",
        "OSCAR_TOKEN": "access-token-abc",
    }
    res = _cli("-n", "team", env=env)
    assert res.exit_code == 0, res.stderr
    secret, _ = yaml.safe_load_all(res.stdout)
    assert secret["stringData"]["token"] == "access-token-abc"
    assert "user" not in secret["stringData"]
    assert "cannot reach it" in res.stderr and "expires" in res.stderr


def test_bad_input_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args, env, words in [
        (["-n", "Not_A_Namespace"], ENV, "not a valid Kubernetes name"),
        (["-n", "team", "--secret-name", "UPPER"], ENV, "not a valid Kubernetes name"),
        (["-n", "team"], {"OSCAR_CLI_CONFIG": str(tmp_path / "none.yaml")}, "no OSCAR cluster"),
        (
            ["-n", "team"],
            {"OSCAR_ENDPOINT": "https://oscar.example.org", "OSCAR_OIDC_ACCOUNT": "egi"},
            "oidc-agent account works only on this machine",
        ),
    ]:
        res = _cli(*args, env=env)
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []
