"""Cluster settings: which OSCAR cluster to talk to and with which credentials.

:func:`resolve_cluster` picks the settings with this precedence:

1. explicit arguments (``endpoint=``, ``user=``, ... ; ``cluster=`` selects an entry of
   the oscar-cli config file);
2. environment variables ``OSCAR_ENDPOINT``, ``OSCAR_USER``, ``OSCAR_PASSWORD``,
   ``OSCAR_TOKEN`` (OIDC access token), ``OSCAR_REFRESH_TOKEN`` (with optional
   ``OSCAR_TOKEN_ENDPOINT``/``OSCAR_CLIENT_ID``), ``OSCAR_TOKEN_FILE`` (a file holding
   an OIDC access token, re-read whenever it changes), ``OSCAR_SERVICE_TOKEN`` (one
   service's own token: enough for ``/run`` and ``/job`` without a cluster account),
   ``OSCAR_SSL_VERIFY``, ``OSCAR_CLUSTER_ID`` (the id of the env-defined cluster, or,
   without ``OSCAR_ENDPOINT``, the oscar-cli entry to use);
2b. for an endpoint given by argument or environment with no credentials: the EGI
   Notebooks token file ``/var/run/secrets/egi.eu/access_token`` when it exists;
3. the oscar-cli config file, ``~/.oscar-cli/config.yaml`` (path overridable with
   ``OSCAR_CLI_CONFIG``)::

       oscar:
         my-cluster:
           endpoint: https://oscar.example.org
           auth_user: oscar
           auth_password: ...
           oidc_account_name: egi        # oidc-agent account (optional)
           oidc_refresh_token: ...       # optional
           ssl_verify: true
       default: my-cluster

4. the embedded cluster started with ``oscar-elyra local up``, if it is running.

Credentials are never mixed between clusters: an endpoint given by argument or
environment only gets credentials from arguments/environment, or from an oscar-cli
entry / the running embedded cluster with exactly the same endpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from oscar_elyra._paths import MAX_DEPTH
from oscar_elyra.discovery import read_running
from oscar_elyra.errors import ConfigError, OscarError, ValidationError
from oscar_elyra.redact import register_secret

#: most YAML nodes a document may expand to through aliases (``*name``, ``<<: *name``);
#: hand-written files have a few hundred, an alias bomb billions
MAX_YAML_NODES = 100_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_SECRET_FIELDS = ("password", "token", "refresh_token", "service_token")
#: where EGI Notebooks (and AI4EOSC's) JupyterHub keeps the user's renewed access token
EGI_TOKEN_FILE = "/var/run/secrets/egi.eu/access_token"

ENV_VARS = (
    "OSCAR_ENDPOINT",
    "OSCAR_USER",
    "OSCAR_PASSWORD",
    "OSCAR_TOKEN",
    "OSCAR_REFRESH_TOKEN",
    "OSCAR_TOKEN_ENDPOINT",
    "OSCAR_CLIENT_ID",
    "OSCAR_SSL_VERIFY",
    "OSCAR_CLUSTER_ID",
    "OSCAR_OIDC_ACCOUNT",
    "OSCAR_TOKEN_FILE",
    "OSCAR_SERVICE_TOKEN",
)


def parse_bool(value: Any, name: str, *, error: type[OscarError] = ConfigError) -> bool:
    """Strict boolean: true/1/yes/on or false/0/no/off (any case); anything else is an error.

    The one boolean parser of the project (settings, pipeline parameters, query arguments);
    ``error`` is the exception raised for anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise error(f"{name}: {value!r} is not a boolean; use true/false (also 1/0, yes/no, on/off)")


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of one OSCAR cluster. ``repr`` shows secrets as ``***``."""

    cluster_id: str
    endpoint: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    refresh_token: str | None = None
    token_endpoint: str | None = None
    client_id: str | None = None
    oidc_account: str | None = None
    token_file: str | None = None
    service_token: str | None = None
    ssl_verify: bool = True
    source: str = "arguments"

    def __post_init__(self) -> None:
        for name in _SECRET_FIELDS:
            register_secret(getattr(self, name))
        for name in ("user", *_SECRET_FIELDS, "client_id", "cluster_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or _CONTROL.search(value)):
                raise ConfigError(
                    f"cluster {self.cluster_id!r}: the {name.replace('_', ' ')} "
                    f"(from {self.source}) must be text without control characters "
                    "(a newline?)"
                )
        if not isinstance(self.ssl_verify, bool):
            object.__setattr__(self, "ssl_verify", parse_bool(self.ssl_verify, "ssl_verify"))
        object.__setattr__(self, "endpoint", normalize_endpoint(self.endpoint, self.source))

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"ClusterConfig({', '.join(parts)})"

    __str__ = __repr__

    def to_env(self) -> dict[str, str]:
        """The ``OSCAR_*`` environment variables that resolve to exactly this cluster.

        For a child process' environment (pipeline nodes): never written to a file.
        """
        values = {
            "OSCAR_ENDPOINT": self.endpoint,
            "OSCAR_CLUSTER_ID": self.cluster_id,
            "OSCAR_USER": self.user,
            "OSCAR_PASSWORD": self.password,
            "OSCAR_TOKEN": self.token,
            "OSCAR_REFRESH_TOKEN": self.refresh_token,
            "OSCAR_TOKEN_ENDPOINT": self.token_endpoint,
            "OSCAR_CLIENT_ID": self.client_id,
            "OSCAR_OIDC_ACCOUNT": self.oidc_account,
            "OSCAR_TOKEN_FILE": self.token_file,
            "OSCAR_SERVICE_TOKEN": self.service_token,
            "OSCAR_SSL_VERIFY": "true" if self.ssl_verify else "false",
        }
        return {k: v for k, v in values.items() if v}

    def with_(self, **changes: Any) -> ClusterConfig:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


def normalize_endpoint(endpoint: str, source: str = "") -> str:
    """``endpoint`` without trailing slash; ConfigError unless it is an http(s) URL."""
    text = (endpoint or "").strip() if isinstance(endpoint, str) or endpoint is None else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        valid = not _CONTROL.search(text) and " " not in text
    except ValueError:  # "http://[::1": an unclosed IPv6 bracket, a bad port
        parts, valid = urlsplit(""), False
    if not valid or parts.scheme not in ("http", "https") or not parts.hostname:
        where = f" (from {source})" if source else ""
        raise ConfigError(
            f"OSCAR endpoint {text!r}{where} is not an http(s) URL; "
            "use e.g. https://oscar.example.org"
        )
    return text.rstrip("/")


def default_config_file(env: Mapping[str, str] | None = None) -> Path:
    """Path of the oscar-cli config: ``$OSCAR_CLI_CONFIG`` or ``~/.oscar-cli/config.yaml``."""
    env = os.environ if env is None else env
    custom = env.get("OSCAR_CLI_CONFIG")
    if custom:
        return Path(custom).expanduser()
    return Path.home() / ".oscar-cli" / "config.yaml"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose documents may not expand past :data:`MAX_YAML_NODES` nodes, nest
    past :data:`~oscar_elyra._paths.MAX_DEPTH` levels or refer to themselves (checked on
    the composed node graph, before any Python object is built)."""

    def compose_document(self):  # noqa: ANN201 - PyYAML's signature
        node = super().compose_document()
        _check_expansion(node)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node | None) -> None:
    """Expanded size and depth of the node graph (aliases share nodes), without recursion."""
    if root is None:
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            visiting.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_YAML_NODES:
                raise yaml.YAMLError(
                    f"it expands to more than {MAX_YAML_NODES} nodes through aliases"
                )
            if depth[key] > MAX_DEPTH:
                raise yaml.YAMLError(f"it is nested more than {MAX_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in visiting:
            raise yaml.YAMLError("an alias refers to a node that contains it")
        visiting.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def load_yaml(text: str, source: str) -> Any:
    """The one YAML reader: safe types only, bounded expansion and depth.

    Raises :class:`ValidationError` with one line naming ``source`` (and the line of a
    syntax error), never a traceback, for invalid YAML, alias bombs and deep nesting.
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ValidationError(f"{source} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            raise ValidationError(f"{source} is not valid YAML (line {mark.line + 1})") from None
        raise ValidationError(f"{source} is refused: {exc}") from None


def load_oscar_cli_config(path: str | os.PathLike[str]) -> tuple[dict[str, dict], str | None]:
    """The clusters (id -> settings) and default id of an oscar-cli config file.

    A missing file gives ``({}, None)``; a malformed one a ConfigError naming the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise ConfigError(f"cannot read oscar-cli config {path}: {exc.strerror}") from None
    try:
        data = load_yaml(text, f"oscar-cli config {path}") or {}
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"oscar-cli config {path}: expected a mapping with an 'oscar' key")
    clusters = data.get("oscar") or {}
    if not isinstance(clusters, dict) or not all(isinstance(v, dict) for v in clusters.values()):
        raise ConfigError(
            f"oscar-cli config {path}: 'oscar' must map cluster ids to settings "
            "(endpoint, auth_user, auth_password, ...)"
        )
    clusters = {str(k): v for k, v in clusters.items()}
    for cid, entry in clusters.items():
        for key in ("auth_password", "oidc_refresh_token"):
            if isinstance(entry.get(key), str):
                register_secret(entry[key])
        if not entry.get("endpoint"):
            raise ConfigError(f"oscar-cli config {path}: cluster {cid!r} has no 'endpoint'")
    default = data.get("default")
    return clusters, (str(default) if default is not None else None)


