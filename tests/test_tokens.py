"""How AI4EOSC and EGI users connect: a service token alone, and a token file re-read on change."""

from __future__ import annotations

import os

import pytest

from oscar_elyra import config as config_mod
from oscar_elyra.auth import TokenFileAuth, make_auth
from oscar_elyra.config import resolve_cluster
from oscar_elyra.errors import AuthError
from oscar_elyra.invoke import run
from oscar_elyra.session import connect


def _replace(path, text: str) -> None:
    """Write ``text`` to a new file and rename it over ``path`` (as a hub renewing a token)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def test_service_token_from_environment(tmp_path):
    env = {
        "OSCAR_ENDPOINT": "https://oscar.example.org",
        "OSCAR_SERVICE_TOKEN": "cd" * 32,
        "OSCAR_CLI_CONFIG": str(tmp_path / "none.yaml"),
    }
    cfg = resolve_cluster(env=env)
    assert cfg.service_token == "cd" * 32 and cfg.user is None
    assert "cd" * 32 not in repr(cfg)
    assert cfg.to_env()["OSCAR_SERVICE_TOKEN"] == "cd" * 32


def test_token_file_from_environment_and_egi_default(tmp_path, monkeypatch):
    f = tmp_path / "access_token"
    f.write_text("tok-1\n")
    base = {"OSCAR_ENDPOINT": "https://oscar.example.org", "OSCAR_CLI_CONFIG": str(tmp_path / "x")}
    cfg = resolve_cluster(env={**base, "OSCAR_TOKEN_FILE": str(f)})
    assert cfg.token_file == str(f)
    assert isinstance(make_auth(cfg), TokenFileAuth)
    monkeypatch.setattr(config_mod, "EGI_TOKEN_FILE", str(f))
    assert resolve_cluster(env=base).token_file == str(f)  # EGI Notebooks' file by default
    monkeypatch.setattr(config_mod, "EGI_TOKEN_FILE", str(tmp_path / "absent"))
    assert resolve_cluster(env=base).token_file is None


def test_token_file_errors_are_clear(tmp_path):
    auth = TokenFileAuth(tmp_path / "missing")
    with pytest.raises(AuthError, match="OSCAR_TOKEN_FILE"):
        auth.token()
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(AuthError, match="empty"):
        TokenFileAuth(empty).token()


def test_run_with_only_endpoint_and_service_token(cluster, client, monkeypatch, tmp_path):
    token = client.get_service("cowsay")["token"]
    monkeypatch.setenv("OSCAR_ENDPOINT", cluster.endpoint)
    monkeypatch.setenv("OSCAR_SERVICE_TOKEN", token)
    monkeypatch.setenv("OSCAR_CLI_CONFIG", str(tmp_path / "none.yaml"))
    sess = connect()
    assert sess.config.user is None and sess.config.password is None
    assert "Moo" in run("cowsay", {"message": "Moo"}, client=sess.client).text
    with pytest.raises(AuthError, match="only allows /run and /job"):
        sess.client.list_services()


def test_token_file_replaced_mid_session(cluster, client, tmp_path, monkeypatch):
    """One client, the file renewed between calls: each call uses the file's current token."""
    f = tmp_path / "access_token"
    f.write_text(client.get_service("cowsay")["token"] + "\n")
    monkeypatch.setenv("OSCAR_ENDPOINT", cluster.endpoint)
    monkeypatch.setenv("OSCAR_TOKEN_FILE", str(f))
    monkeypatch.setenv("OSCAR_CLI_CONFIG", str(tmp_path / "none.yaml"))
    sess = connect()
    assert "hi" in run("cowsay", {"message": "hi"}, client=sess.client).text
    # the embedded cluster takes a service's own token as bearer: a token for another
    # service is refused, so which token went out shows which one the file held
    _replace(f, client.get_service("grayify")["token"])
    with pytest.raises(AuthError):
        run("cowsay", {"message": "hi"}, client=sess.client)
    _replace(f, client.get_service("cowsay")["token"])
    assert "again" in run("cowsay", {"message": "again"}, client=sess.client).text
