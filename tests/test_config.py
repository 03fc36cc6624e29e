"""Cluster resolution: precedence, strict booleans, oscar-cli config, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oscar_elyra.cli import exit_code
from oscar_elyra.config import ClusterConfig, parse_bool, resolve_cluster
from oscar_elyra.errors import ConfigError, is_bad_input

CLI_YAML = """\
oscar:
  prod:
    endpoint: https://prod.example.org/
    auth_user: produser
    auth_password: prod-password-123
    ssl_verify: false
  egi:
    endpoint: https://egi.example.org
    oidc_account_name: egi-account
    oidc_refresh_token: egi-refresh-token-456
default: egi
"""


@pytest.fixture
def cli_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CLI_YAML)
    return path


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing configured (own empty data dir, no oscar-cli file)."""
    return {
        "OSCAR_ELYRA_DATA_DIR": str(tmp_path / "no-local"),
        "OSCAR_CLI_CONFIG": str(tmp_path / "missing.yaml"),
    }


def _fake_running_local(data_dir: Path, endpoint: str, password: str) -> None:
    """The state files `oscar-elyra local up` writes, recording this (live) process."""
    from oscar_elyra._paths import write_json_atomic

    write_json_atomic(
        data_dir / "credentials.json",
        {"user": "oscar", "password": password, "s3_access_key": "ak", "s3_secret_key": "sk"},
        mode=0o600,
    )
    write_json_atomic(
        data_dir / "cluster.json",
        {
            "pid": os.getpid(),
            "endpoint": endpoint,
            "user": "oscar",
            "credentials_file": str(data_dir / "credentials.json"),
        },
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (True, True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        (False, False),
        (0, False),
    ],
)
def test_parse_bool_accepts(value, expected):
    assert parse_bool(value, "X") is expected


@pytest.mark.parametrize("value", ["", "maybe", "2", "ture", None, "nope"])
def test_parse_bool_rejects_unknown(value):
    with pytest.raises(ConfigError, match="X: .* is not a boolean"):
        parse_bool(value, "X")


def test_nothing_configured_error_names_variables_and_local_up(base_env):
    with pytest.raises(ConfigError) as info:
        resolve_cluster(env=base_env)
    msg = str(info.value)
    for needle in (
        "OSCAR_ENDPOINT",
        "OSCAR_USER",
        "OSCAR_PASSWORD",
        "OSCAR_TOKEN",
        "oscar-elyra local up",
        "missing.yaml",
    ):
        assert needle in msg
    assert is_bad_input(info.value) and exit_code(info.value) == 2


def test_env_configuration(base_env):
    env = {
        **base_env,
        "OSCAR_ENDPOINT": "https://oscar.example.org/",
        "OSCAR_USER": "alice",
        "OSCAR_PASSWORD": "env-password-1",
        "OSCAR_CLUSTER_ID": "mine",
    }
    cfg = resolve_cluster(env=env)
    assert (cfg.cluster_id, cfg.endpoint, cfg.user, cfg.password) == (
        "mine",
        "https://oscar.example.org",
        "alice",
        "env-password-1",
    )
    assert cfg.ssl_verify is True
    assert cfg.source == "environment"


def test_arguments_beat_environment(base_env):
    env = {
        **base_env,
        "OSCAR_ENDPOINT": "https://env.example.org",
        "OSCAR_USER": "envuser",
        "OSCAR_PASSWORD": "env-password-1",
        "OSCAR_SSL_VERIFY": "false",
    }
    cfg = resolve_cluster(
        endpoint="https://arg.example.org", password="arg-password-2", ssl_verify=True, env=env
    )
    assert cfg.endpoint == "https://arg.example.org"
    assert cfg.password == "arg-password-2"
    assert cfg.user == "envuser"  # not given as argument: from the environment
    assert cfg.ssl_verify is True


def test_environment_beats_oscar_cli_file(base_env, cli_file):
    env = {
        **base_env,
        "OSCAR_CLI_CONFIG": str(cli_file),
        "OSCAR_ENDPOINT": "https://env.example.org",
        "OSCAR_TOKEN": "env-access-token",
    }
    cfg = resolve_cluster(env=env)
    assert cfg.endpoint == "https://env.example.org"
    assert cfg.token == "env-access-token"
    # credentials of the oscar-cli default cluster are not sent to another endpoint
    assert cfg.refresh_token is None and cfg.oidc_account is None


def test_oscar_cli_file_default_and_selection(base_env, cli_file):
    env = {**base_env, "OSCAR_CLI_CONFIG": str(cli_file)}
    cfg = resolve_cluster(env=env)
    assert cfg.cluster_id == "egi"
    assert cfg.oidc_account == "egi-account"
    assert cfg.refresh_token == "egi-refresh-token-456"
    assert str(cli_file) in cfg.source

    prod = resolve_cluster("prod", env=env)
    assert (prod.endpoint, prod.user, prod.password, prod.ssl_verify) == (
        "https://prod.example.org",
        "produser",
        "prod-password-123",
        False,
    )

    # explicit config_file argument wins over OSCAR_CLI_CONFIG
    other = cli_file.parent / "other.yaml"
    other.write_text("oscar:\n  only:\n    endpoint: http://only.example.org\n")
    assert resolve_cluster(env=env, config_file=other).cluster_id == "only"  # single entry


