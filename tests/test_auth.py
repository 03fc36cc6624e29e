"""Auth: Basic, bearer, OIDC refresh-token grant against a real token endpoint, redaction."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests

from oscar_elyra.auth import BearerAuth, OidcAgentAuth, RefreshTokenAuth, jwt_claims, make_auth
from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig
from oscar_elyra.errors import AuthError, ConfigError
from oscar_elyra.redact import install_log_redaction, redact, register_secret, registered_secrets


def make_jwt(**claims) -> str:
    def enc(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


class _Server:
    """A real HTTP server on 127.0.0.1 in a thread: an OIDC issuer + a target API."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, list[str]]] = []
        self.api_auth: list[str | None] = []
        self.lifetime = 3600
        self.fail: str | None = None  # error_description to answer with (status 400)
        self.rotate = False
        self.opaque = False  # opaque (non-JWT) access tokens: only expires_in tells the lifetime
        self.answer: tuple[int, bytes] | None = None  # a fixed raw answer to token requests
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                if self.path == "/realms/test/.well-known/openid-configuration":
                    self._send(200, {"token_endpoint": owner.url + "/realms/test/token"})
                else:
                    owner.api_auth.append(self.headers.get("Authorization"))
                    self._send(200, {"version": "test"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                owner.token_requests.append(form)
                if owner.fail is not None:
                    self._send(400, {"error": "invalid_grant", "error_description": owner.fail})
                    return
                if owner.answer is not None:
                    code, body = owner.answer
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                n = len(owner.token_requests)
                access = make_jwt(
                    exp=int(time.time()) + owner.lifetime, n=n, azp=form.get("client_id", [""])[0]
                )
                if owner.opaque:
                    access = f"opaque-access-{n}"
                payload = {"access_token": access, "expires_in": owner.lifetime}
                if owner.rotate:
                    payload["refresh_token"] = f"rotated-refresh-{n}"
                self._send(200, payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def idp():
    server = _Server()
    yield server
    server.close()


def _header(auth) -> str:
    return (
        requests.Request("GET", "http://127.0.0.1/x", auth=auth).prepare().headers["Authorization"]
    )


def test_basic_auth_header():
    cfg = ClusterConfig(cluster_id="c", endpoint="http://h", user="oscar", password="basic-pw-1")
    expected = "Basic " + base64.b64encode(b"oscar:basic-pw-1").decode()
    assert _header(make_auth(cfg)) == expected
    # the header value itself is redacted wherever it might be printed
    assert "basic-pw-1" not in redact(expected) and base64.b64encode(
        b"oscar:basic-pw-1"
    ).decode() not in redact(expected)


def test_static_bearer_and_expired_token():
    token = make_jwt(exp=int(time.time()) + 600, sub="me")
    cfg = ClusterConfig(cluster_id="c", endpoint="http://h", token=token)
    assert _header(make_auth(cfg)) == f"Bearer {token}"
    expired = make_jwt(exp=int(time.time()) - 5)
    with pytest.raises(AuthError, match="expired.*OSCAR_REFRESH_TOKEN"):
        _header(BearerAuth(expired))
    with pytest.raises(AuthError, match="refusing to send an empty bearer token"):
        BearerAuth("")


def test_refresh_grant_client_id_from_azp_and_caching(idp):
    refresh = make_jwt(azp="my-client", iss=idp.url + "/realms/test", typ="Refresh")
    auth = RefreshTokenAuth(refresh, token_endpoint=idp.url + "/realms/test/token")
    first = _header(auth)
    second = _header(auth)
    assert first == second and first.startswith("Bearer ")
    assert len(idp.token_requests) == 1  # cached while far from expiry
    form = idp.token_requests[0]
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == [refresh]
    assert form["client_id"] == ["my-client"]  # from the 'azp' claim
    assert jwt_claims(first.split()[1])["n"] == 1


def test_refresh_before_expiry_with_margin(idp):
    idp.lifetime = 30  # shorter than the 60 s margin: every use refreshes
    auth = RefreshTokenAuth(
        "opaque-refresh-token", token_endpoint=idp.url + "/t", client_id="cid", margin=60
    )
    a, b = _header(auth), _header(auth)
    assert a != b and len(idp.token_requests) == 2
    idp.lifetime = 3600
    c, d = _header(auth), _header(auth)
    assert c == d and len(idp.token_requests) == 3
    assert idp.token_requests[0]["client_id"] == ["cid"]


def test_expired_initial_access_token_is_refreshed(idp):
    old = make_jwt(exp=int(time.time()) + 10)  # within the margin
    auth = RefreshTokenAuth(
        "opaque-refresh-token", token_endpoint=idp.url + "/t", client_id="cid", access_token=old
    )
    assert _header(auth) != f"Bearer {old}"
    fresh = make_jwt(exp=int(time.time()) + 3600)
    auth2 = RefreshTokenAuth(
        "opaque-refresh-token", token_endpoint=idp.url + "/t", client_id="cid", access_token=fresh
    )
    assert _header(auth2) == f"Bearer {fresh}" and len(idp.token_requests) == 1


def test_token_endpoint_discovered_from_issuer_and_rotation(idp):
    idp.lifetime = 1
    idp.rotate = True
    refresh = make_jwt(azp="disc-client", iss=idp.url + "/realms/test")
    auth = RefreshTokenAuth(refresh)  # no endpoint: discovery from 'iss'
    _header(auth)
    _header(auth)
    assert auth.token_endpoint == idp.url + "/realms/test/token"
    assert idp.token_requests[1]["refresh_token"] == ["rotated-refresh-1"]


def test_failed_refresh_raises_and_never_sends_bearer_none(idp):
    refresh = "refresh-secret-that-leaks-in-error-1234"
    idp.fail = f"Token is not active: {refresh}"  # a server echoing the secret
    cfg = ClusterConfig(
        cluster_id="c",
        endpoint=idp.url,
        refresh_token=refresh,
        token_endpoint=idp.url + "/t",
        client_id="cid",
    )
    client = OscarClient(cfg, retries=0)
    with pytest.raises(AuthError) as info:
        client.info()
    msg = str(info.value)
    assert "refresh" in msg and "(400)" in msg
    assert refresh not in msg and "***" in msg
    assert idp.api_auth == []  # the API was never called (no "Bearer None")


def test_refresh_without_client_id_or_endpoint():
    with pytest.raises(AuthError, match="OSCAR_CLIENT_ID"):
        _header(RefreshTokenAuth("opaque-refresh", token_endpoint="http://127.0.0.1:9/t"))
    with pytest.raises(AuthError, match="OSCAR_TOKEN_ENDPOINT"):
        _header(RefreshTokenAuth("opaque-refresh", client_id="x"))


def test_refresh_token_used_by_client_on_system_calls(idp):
    cfg = ClusterConfig(
        cluster_id="c",
        endpoint=idp.url,
        refresh_token="opaque-r-5678",
        token_endpoint=idp.url + "/t",
        client_id="cid",
    )
    client = OscarClient(cfg)
    assert client.info() == {"version": "test"}
    assert idp.api_auth[0].startswith("Bearer ey")


def _tool(dir_: Path, body: str) -> None:
    path = dir_ / "oidc-token"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_oidc_agent_account_via_oidc_token(tmp_path, monkeypatch):
    """oidc-agent's `oidc-token ACCOUNT` prints an access token; a stand-in tool (first on PATH,
    so it shadows a real oidc-token for this test only) checks argv."""
    token = make_jwt(exp=int(time.time()) + 3600)
    _tool(tmp_path, f'[ "$2" = "my-acct" ] || exit 3\necho {token}\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    cfg = ClusterConfig(cluster_id="c", endpoint="http://h", oidc_account="my-acct")
    assert _header(make_auth(cfg)) == f"Bearer {token}"
    assert "my-acct" in repr(OidcAgentAuth("my-acct"))
    _tool(tmp_path, 'echo "account not loaded" >&2\nexit 1\n')
    with pytest.raises(AuthError, match="account not loaded.*oidc-agent running"):
        _header(OidcAgentAuth("my-acct"))


def test_oidc_agent_missing_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AuthError, match="'oidc-token' is not installed"):
        _header(OidcAgentAuth("acct"))


@pytest.mark.skipif(
    shutil.which("oidc-token") is None,
    reason="oidc-agent not installed: apt-get install oidc-agent",
)
def test_real_oidc_agent_without_account_fails_cleanly():
    with pytest.raises(AuthError, match="oidc-token failed"):
        _header(OidcAgentAuth("no-such-account-oscar-elyra"))


# ------------------------------------------------------------------ redaction


def test_redact_replaces_registered_secrets():
    register_secret("s3cr3t-value-abc")
    register_secret("xy")  # too short to be registered: must not mangle text
    text = "a s3cr3t-value-abc b s3cr3t-value-abc%21 xy"
    assert redact(text) == "a *** b ***%21 xy"
    assert redact("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert redact(12345) == "12345"


def test_log_records_are_redacted(caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    secret = "log-secret-token-0042"
    register_secret(secret)
    logger = logging.getLogger("oscar_elyra.test")
    with caplog.at_level(logging.DEBUG, logger="oscar_elyra.test"):
        logger.warning("token is %s", secret)
        try:
            raise RuntimeError(f"failure with {secret}")
        except RuntimeError:
            logger.exception("boom %r", {"password": secret})
    assert [r.getMessage() for r in caplog.records] == [
        "token is ***",
        "boom {'password': '***'}",
    ]
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in (record.exc_text or "")
    assert "***" in caplog.text


def test_reprs_hide_secrets():
    secret = "repr-secret-refresh-77"
    auth = RefreshTokenAuth(secret, token_endpoint="http://127.0.0.1:9/t", client_id="c")
    assert secret not in repr(auth)
    assert "tok-secret-88xx" not in repr(BearerAuth("tok-secret-88xx"))
    cfg = ClusterConfig(cluster_id="c", endpoint="http://h", user="u", password="pw-secret-99")
    client = OscarClient(cfg)
    assert "pw-secret-99" not in repr(client) + repr(client.cluster)


def test_user_without_password_is_config_error():
    from oscar_elyra.errors import ConfigError

    cfg = ClusterConfig(cluster_id="half", endpoint="http://h", user="oscar")
    with pytest.raises(ConfigError, match="cluster 'half'.*OSCAR_PASSWORD"):
        make_auth(cfg)


def test_redact_hides_quoted_and_base64_forms():
    """A secret with URL-special characters is hidden raw, URL-quoted (as in a query string
    or a form body) and base64-encoded (as in a Basic header someone logged by hand)."""
    secret = "p@ss/w0rd+key=1&x"
    register_secret(secret)
    quoted = "p%40ss%2Fw0rd%2Bkey%3D1%26x"  # written out, not computed with the same call
    b64 = "cEBzcy93MHJkK2tleT0xJng="
    assert base64.b64decode(b64).decode() == secret
    assert redact(f"raw {secret} end") == "raw *** end"
    assert redact(f"url ?password={quoted}&next=1") == "url ?password=***&next=1"
    assert redact(f"blob {b64} end") == "blob *** end"
    assert {secret, quoted, b64} <= set(registered_secrets())
    # longest first: a child process replacing them in this order never leaves a longer
    # form half-replaced (the raw secret is a prefix of nothing, but "abcd" is of "abcdef")
    register_secret("abcd-short-1")
    register_secret("abcd-short-1-and-longer")
    forms = registered_secrets()
    assert [len(f) for f in forms] == sorted((len(f) for f in forms), reverse=True)
    assert redact("x abcd-short-1-and-longer y") == "x *** y"


def test_client_secret_sent_only_when_given(idp):
    auth = RefreshTokenAuth(
        "opaque-r-1", token_endpoint=idp.url + "/t", client_id="cid", client_secret="cs-9876"
    )
    _header(auth)
    _header(RefreshTokenAuth("opaque-r-2", token_endpoint=idp.url + "/t", client_id="cid"))
    assert idp.token_requests[0]["client_secret"] == ["cs-9876"]
    assert "client_secret" not in idp.token_requests[1]
    assert redact("secret cs-9876") == "secret ***"


def test_opaque_access_tokens_live_as_long_as_expires_in(idp):
    """An access token that is not a JWT expires after the answer's expires_in."""
    idp.opaque = True
    idp.lifetime = 30  # within the 60 s margin: refreshed at every use
    auth = RefreshTokenAuth("opaque-r-3", token_endpoint=idp.url + "/t", client_id="cid")
    assert [_header(auth), _header(auth)] == ["Bearer opaque-access-1", "Bearer opaque-access-2"]
    idp.lifetime = 3600
    assert [_header(auth), _header(auth)] == ["Bearer opaque-access-3", "Bearer opaque-access-3"]
    assert redact("got opaque-access-3") == "got ***"


@pytest.mark.parametrize(
    ("code", "body", "detail"),
    [
        (400, b'{"error": "invalid_grant"}', "(400): invalid_grant;"),
        (502, b"upstream proxy down", "(502): upstream proxy down;"),
        (200, b'{"access_token": ""}', '(200): {"access_token": ""};'),
        (200, b'{"access_token": 12345}', '(200): {"access_token": 12345};'),
        (200, b'["not", "an", "object"]', '(200): ["not", "an", "object"];'),
    ],
)
def test_refresh_answers_without_a_token_are_errors(idp, code, body, detail):
    idp.answer = (code, body)
    auth = RefreshTokenAuth("opaque-r-4", token_endpoint=idp.url + "/t", client_id="cid")
    with pytest.raises(AuthError) as info:
        _header(auth)
    assert str(info.value) == (
        f"OIDC token refresh at {idp.url}/t failed {detail} get a new refresh token"
    )


def test_refresh_messages_name_the_setting_to_fix():
    with pytest.raises(AuthError) as info:
        _header(RefreshTokenAuth("opaque-refresh", token_endpoint="http://127.0.0.1:9/t"))
    assert str(info.value) == (
        "cannot refresh the OIDC token: no client id (the token has no 'azp' claim); "
        "set OSCAR_CLIENT_ID"
    )


def test_issuer_from_the_access_token_when_the_refresh_token_has_none(idp):
    refresh = make_jwt(azp="cid-from-refresh")  # a JWT, but without 'iss'
    access = make_jwt(iss=idp.url + "/realms/test", exp=int(time.time()) + 5)
    auth = RefreshTokenAuth(refresh, access_token=access)
    _header(auth)  # the access token is within the margin: refreshed, endpoint discovered
    assert auth.token_endpoint == idp.url + "/realms/test/token"
    assert idp.token_requests[0]["client_id"] == ["cid-from-refresh"]


def test_refresh_is_logged_without_the_token(idp, caplog):
    auth = RefreshTokenAuth("opaque-r-5", token_endpoint=idp.url + "/t", client_id="cid")
    with caplog.at_level(logging.DEBUG, logger="oscar_elyra.auth"):
        _header(auth)
    assert f"refreshed the OIDC access token at {idp.url}/t" in caplog.messages


def test_token_file_token_is_redacted_and_expiry_explained(tmp_path):
    from oscar_elyra.auth import TokenFileAuth

    f = tmp_path / "token"
    token = make_jwt(exp=int(time.time()) + 600, sub="file-user-123")
    f.write_text(token + "\n")
    auth = TokenFileAuth(f)
    assert _header(auth) == f"Bearer {token}"
    assert redact(f"token {token}") == "token ***"
    f.write_text(make_jwt(exp=int(time.time()) - 1))
    with pytest.raises(AuthError) as info:
        _header(auth)
    assert str(info.value).startswith(f"the access token in {f} expired at ")
    assert str(info.value).endswith(
        "and the file was not renewed; restart the notebook server or write a new token"
    )


def test_static_token_is_redacted_and_settings_reach_the_refresh():
    token = make_jwt(exp=int(time.time()) + 600, sub="static-user-4711")
    BearerAuth(token)
    assert redact(f"header Bearer-less {token}") == "header Bearer-less ***"
    cfg = ClusterConfig(
        cluster_id="c",
        endpoint="https://h",
        refresh_token="opaque-r-6",
        token_endpoint="https://h/t",
        client_id="cid",
        ssl_verify=False,
    )
    assert make_auth(cfg).verify is False  # the cluster's TLS setting, also for its IdP
    half = ClusterConfig(cluster_id="half", endpoint="http://h", password="pw-only-1234")
    with pytest.raises(ConfigError) as info:
        make_auth(half)
    assert str(info.value) == (
        "cluster 'half': both a user and a password are needed (set OSCAR_USER and OSCAR_PASSWORD)"
    )
