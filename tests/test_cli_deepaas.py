"""CLI `oscar-elyra deepaas help|predict|map` against the embedded cluster's deepaas-digits."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.examples.digits import sample_digits

pytest.importorskip("deepaas", reason="deepaas not installed: pip install -e '.[local]'")


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("cli-deepaas")
    e: dict = {k: None for k in os.environ if k.startswith("OSCAR_")}
    e.update(OSCAR_CLI_CONFIG=str(tmp / "none.yaml"), OSCAR_ELYRA_DATA_DIR=str(tmp))
    e.update(cluster.env())
    return e


def _cli(env, *args):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_help_and_predict(env, tmp_path):
    res = _cli(env, "deepaas", "help", "deepaas-digits")
    assert res.exit_code == 0, res.output
    assert "image (file, required)" in res.output and "top_k (int, default 3)" in res.output
    res = _cli(env, "--json", "deepaas", "help", "deepaas-digits")
    assert [a["name"] for a in json.loads(res.output)] == ["image", "top_k", "ink"]
    (png,) = sample_digits(tmp_path, count=1)
    res = _cli(
        env, "deepaas", "predict", "deepaas-digits", "--file", f"image={png}", "--arg", "top_k=3"
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["digit"] == 0 and len(out["top_k"]) == 3


def test_bad_argument_exit_2_naming_valid_ones(env, tmp_path):
    (png,) = sample_digits(tmp_path, count=1)
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["deepaas", "predict", "deepaas-digits", "--file", f"image={png}", "--arg", "k=3"],
        env=env,
    )
    assert res.exit_code == 2
    assert "'k'" in res.output and "top_k (int, default 3)" in res.output


def test_only_endpoint_and_service_token(cluster, client, tmp_path):
    token = client.get_service("deepaas-digits")["token"]
    env = {k: None for k in os.environ if k.startswith("OSCAR_")}
    env["OSCAR_CLI_CONFIG"] = str(tmp_path / "none.yaml")
    (png,) = sample_digits(tmp_path, count=1)
    res = _cli(
        env,
        "--endpoint",
        cluster.endpoint,
        "--token",
        token,
        "deepaas",
        "predict",
        "deepaas-digits",
        "--file",
        f"image={png}",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["digit"] == 0
    assert token not in res.output


def test_map_directory(env, tmp_path):
    inputs = tmp_path / "in"
    sample_digits(inputs, count=4)
    (inputs / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        ["deepaas", "map", "deepaas-digits", str(inputs), "-o", str(out), "--file-arg", "image"],
        env=env,
    )
    assert res.exit_code == 1, res.output
    assert "4 ok, 1 failed" in res.output
    assert "broken.png" in res.output
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 5
    assert (out / "broken.log").exists() and not (out / "broken.json").exists()
