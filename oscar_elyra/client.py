"""``OscarClient``: the OSCAR REST API (v3.6.4+ and v4.x) on a ``requests.Session``.

* Idempotent calls (GET, PUT, DELETE, HEAD) are retried with exponential backoff on
  connection errors and 502/503/504 through urllib3's ``Retry``. ``POST`` (service
  creation, ``/run``, ``/job``) is never retried once the request may have reached the
  server; only a connection that could not be opened at all is retried.
* Timeouts are ``(connect, read)`` seconds.
* Errors are typed (:mod:`oscar_elyra.errors`) and name the cluster, endpoint and
  service; bodies are shortened and redacted.
* ``/run`` and ``/job`` use the service token given in the settings
  (``OSCAR_SERVICE_TOKEN``: no cluster account needed), else the cluster's OIDC token
  when configured, else the service's own token, read once from its definition and cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from oscar_elyra.auth import BearerAuth, NoAuth, make_auth, uses_oidc
from oscar_elyra.config import ClusterConfig, resolve_cluster
from oscar_elyra.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OscarError,
    ServiceError,
    TimeoutError,
)
from oscar_elyra.fdl import load_fdl, validate_service
from oscar_elyra.redact import redact, register_secret

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
BODY_EXCERPT = 500

Body = bytes | str | IO[bytes] | Iterable[bytes] | None


def _q(name: str) -> str:
    return quote(str(name), safe="")


class Service(dict):
    """A service definition: a plain ``dict`` (JSON, ``svc["token"]``) whose repr, and so
    ``print(svc)`` and a notebook's display of it, shows its token and environment secrets
    as ``***``. The token is there when asked for: ``svc.token`` or ``svc["token"]``."""

    @property
    def token(self) -> str | None:
        """The service's own token (for ``/run`` and ``/job``)."""
        return self.get("token")

    def __repr__(self) -> str:
        shown = dict(self)
        if shown.get("token"):
            shown["token"] = "***"
        env = shown.get("environment")
        if isinstance(env, dict) and isinstance(env.get("secrets"), dict):
            shown["environment"] = {**env, "secrets": {k: "***" for k in env["secrets"]}}
        return repr(shown)

    __str__ = __repr__