def _from_cli_entry(cid: str, entry: dict, path: Path) -> dict[str, Any]:
    src = f"{path} [{cid}]"
    values: dict[str, Any] = {
        "cluster_id": cid,
        "endpoint": str(entry["endpoint"]),
        "user": entry.get("auth_user") or None,
        "password": entry.get("auth_password") or None,
        "refresh_token": entry.get("oidc_refresh_token") or None,
        "oidc_account": entry.get("oidc_account_name") or None,
        "source": src,
    }
    if entry.get("ssl_verify") is not None:
        values["ssl_verify"] = parse_bool(entry["ssl_verify"], f"{src} ssl_verify")
    return values


def _running_local(env: Mapping[str, str]) -> dict[str, Any] | None:
    data_dir = env.get("OSCAR_ELYRA_DATA_DIR")
    try:
        info = read_running(Path(data_dir) if data_dir else None)
    except Exception:  # a corrupt state file must not break resolution of other clusters
        return None
    if not info or not info.get("endpoint"):
        return None
    register_secret(info.get("password"))
    return {
        "cluster_id": "local",
        "endpoint": info["endpoint"],
        "user": info.get("user"),
        "password": info.get("password"),
        "ssl_verify": bool(info.get("ssl_verify", False)),
        "source": f"embedded cluster ({info.get('data_dir', 'local')})",
    }


