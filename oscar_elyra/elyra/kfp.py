"""Kubernetes objects that give OSCAR palette tasks on Kubeflow Pipelines their settings.

Elyra 4.1 attaches neither environment variables nor Kubernetes secrets to palette (custom)
components, only pod labels. Kubeflow's admission webhook applies a ``PodDefault``
(``kubeflow.org/v1alpha1``) to every pod of the profile namespace whose labels match its
selector, so: one ``Secret`` with the settings, one ``PodDefault`` that turns its keys into
``OSCAR_*`` environment variables for pods labelled ``oscar-credentials: "true"``, and that label
on the OSCAR nodes (``digits_kfp.pipeline`` sets it in its pipeline defaults). The Secret's keys
are the ones the Generic example nodes reference (``endpoint``, ``user``, ``password``...).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from oscar_elyra.config import ClusterConfig
from oscar_elyra.elyra import CREDENTIALS_SECRET, POD_LABEL
from oscar_elyra.errors import ConfigError, ValidationError

__all__ = ["SECRET_KEYS", "credentials_objects", "warnings_for"]

#: Secret key -> environment variable of the palette tasks
SECRET_KEYS = {
    "endpoint": "OSCAR_ENDPOINT",
    "cluster_id": "OSCAR_CLUSTER_ID",
    "user": "OSCAR_USER",
    "password": "OSCAR_PASSWORD",
    "token": "OSCAR_TOKEN",
    "refresh_token": "OSCAR_REFRESH_TOKEN",
    "token_endpoint": "OSCAR_TOKEN_ENDPOINT",
    "client_id": "OSCAR_CLIENT_ID",
    "service_token": "OSCAR_SERVICE_TOKEN",
    "ssl_verify": "OSCAR_SSL_VERIFY",
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.match(value or ""):
        raise ValidationError(
            f"{kind} {value!r} is not a valid Kubernetes name "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return value


def _secret_data(config: ClusterConfig) -> dict[str, str]:
    """The Secret's keys: ``config``'s ``OSCAR_*`` variables that work from a pod."""
    env = config.to_env()
    data = {key: env[var] for key, var in SECRET_KEYS.items() if env.get(var)}
    if not config.password:
        data.pop("user", None)  # a user name only goes with a password
    if not {"password", "token", "refresh_token", "service_token"} & set(data):
        local = "an oidc-agent account" if config.oidc_account else "a token file"
        how = (
            f"{local} works only on this machine"
            if config.oidc_account or config.token_file
            else "no password or token is configured"
        )
        raise ConfigError(
            f"cluster {config.cluster_id!r}: {how}; set OSCAR_USER and OSCAR_PASSWORD, or "
            "OSCAR_REFRESH_TOKEN (with OSCAR_TOKEN_ENDPOINT and OSCAR_CLIENT_ID), or OSCAR_TOKEN"
        )
    return data


def credentials_objects(
    config: ClusterConfig, namespace: str, *, secret_name: str = CREDENTIALS_SECRET
) -> list[dict[str, Any]]:
    """The ``Secret`` with ``config``'s settings and the ``PodDefault`` injecting them, for the
    Kubeflow profile namespace ``namespace``. The Secret holds secrets: print it, never log it."""
    _check("namespace", namespace, _DNS_LABEL)
    _check("secret name", secret_name, _DNS_NAME)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": namespace},
        "type": "Opaque",
        "stringData": _secret_data(config),
    }
    env = [
        {
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key, "optional": True}},
        }
        for key, var in SECRET_KEYS.items()
    ]
    poddefault = {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": {"name": secret_name, "namespace": namespace},
        "spec": {
            "desc": "OSCAR cluster settings (OSCAR_*) for oscar-elyra components",
            "selector": {"matchLabels": {POD_LABEL: "true"}},
            "env": env,
        },
    }
    return [secret, poddefault]


def warnings_for(config: ClusterConfig) -> list[str]:
    """What will not work from a Kubernetes pod with these settings (one line each)."""
    found = []
    host = urlsplit(config.endpoint).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        found.append(
            f"endpoint {config.endpoint} is on this machine (the embedded cluster?): "
            "Kubeflow pods cannot reach it"
        )
    if config.token and not config.refresh_token and not config.password:
        found.append(
            "OSCAR_TOKEN is an access token and expires (usually within hours); "
            "prefer OSCAR_REFRESH_TOKEN for pipelines"
        )
    return found