class OscarClient:
    """Client of one OSCAR cluster.

    ``config`` defaults to :func:`~oscar_elyra.config.resolve_cluster()`. ``timeout`` is
    ``(connect, read)`` seconds (or one number for both); ``retries`` the number of
    automatic retries of idempotent calls; ``backoff_factor`` the urllib3 backoff base.
    Clients hold credentials and cannot be pickled; build one per process.
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        timeout: float | tuple[float, float] = (10, 300),
        retries: int = 3,
        backoff_factor: float = 0.5,
        pool_maxsize: int = 16,
    ) -> None:
        self.cluster: ClusterConfig = config if config is not None else resolve_cluster()
        self.endpoint: str = self.cluster.endpoint
        self.timeout = timeout
        self.retries = retries
        self._auth = make_auth(self.cluster)
        self._oidc = uses_oidc(self.cluster)
        self._tokens: dict[str, str] = {}
        self._tokens_lock = threading.Lock()
        self._session = requests.Session()
        self._session.verify = self.cluster.ssl_verify
        self._session.auth = self._auth
        self._session.headers["User-Agent"] = "oscar-elyra"
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=IDEMPOTENT_METHODS,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool_maxsize)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        if not self.cluster.ssl_verify and self.endpoint.startswith("https://"):
            log.warning(
                "TLS verification is off for cluster '%s' (%s)",
                self.cluster.cluster_id,
                self.endpoint,
            )
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    # ------------------------------------------------------------------ plumbing

    @property
    def cluster_id(self) -> str:
        """Id of the cluster (oscar-cli id, ``local``, or the endpoint's host)."""
        return self.cluster.cluster_id

    def __repr__(self) -> str:
        return f"OscarClient(cluster={self.cluster_id!r}, endpoint={self.endpoint!r})"

    def __reduce__(self):
        raise TypeError(
            "OscarClient holds credentials and cannot be pickled; "
            "build a new client in the other process (resolve_cluster())"
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> OscarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"cluster '{self.cluster_id}' ({self.endpoint})"

    def _timeout(self, timeout: float | tuple[float, float] | None) -> Any:
        if timeout is None:
            return self.timeout
        if isinstance(timeout, (int, float)):
            connect = self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout
            return (min(connect, timeout), timeout)
        return timeout

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        service: str | None = None,
        job: str | None = None,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; map transport failures and HTTP errors to typed exceptions."""
        url = self.endpoint + path
        t = self._timeout(timeout)
        # explicit per request: a session-level verify=False is overridden by
        # REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in requests' environment merge
        kwargs.setdefault("verify", self.cluster.ssl_verify)
        try:
            resp = self._session.request(method, url, timeout=t, **kwargs)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise self._timeout_error(what, path, t, service) from None
        except requests.exceptions.SSLError as exc:
            raise ServiceError(
                f"{self._where()}: TLS error during {what}: {redact(_reason(exc))}; "
                "fix the certificate, or set OSCAR_SSL_VERIFY=false only for a cluster you trust"
            ) from None
        except requests.ConnectionError as exc:
            reason = _reason(exc)
            if (
                "timed out" in reason.lower()
                or "timeout"
                in type(getattr(exc.args[0] if exc.args else None, "reason", None)).__name__.lower()
            ):
                raise self._timeout_error(what, path, t, service) from None
            raise ServiceError(
                f"{self._where()}: connection failed during {what} ({method} {path}): "
                f"{redact(reason)}"
            ) from None
        except requests.RequestException as exc:
            raise ServiceError(f"{self._where()}: {what} failed: {redact(_reason(exc))}") from None
        if resp.status_code >= 400:
            raise self._http_error(resp, what=what, service=service, job=job)
        return resp

    def _timeout_error(self, what: str, path: str, t: Any, service: str | None) -> TimeoutError:
        secs = t[1] if isinstance(t, tuple) else t
        subject = f"{what} service '{service}'" if service else what
        return TimeoutError(
            f"{self._where()}: {subject} timed out ({path}, timeout {secs:g} s); "
            "the cluster is slow or unreachable — retry or raise the timeout"
        )

    def _http_error(
        self,
        resp: requests.Response,
        *,
        what: str,
        service: str | None = None,
        job: str | None = None,
    ) -> OscarError:
        status = resp.status_code
        try:
            raw = next(resp.iter_content(4096), b"")
            body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        except Exception:  # the body is only a hint
            body = ""
        finally:
            resp.close()
        body = redact(body.strip())
        excerpt = body[:BODY_EXCERPT] + ("…" if len(body) > BODY_EXCERPT else "")
        subject = f"service '{service}'" if service else what
        if job:
            subject = f"job '{job}' of service '{service}'"
        where = self._where()
        if status in (401, 403):
            hint = "check the OIDC token" if self._oidc else "check OSCAR_USER/OSCAR_PASSWORD"
            if service and what.startswith("invoking"):
                hint = "the service token was refused; the service may have been re-created"
            elif self.cluster.service_token and not (self._oidc or self.cluster.user):
                hint = (
                    "a service token (OSCAR_SERVICE_TOKEN / --token) only allows /run and /job; "
                    "this needs a cluster account (OSCAR_USER/OSCAR_PASSWORD or an OIDC token)"
                )
            return AuthError(f"{where}: {what} refused for {subject} ({status}): {hint}")
        if status == 404:
            return NotFoundError(f"{where}: {subject} not found ({status})")
        if status == 409 or (status == 400 and "already exist" in body.lower()):
            return ConflictError(f"{where}: {subject} already exists ({status})")
        tail = f": {excerpt}" if excerpt else ""
        return ServiceError(
            f"{where}: {what} failed for {subject} ({status}){tail}", status=status, body=excerpt
        )

    def _json(self, resp: requests.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise ServiceError(
                f"{self._where()}: {what} returned non-JSON ({resp.status_code}): "
                f"{redact(resp.text[:200])}",
                status=resp.status_code,
            ) from None

    # ------------------------------------------------------------------ system

    def health(self, timeout: float = 5) -> bool:
        """True when ``/health`` answers 200; False on any error (never raises)."""
        try:
            resp = self._session.get(
                self.endpoint + "/health",
                timeout=timeout,
                auth=NoAuth(),
                verify=self.cluster.ssl_verify,
            )
            return resp.status_code == 200
        except requests.RequestException:
            return False

    def info(self) -> dict:
        """``GET /system/info``: version, Kubernetes version, serverless backend."""
        return self._json(self._request("GET", "/system/info", what="reading info"), "info")

    def config(self) -> dict:
        """``GET /system/config``: cluster configuration and the caller's MinIO credentials."""
        data = self._json(self._request("GET", "/system/config", what="reading config"), "config")
        self._register_minio(data)
        return data

    def status(self) -> dict:
        """``GET /system/status``: cluster, OSCAR and MinIO status."""
        return self._json(self._request("GET", "/system/status", what="reading status"), "status")

    @staticmethod
    def _register_minio(data: Any) -> None:
        if isinstance(data, dict):
            for provider in (
                data.get("minio_provider"),
                (data.get("config") or {}).get("minio_provider")
                if isinstance(data.get("config"), dict)
                else None,
            ):
                if isinstance(provider, dict):
                    register_secret(provider.get("secret_key"))

    def minio_provider(self) -> dict:
        """The caller's MinIO settings: endpoint, access_key, secret_key, region, verify.

        Read from ``/system/config`` (top level in v4, under ``config`` in older versions).
        """
        data = self.config()
        provider = data.get("minio_provider")
        if not isinstance(provider, dict) and isinstance(data.get("config"), dict):
            provider = data["config"].get("minio_provider")
        if not isinstance(provider, dict) or not provider.get("endpoint"):
            raise ServiceError(f"{self._where()}: /system/config has no minio_provider")
        register_secret(provider.get("secret_key"))
        return {
            "endpoint": provider.get("endpoint"),
            "access_key": provider.get("access_key"),
            "secret_key": provider.get("secret_key"),
            "region": provider.get("region") or "us-east-1",
            "verify": provider.get("verify", True),
        }

    # ------------------------------------------------------------------ services

    @staticmethod
    def _remember_token(svc: Any) -> None:
        """Register a service's token and environment secrets for redaction."""
        if not isinstance(svc, dict):
            return
        if isinstance(svc.get("token"), str):
            register_secret(svc["token"])
        env = svc.get("environment")
        secrets = env.get("secrets") if isinstance(env, dict) else None
        if isinstance(secrets, dict):
            for value in secrets.values():
                if isinstance(value, str):
                    register_secret(value)
        providers = svc.get("storage_providers")
        for kind in providers.values() if isinstance(providers, dict) else ():
            for creds in kind.values() if isinstance(kind, dict) else ():
                if isinstance(creds, dict):
                    for key in ("secret_key", "password", "token", "refresh_token"):
                        value = creds.get(key)
                        if isinstance(value, str) and value != "hidden":
                            register_secret(value)

    def list_services(self) -> list[dict]:
        """``GET /system/services``: every service definition."""
        data = self._json(
            self._request("GET", "/system/services", what="listing services"), "services"
        )
        services = data if isinstance(data, list) else []
        for svc in services:
            self._remember_token(svc)
        return [Service(svc) if isinstance(svc, dict) else svc for svc in services]

    def get_service(self, name: str) -> dict:
        """``GET /system/services/{name}``: one service definition (NotFoundError if absent)."""
        resp = self._request(
            "GET", f"/system/services/{_q(name)}", what="reading service", service=name
        )
        svc = self._json(resp, f"service '{name}'")
        self._remember_token(svc)
        return Service(svc) if isinstance(svc, dict) else svc

    @staticmethod
    def _prepare(svc: dict) -> dict:
        clean = {k: v for k, v in svc.items() if not str(k).startswith("_")}
        return validate_service(clean)

    def _send_service(self, method: str, what: str, svc: dict) -> dict:
        svc = self._prepare(svc)
        self._request(
            method, "/system/services", what=what, service=svc.get("name"), json=svc
        ).close()
        return svc

    def create_service(self, svc: dict) -> None:
        """``POST /system/services`` (validated first; ConflictError if it exists)."""
        self._send_service("POST", "creating service", svc)

    def update_service(self, svc: dict) -> None:
        """``PUT /system/services`` (validated first; NotFoundError if it does not exist)."""
        svc = self._send_service("PUT", "updating service", svc)
        self._forget_token(svc.get("name"))

    def apply_service(self, svc: dict) -> str:
        """Create ``svc``, or update it if it exists; returns ``"created"`` or ``"updated"``."""
        svc = self._prepare(svc)
        name = svc["name"]
        try:
            self.get_service(name)
        except NotFoundError:
            try:
                self.create_service(svc)
                return "created"
            except ConflictError:  # created concurrently: fall through to update
                pass
        self.update_service(svc)
        return "updated"

    def delete_service(self, name: str) -> None:
        """``DELETE /system/services/{name}`` (NotFoundError if absent)."""
        self._request(
            "DELETE", f"/system/services/{_q(name)}", what="deleting service", service=name
        ).close()
        self._forget_token(name)

    def apply_fdl(self, path: str | Path) -> list[tuple[str, str]]:
        """Create or update every service of an FDL file; ``[(name, "created"|"updated")]``.

        Every service is validated before the first one is sent.
        """
        services = [self._prepare(s) for s in load_fdl(path)]
        return [(svc["name"], self.apply_service(svc)) for svc in services]

    def deployment_status(self, name: str) -> dict:
        """``GET /system/services/{name}/deployment``: state, reason, active instances (v4)."""
        resp = self._request(
            "GET",
            f"/system/services/{_q(name)}/deployment",
            what="reading deployment status",
            service=name,
        )
        return self._json(resp, f"deployment of service '{name}'")

    def deployment_logs(
        self, name: str, *, timestamps: bool = False, tail_lines: int | None = None
    ) -> dict:
        """``GET /system/services/{name}/deployment/logs``: ``{available, message, entries}``.

        Each entry is ``{"message", "timestamp"?}``; messages are redacted.
        """
        params: dict[str, str] = {"timestamps": "true" if timestamps else "false"}
        if tail_lines is not None:
            params["tailLines"] = str(int(tail_lines))
        resp = self._request(
            "GET",
            f"/system/services/{_q(name)}/deployment/logs",
            what="reading deployment logs",
            service=name,
            params=params,
        )
        data = self._json(resp, f"deployment logs of service '{name}'")
        if isinstance(data, dict):
            for entry in data.get("entries") or []:
                if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                    entry["message"] = redact(entry["message"])
        return data

    # ------------------------------------------------------------------ buckets

    def list_buckets(self) -> list[dict]:
        """``GET /system/buckets``: the buckets the caller sees (visibility, owner, usage)."""
        data = self._json(
            self._request("GET", "/system/buckets", what="listing buckets"), "buckets"
        )
        return data if isinstance(data, list) else []

    def get_bucket(self, name: str, *, page: str | None = None) -> dict:
        """``GET /system/buckets/{name}``: the bucket and one page of its objects.

        The answer's ``next_page`` (when ``is_truncated``) is the ``page`` of the next call.
        """
        resp = self._request(
            "GET",
            f"/system/buckets/{_q(name)}",
            what=f"reading bucket '{name}'",
            params={"page": page} if page else None,
        )
        return self._json(resp, f"bucket '{name}'")

    def _bucket_body(self, name: str, visibility: str, allowed_users: Iterable[str] | None) -> dict:
        return {
            "bucket_name": name,
            "visibility": visibility,
            "allowed_users": list(allowed_users or []),
        }

    def create_bucket(
        self, name: str, visibility: str = "private", allowed_users: Iterable[str] | None = None
    ) -> None:
        """``POST /system/buckets`` (visibility ``private``, ``public`` or ``restricted``)."""
        self._request(
            "POST",
            "/system/buckets",
            what=f"creating bucket '{name}'",
            json=self._bucket_body(name, visibility, allowed_users),
        ).close()

    def update_bucket(
        self, name: str, visibility: str, allowed_users: Iterable[str] | None = None
    ) -> None:
        """``PUT /system/buckets``: change a bucket's visibility or allowed users."""
        self._request(
            "PUT",
            "/system/buckets",
            what=f"updating bucket '{name}'",
            json=self._bucket_body(name, visibility, allowed_users),
        ).close()

    def delete_bucket(self, name: str) -> None:
        """``DELETE /system/buckets/{name}``: the bucket and every object in it."""
        self._request(
            "DELETE", f"/system/buckets/{_q(name)}", what=f"deleting bucket '{name}'"
        ).close()

    def presign(
        self,
        bucket: str,
        key: str,
        operation: str = "download",
        *,
        expires_in: int | None = None,
        content_type: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> dict:
        """``POST /system/buckets/{bucket}/presign``: a presigned URL for one object.

        ``operation`` is ``download`` (GET) or ``upload`` (PUT); ``expires_in`` seconds
        (the cluster's default, 900 s on OSCAR, when None). Returns ``{url, method,
        expires_at, headers?, object_key, operation}``; send ``headers`` with the request.
        The URL grants access to the object until it expires: share it with care.
        """
        body: dict[str, Any] = {"object_key": key, "operation": operation}
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        if content_type:
            body["content_type"] = content_type
        if extra_headers:
            body["extra_headers"] = dict(extra_headers)
        resp = self._request(
            "POST",
            f"/system/buckets/{_q(bucket)}/presign",
            what=f"presigning '{bucket}/{key}'",
            json=body,
        )
        return self._json(resp, "presign")

    # ------------------------------------------------------------------ jobs / logs

    def list_jobs(self, service: str) -> dict[str, dict]:
        """Every job of ``service`` (name -> {status, creation_time, start_time, finish_time}).

        Follows ``next_page`` through all pages (OSCAR >= 3.6.4); also accepts the older
        bare ``{job: info}`` map.
        """
        jobs: dict[str, dict] = {}
        for _token, page in self.job_pages(service):
            jobs.update(page)
        return jobs

    def job_pages(self, service: str, page: str | None = None) -> Iterator[tuple[str | None, dict]]:
        """The pages of ``service``'s job list from continuation token ``page`` (None: the
        first): one ``(token that fetched it, {job: info})`` a page. An older cluster's bare
        map is one page."""
        seen: set[str] = set()
        while True:
            params = {"page": page} if page else None
            resp = self._request(
                "GET",
                f"/system/logs/{_q(service)}",
                what="listing jobs",
                service=service,
                params=params,
            )
            data = self._json(resp, f"jobs of service '{service}'")
            if not isinstance(data, dict):
                raise ServiceError(
                    f"{self._where()}: unexpected job list for service '{service}': "
                    f"{type(data).__name__}"
                )
            if isinstance(data.get("jobs"), dict) and set(data) <= {
                "jobs",
                "next_page",
                "remaining_jobs",
            }:
                yield page, dict(data["jobs"] or {})
                page = data.get("next_page") or None
                if not page:
                    return
                if page in seen:
                    raise ServiceError(
                        f"{self._where()}: job list of service '{service}' repeats page {page!r}"
                    )
                seen.add(page)
            else:
                yield page, {k: v for k, v in data.items() if isinstance(v, dict)}
                return

    def get_job_log(self, service: str, job: str, *, timestamps: bool = False) -> str:
        """The log of one job (secrets redacted)."""
        resp = self._request(
            "GET",
            f"/system/logs/{_q(service)}/{_q(job)}",
            what="reading job log",
            service=service,
            job=job,
            params={"timestamps": "true"} if timestamps else None,
        )
        return redact(resp.text)

    def delete_job(self, service: str, job: str) -> None:
        """Delete one job and its log."""
        self._request(
            "DELETE",
            f"/system/logs/{_q(service)}/{_q(job)}",
            what="deleting job",
            service=service,
            job=job,
        ).close()

    def delete_jobs(self, service: str, *, all: bool = False) -> None:  # noqa: A002
        """Delete the succeeded jobs of ``service``; with ``all=True`` every job."""
        self._request(
            "DELETE",
            f"/system/logs/{_q(service)}",
            what="deleting jobs",
            service=service,
            params={"all": "true" if all else "false"},
        ).close()

    # ------------------------------------------------------------------ invocation

    def service_token(self, name: str) -> str:
        """The service's own token (from its definition; fetched once, then cached)."""
        with self._tokens_lock:
            token = self._tokens.get(name)
        if token:
            return token
        svc = self.get_service(name)
        token = svc.get("token") if isinstance(svc, dict) else None
        if not token:
            raise AuthError(
                f"{self._where()}: service '{name}' has no token in its definition; "
                "configure an OIDC token (OSCAR_TOKEN) to invoke it"
            )
        register_secret(token)
        with self._tokens_lock:
            self._tokens[name] = token
        return token

    def _forget_token(self, name: str | None) -> None:
        with self._tokens_lock:
            self._tokens.pop(name or "", None)

    def _invoke_auth(self, name: str) -> Any:
        if self.cluster.service_token:
            return BearerAuth(self.cluster.service_token, what="service token")
        if self._oidc:
            return self._auth
        return BearerAuth(self.service_token(name), what="service token")

    def post_run(
        self,
        name: str,
        body: Body,
        *,
        timeout: float | tuple[float, float] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """``POST /run/{name}``: sync invocation; returns the streamed response (close it).

        ``body`` is bytes, str, a binary file object or an iterable of byte chunks
        (streamed with chunked encoding). Never retried. Typed errors on status >= 400.
        """
        auth = self._invoke_auth(name)
        try:
            return self._request(
                "POST",
                f"/run/{_q(name)}",
                what="invoking",
                service=name,
                data=body,
                auth=auth,
                stream=True,
                timeout=timeout,
                headers=headers,
            )
        except AuthError:
            self._forget_token(name)  # re-read the token next time (service re-created?)
            raise

    def post_job(self, name: str, body: Body, *, headers: dict[str, str] | None = None) -> None:
        """``POST /job/{name}``: async invocation (OSCAR answers 201 without a job id)."""
        auth = self._invoke_auth(name)
        try:
            self._request(
                "POST",
                f"/job/{_q(name)}",
                what="invoking asynchronously",
                service=name,
                data=body,
                auth=auth,
                headers=headers,
            ).close()
        except AuthError:
            self._forget_token(name)
            raise


def _reason(exc: BaseException) -> str:
    """A short reason for a transport error (the innermost urllib3 reason when there is one)."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None)
    text = str(reason if reason is not None else (inner if inner is not None else exc))
    return text.split("\n")[0][:300]