def test_oscar_cli_cluster_id_env_selects_entry(base_env, cli_file):
    env = {**base_env, "OSCAR_CLI_CONFIG": str(cli_file), "OSCAR_CLUSTER_ID": "prod"}
    assert resolve_cluster(env=env).user == "produser"


def test_unknown_cluster_lists_known_ones(base_env, cli_file):
    env = {**base_env, "OSCAR_CLI_CONFIG": str(cli_file)}
    with pytest.raises(ConfigError, match=r"'nope' is not in .*known: egi, prod"):
        resolve_cluster("nope", env=env)


def test_oscar_cli_without_default_among_many(base_env, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "oscar:\n  a: {endpoint: http://a.example}\n  b: {endpoint: http://b.example}\n"
    )
    with pytest.raises(ConfigError, match="no valid 'default'.*--cluster"):
        resolve_cluster(env=base_env, config_file=path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("oscar: [1, 2]\n", "must map cluster ids"),
        ("oscar: {a: {auth_user: x}}\n", "has no 'endpoint'"),
        (
            "oscar: {a: {endpoint: 'http://a', ssl_verify: sometimes}}\ndefault: a\n",
            "ssl_verify.*not a boolean",
        ),
        ("oscar: {a: {endpoint: 'ftp://a'}}\n", "not an http"),
        ("oscar: [\n", "not valid YAML"),
    ],
)
def test_malformed_oscar_cli_file(base_env, tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        resolve_cluster(env=base_env, config_file=path)


def test_ssl_verify_env_strict(base_env):
    env = {**base_env, "OSCAR_ENDPOINT": "https://x.example.org", "OSCAR_SSL_VERIFY": "perhaps"}
    with pytest.raises(ConfigError, match="OSCAR_SSL_VERIFY"):
        resolve_cluster(env=env)
    env["OSCAR_SSL_VERIFY"] = "0"
    assert resolve_cluster(env=env).ssl_verify is False
    env["OSCAR_SSL_VERIFY"] = "yes"
    assert resolve_cluster(env=env).ssl_verify is True


def test_token_endpoint_and_client_id_from_env(base_env):
    env = {
        **base_env,
        "OSCAR_ENDPOINT": "https://x.example.org",
        "OSCAR_REFRESH_TOKEN": "refresh-abc-123",
        "OSCAR_TOKEN_ENDPOINT": "https://idp.example.org/token",
        "OSCAR_CLIENT_ID": "cid",
    }
    cfg = resolve_cluster(env=env)
    assert (cfg.refresh_token, cfg.token_endpoint, cfg.client_id) == (
        "refresh-abc-123",
        "https://idp.example.org/token",
        "cid",
    )


def test_bad_endpoint(base_env):
    with pytest.raises(ConfigError, match="not an http"):
        resolve_cluster(endpoint="oscar.example.org", env=base_env)


def test_running_embedded_cluster_is_the_last_resort(base_env, tmp_path, cli_file):
    data_dir = Path(base_env["OSCAR_ELYRA_DATA_DIR"])
    _fake_running_local(data_dir, "http://127.0.0.1:5999", "local-password-9")
    cfg = resolve_cluster(env=base_env)
    assert (cfg.cluster_id, cfg.endpoint, cfg.user, cfg.password, cfg.ssl_verify) == (
        "local",
        "http://127.0.0.1:5999",
        "oscar",
        "local-password-9",
        False,
    )
    # an oscar-cli file comes first
    assert resolve_cluster(env={**base_env, "OSCAR_CLI_CONFIG": str(cli_file)}).cluster_id == "egi"
    # an endpoint given without credentials borrows those of the same endpoint only
    same = resolve_cluster(endpoint="http://127.0.0.1:5999/", env=base_env)
    assert same.password == "local-password-9"
    other = resolve_cluster(endpoint="http://127.0.0.1:6000", env=base_env)
    assert other.password is None
    # a dead pid is not a running cluster
    info = json.loads((data_dir / "cluster.json").read_text())
    info["pid"] = 2**22 + 12345
    (data_dir / "cluster.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="no OSCAR cluster configured"):
        resolve_cluster(env=base_env)


def test_repr_hides_secrets():
    cfg = ClusterConfig(
        cluster_id="c",
        endpoint="https://c.example.org",
        user="u",
        password="repr-password-77",
        token="repr-token-88",
        refresh_token="repr-refresh-99",
    )
    text = repr(cfg) + str(cfg)
    for secret in ("repr-password-77", "repr-token-88", "repr-refresh-99"):
        assert secret not in text
    assert "password='***'" in text and "user='u'" in text


def test_config_is_frozen():
    cfg = ClusterConfig(cluster_id="c", endpoint="https://c.example.org")
    with pytest.raises(AttributeError):
        cfg.endpoint = "https://other"  # type: ignore[misc]
    assert cfg.with_(user="x").user == "x"
