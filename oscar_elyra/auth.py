"""Authentication to OSCAR.

* :func:`make_auth` builds the ``requests`` auth for a :class:`~oscar_elyra.config.ClusterConfig`:
  HTTP Basic (OSCAR user/password), a static OIDC bearer access token, an OIDC
  refresh-token grant (the access token is refreshed ``margin`` seconds before it
  expires; ``client_id`` defaults to the token's ``azp`` claim; the token endpoint
  defaults to the issuer's discovery document), or an ``oidc-agent`` account
  (through the ``oidc-token`` tool, when installed), or a token file (EGI Notebooks'
  ``/var/run/secrets/egi.eu/access_token``, ``OSCAR_TOKEN_FILE``) re-read whenever the
  file changes, so a long session outlives each access token.
* :func:`invoke_auth` adds the service token (``OSCAR_SERVICE_TOKEN``): ``/run`` and
  ``/job`` with one service's own token, without a cluster account.
* every secret it sees is registered with :mod:`oscar_elyra.redact`.

A failed refresh raises :class:`~oscar_elyra.errors.AuthError`; a request is never
sent with ``Authorization: Bearer None``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from oscar_elyra.config import ClusterConfig
from oscar_elyra.errors import AuthError, ConfigError
from oscar_elyra.redact import redact, register_secret

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- tokens


def jwt_claims(token: str | None) -> dict[str, Any]:
    """Unverified claims of a JWT (``{}`` when ``token`` is not a JWT).

    Only used to read ``exp``, ``azp`` and ``iss``; the server verifies the token.
    """
    if not token or token.count(".") != 2:
        return {}
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _expiry(token: str, expires_in: Any = None) -> float | None:
    exp = jwt_claims(token).get("exp")
    if isinstance(exp, (int, float)):
        return float(exp)
    if isinstance(expires_in, (int, float)) and expires_in > 0:
        return time.time() + float(expires_in)
    return None


class BearerAuth(AuthBase):
    """A fixed bearer token (an OIDC access token or an OSCAR service token)."""

    def __init__(self, token: str, *, what: str = "access token") -> None:
        if not token:
            raise AuthError(f"no {what} available: refusing to send an empty bearer token")
        register_secret(token)
        self._token = token
        self._what = what
        self._exp = _expiry(token)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._exp is not None and self._exp <= time.time():
            raise AuthError(
                f"the OIDC {self._what} expired at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self._exp))}: "
                "get a new one, or set OSCAR_REFRESH_TOKEN so it is refreshed automatically"
            )
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token='***')"


class _ExpiringTokenAuth(AuthBase):
    """Bearer auth whose token is (re)obtained ``margin`` seconds before it expires."""

    def __init__(self, *, margin: float = 60.0) -> None:
        self.margin = margin
        self._token: str | None = None
        self._exp: float | None = None
        self._lock = threading.Lock()

    def _fetch(self) -> tuple[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def token(self) -> str:
        """A valid access token, refreshed when missing or about to expire."""
        with self._lock:
            if self._token and (self._exp is None or self._exp - time.time() > self.margin):
                return self._token
            token, expires_in = self._fetch()
            if not token or not isinstance(token, str):
                raise AuthError("the token provider returned no access token")
            register_secret(token)
            self._token, self._exp = token, _expiry(token, expires_in)
            return token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r


class RefreshTokenAuth(_ExpiringTokenAuth):
    """OIDC refresh-token grant (as oscar-cli's ``oidc_refresh_token``).

    ``token_endpoint`` defaults to the one in ``<iss>/.well-known/openid-configuration``
    where ``iss`` is the refresh (or access) token's issuer claim; ``client_id`` defaults
    to the token's ``azp`` claim. An optional initial ``access_token`` is used until it
    is within ``margin`` seconds of expiry.
    """

    def __init__(
        self,
        refresh_token: str,
        *,
        token_endpoint: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        margin: float = 60.0,
        verify: bool = True,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(margin=margin)
        if not refresh_token:
            raise AuthError("no OIDC refresh token given")
        for s in (refresh_token, client_secret, access_token):
            register_secret(s)
        self._refresh_token = refresh_token
        self._client_secret = client_secret
        self.token_endpoint = token_endpoint
        claims = jwt_claims(refresh_token) or jwt_claims(access_token)
        self.client_id = client_id or claims.get("azp") or jwt_claims(access_token).get("azp")
        self._issuer = claims.get("iss") or jwt_claims(access_token).get("iss")
        self.verify = verify
        self.timeout = timeout
        if access_token:
            self._token, self._exp = access_token, _expiry(access_token)

    def _endpoint(self) -> str:
        if self.token_endpoint:
            return self.token_endpoint
        if not self._issuer:
            raise AuthError(
                "cannot refresh the OIDC token: no token endpoint known; set OSCAR_TOKEN_ENDPOINT"
            )
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            resp = requests.get(url, timeout=self.timeout, verify=self.verify)
            resp.raise_for_status()
            self.token_endpoint = resp.json()["token_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise AuthError(
                f"cannot find the OIDC token endpoint at {url}: {redact(exc)}; "
                "set OSCAR_TOKEN_ENDPOINT"
            ) from None
        return self.token_endpoint

    def _fetch(self) -> tuple[str, Any]:
        endpoint = self._endpoint()
        if not self.client_id:
            raise AuthError(
                "cannot refresh the OIDC token: no client id (the token has no 'azp' claim); "
                "set OSCAR_CLIENT_ID"
            )
        data = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self.client_id,
        }
        if self._client_secret:
            data["client_secret"] = self._client_secret
        try:
            resp = requests.post(endpoint, data=data, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise AuthError(f"OIDC token refresh at {endpoint} failed: {redact(exc)}") from None
        try:
            payload = resp.json()
        except ValueError:
            payload = {}
        if (
            resp.status_code != 200
            or not isinstance(payload, dict)
            or not isinstance(payload.get("access_token"), str)
            or not payload.get("access_token")
        ):
            detail = ""
            if isinstance(payload, dict):
                detail = payload.get("error_description") or payload.get("error") or ""
            detail = detail or resp.text[:200]
            raise AuthError(
                f"OIDC token refresh at {endpoint} failed ({resp.status_code}): "
                f"{redact(detail).strip()}; get a new refresh token"
            )
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:  # rotating refresh tokens
            register_secret(new_refresh)
            self._refresh_token = new_refresh
        log.debug("refreshed the OIDC access token at %s", endpoint)
        return payload["access_token"], payload.get("expires_in")

    def __repr__(self) -> str:
        return (
            f"RefreshTokenAuth(token_endpoint={self.token_endpoint!r}, "
            f"client_id={self.client_id!r}, refresh_token='***')"
        )


class OidcAgentAuth(_ExpiringTokenAuth):
    """Access tokens from an ``oidc-agent`` account via the ``oidc-token`` tool."""

    def __init__(self, account: str, *, margin: float = 60.0) -> None:
        super().__init__(margin=margin)
        self.account = account

    def _fetch(self) -> tuple[str, Any]:
        tool = shutil.which("oidc-token")
        if tool is None:
            raise AuthError(
                f"oidc-agent account {self.account!r} is configured but 'oidc-token' is not "
                "installed: install oidc-agent, or set OSCAR_TOKEN / OSCAR_REFRESH_TOKEN"
            )
        try:
            out = subprocess.run(
                [tool, f"--time={int(self.margin) + 60}", self.account],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuthError(f"oidc-token failed for account {self.account!r}: {exc}") from None
        token = out.stdout.strip()
        if out.returncode != 0 or not token:
            raise AuthError(
                f"oidc-token failed for account {self.account!r}: "
                f"{redact(out.stderr.strip())[:200] or 'no token'}; is oidc-agent running "
                "with this account loaded?"
            )
        return token, None

    def __repr__(self) -> str:
        return f"OidcAgentAuth(account={self.account!r})"


class TokenFileAuth(AuthBase):
    """An OIDC access token read from a file, re-read whenever the file changes.

    The file is checked (``stat``: inode, size, modification time) before every request,
    so a token renewed by the hub, or a file replaced by rename, is used at once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._stamp: tuple[int, int, int] | None = None
        self._token: str | None = None
        self._exp: float | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        """The file's current token (read again only when the file changed)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise AuthError(
                f"token file {self.path} cannot be read ({exc.strerror}); "
                "set OSCAR_TOKEN_FILE to the file holding your access token"
            ) from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp or not self._token:
                with open(self.path, encoding="utf-8") as fh:
                    token = fh.read().strip()
                if not token:
                    raise AuthError(f"token file {self.path} is empty")
                register_secret(token)
                self._token, self._exp, self._stamp = token, _expiry(token), stamp
                log.debug("read the access token from %s", self.path)
            if self._exp is not None and self._exp <= time.time():
                raise AuthError(
                    f"the access token in {self.path} expired at "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self._exp))} and the "
                    "file was not renewed; restart the notebook server or write a new token"
                )
            return self._token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def __repr__(self) -> str:
        return f"TokenFileAuth(path={self.path!r})"


class NoAuth(AuthBase):
    """No credentials (for health checks; /system calls will answer 401)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def uses_oidc(config: ClusterConfig) -> bool:
    """True when ``config`` authenticates with OIDC tokens (they work on /run and /job)."""
    return bool(config.token or config.refresh_token or config.oidc_account or config.token_file)


def make_auth(config: ClusterConfig) -> AuthBase:
    """The ``requests`` auth for ``config``'s ``/system`` calls.

    Order: refresh token (with the access token, if any, used first) > static access
    token > token file > oidc-agent account > Basic user/password > no auth.
    """
    if config.refresh_token:
        return RefreshTokenAuth(
            config.refresh_token,
            token_endpoint=config.token_endpoint,
            client_id=config.client_id,
            access_token=config.token,
            verify=config.ssl_verify,
        )
    if config.token:
        return BearerAuth(config.token)
    if config.token_file:
        return TokenFileAuth(config.token_file)
    if config.oidc_account:
        return OidcAgentAuth(config.oidc_account)
    if config.user and config.password:
        register_secret(config.password)
        register_secret(f"{config.user}:{config.password}")
        return HTTPBasicAuth(config.user, config.password)
    if config.user or config.password:
        raise ConfigError(
            f"cluster '{config.cluster_id}': both a user and a password are needed "
            "(set OSCAR_USER and OSCAR_PASSWORD)"
        )
    return NoAuth()