def _label(endpoint: str) -> str:
    host = urlsplit(endpoint).hostname or "oscar"
    return "local" if host in ("127.0.0.1", "localhost", "::1") else host


_CREDENTIAL_KEYS = (
    "user",
    "password",
    "token",
    "refresh_token",
    "oidc_account",
    "token_file",
    "service_token",
)


def resolve_cluster(
    cluster: str | None = None,
    *,
    endpoint: str | None = None,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    refresh_token: str | None = None,
    service_token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    ssl_verify: bool | str | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> ClusterConfig:
    """The :class:`ClusterConfig` to use (see the module docstring for the precedence).

    ``env`` defaults to ``os.environ``; ``config_file`` to :func:`default_config_file`.
    Raises ConfigError when nothing is configured, naming the variables to set.
    """
    env = os.environ if env is None else env
    for s in (password, token, refresh_token, service_token):
        register_secret(s)
    for name in ("OSCAR_PASSWORD", "OSCAR_TOKEN", "OSCAR_REFRESH_TOKEN", "OSCAR_SERVICE_TOKEN"):
        register_secret(env.get(name))
    path = Path(config_file) if config_file is not None else default_config_file(env)

    args = {
        k: v
        for k, v in dict(
            endpoint=endpoint,
            user=user,
            password=password,
            token=token,
            refresh_token=refresh_token,
            service_token=service_token,
            token_file=os.fspath(token_file) if token_file is not None else None,
        ).items()
        if v not in (None, "")
    }
    envs = {
        k: env.get(var)
        for k, var in [
            ("endpoint", "OSCAR_ENDPOINT"),
            ("user", "OSCAR_USER"),
            ("password", "OSCAR_PASSWORD"),
            ("token", "OSCAR_TOKEN"),
            ("refresh_token", "OSCAR_REFRESH_TOKEN"),
            ("oidc_account", "OSCAR_OIDC_ACCOUNT"),
            ("token_file", "OSCAR_TOKEN_FILE"),
            ("service_token", "OSCAR_SERVICE_TOKEN"),
        ]
        if env.get(var)
    }

    base: dict[str, Any]
    overlay: list[dict[str, Any]]
    env_id = env.get("OSCAR_CLUSTER_ID") or None
    if cluster is None and env_id and not (args.get("endpoint") or envs.get("endpoint")):
        cluster = env_id  # OSCAR_CLUSTER_ID alone selects an oscar-cli entry
    if cluster is not None:
        clusters, _ = load_oscar_cli_config(path)
        if cluster not in clusters:
            if cluster == "local" and (local := _running_local(env)):
                base = local
            else:
                known = ", ".join(sorted(clusters)) or "none"
                raise ConfigError(
                    f"cluster {cluster!r} is not in {path} (known: {known}); "
                    "add it with `oscar-cli cluster add` or pick another with --cluster"
                )
        else:
            base = _from_cli_entry(cluster, clusters[cluster], path)
        overlay = [args]  # an explicitly chosen cluster ignores OSCAR_* credentials
    elif args.get("endpoint") or envs.get("endpoint"):
        ep = normalize_endpoint(
            args.get("endpoint") or envs["endpoint"],
            "arguments" if args.get("endpoint") else "OSCAR_ENDPOINT",
        )
        src = "arguments" if args.get("endpoint") else "environment"
        base = {"cluster_id": env_id or _label(ep), "endpoint": ep, "source": src}
        creds = {**{k: v for k, v in envs.items() if k != "endpoint"}, **args}
        if not any(k in creds for k in _CREDENTIAL_KEYS):
            if os.path.isfile(EGI_TOKEN_FILE):
                # EGI Notebooks: the hub keeps a fresh access token in this file
                base["token_file"] = EGI_TOKEN_FILE
            else:
                # no credentials given: borrow those configured for this very endpoint
                base.update(_credentials_for(ep, path, env) or {})
                base["endpoint"] = ep
        overlay = [{k: v for k, v in envs.items() if k != "endpoint"}, args]
    else:
        clusters, default = load_oscar_cli_config(path)
        if clusters:
            if default is None and len(clusters) == 1:
                default = next(iter(clusters))
            if default not in clusters:
                raise ConfigError(
                    f"{path} has no valid 'default' cluster (known: "
                    f"{', '.join(sorted(clusters))}); pick one with --cluster ID"
                )
            base = _from_cli_entry(default, clusters[default], path)
            overlay = [{k: v for k, v in envs.items() if k != "endpoint"}, args]
        elif local := _running_local(env):
            base = local
            overlay = [{k: v for k, v in envs.items() if k != "endpoint"}, args]
        else:
            raise ConfigError(
                "no OSCAR cluster configured: set OSCAR_ENDPOINT with OSCAR_USER and "
                "OSCAR_PASSWORD (or OSCAR_TOKEN / OSCAR_REFRESH_TOKEN), add a cluster to "
                f"{path} (oscar-cli), or start the embedded one with `oscar-elyra local up`"
            )

    values = dict(base)
    for layer in overlay:
        values.update(layer)
    if env.get("OSCAR_TOKEN_ENDPOINT"):
        values["token_endpoint"] = env["OSCAR_TOKEN_ENDPOINT"]
    if env.get("OSCAR_CLIENT_ID"):
        values["client_id"] = env["OSCAR_CLIENT_ID"]
    if env.get("OSCAR_SSL_VERIFY") not in (None, ""):
        values["ssl_verify"] = parse_bool(env["OSCAR_SSL_VERIFY"], "OSCAR_SSL_VERIFY")
    if ssl_verify is not None:
        values["ssl_verify"] = parse_bool(ssl_verify, "ssl_verify")
    if "ssl_verify" not in values:
        values["ssl_verify"] = True
    return ClusterConfig(**values)


def _credentials_for(endpoint: str, path: Path, env: Mapping[str, str]) -> dict[str, Any] | None:
    """Settings of the oscar-cli entry or running embedded cluster at exactly ``endpoint``."""
    try:
        clusters, _ = load_oscar_cli_config(path)
    except ConfigError:
        clusters = {}
    for cid, entry in clusters.items():
        try:
            same = normalize_endpoint(str(entry.get("endpoint"))) == endpoint
        except ConfigError:
            continue
        if same:
            return _from_cli_entry(cid, entry, path)
    local = _running_local(env)
    if local and normalize_endpoint(local["endpoint"]) == endpoint:
        return local
    return None
