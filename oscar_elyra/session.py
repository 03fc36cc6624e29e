"""``connect()``: the one place that builds the OSCAR client and the object store of a cluster.

Everything above the core (invoke, artifacts, nodes, pipeline, CLI) gets its connections
here, so one cluster's settings (:func:`~oscar_elyra.config.resolve_cluster`) decide both
the REST client and the S3 store, and TLS verification for S3 is decided once, from the
cluster's ``ssl_verify`` setting (never from what the server advertises).
"""

from __future__ import annotations

import os
from typing import Any

from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig, resolve_cluster
from oscar_elyra.errors import StorageError, ValidationError
from oscar_elyra.storage import ObjectStore

__all__ = ["CLUSTER_MINIO", "Session", "connect", "provider_store", "store_for"]

#: the storage provider names that mean the cluster's own MinIO
CLUSTER_MINIO = ("minio", "minio.default")


def store_for(client: OscarClient, *, endpoint: str | None = None, **kwargs: Any) -> ObjectStore:
    """The object store described by ``client``'s ``/system/config`` ``minio_provider``.

    ``endpoint`` (or ``$OSCAR_S3_ENDPOINT``) overrides the advertised endpoint, e.g. when
    the cluster reports an in-cluster address. TLS verification follows the cluster's
    ``ssl_verify``; ``kwargs`` go to :class:`~oscar_elyra.storage.ObjectStore`.
    """
    mp = client.minio_provider()
    ep = endpoint or os.environ.get("OSCAR_S3_ENDPOINT") or mp.get("endpoint")
    if not ep:
        raise StorageError(f"cluster {client.endpoint} reports no MinIO endpoint in /system/config")
    kwargs.setdefault("verify", client.cluster.ssl_verify)
    kwargs.setdefault("region", mp.get("region") or None)
    return ObjectStore(ep, mp.get("access_key"), mp.get("secret_key"), **kwargs)


def provider_store(service: str, service_def: dict, provider: str, **kwargs: Any) -> ObjectStore:
    """The object store of storage provider ``provider`` (``s3.<id>`` or ``minio.<id>``,
    not the cluster's MinIO), built from the credentials in the service definition.

    Raises :class:`ValidationError` (one line) when the definition lacks them or the
    provider kind is one this client cannot reach (onedata, webdav, rucio).
    """
    kind, _, ident = provider.partition(".")
    creds = ((service_def.get("storage_providers") or {}).get(kind) or {}).get(ident or "default")
    where = f"service {service!r}: storage provider {provider!r}"
    if kind not in ("s3", "minio"):
        raise ValidationError(
            f"{where} is not S3-compatible; this client reaches S3 and MinIO only"
        )
    if not isinstance(creds, dict) or not creds.get("access_key") or not creds.get("secret_key"):
        raise ValidationError(
            f"{where} has no credentials in the service definition "
            f"(storage_providers.{kind}.{ident or 'default'}: access_key, secret_key)"
        )
    if creds.get("secret_key") == "hidden":
        raise ValidationError(f"{where}: the cluster hides its keys; it cannot be reached")
    region = str(creds.get("region") or "us-east-1")
    if kind == "s3":
        endpoint = str(creds.get("endpoint") or f"https://s3.{region}.amazonaws.com")
    else:
        endpoint = str(creds.get("endpoint") or "")
        if not endpoint:
            raise ValidationError(f"{where} has no endpoint in the service definition")
    kwargs.setdefault("verify", bool(creds.get("verify", True)))
    return ObjectStore(endpoint, creds["access_key"], creds["secret_key"], region=region, **kwargs)


class Session:
    """A cluster's :class:`OscarClient` and (built on first use) its :class:`ObjectStore`."""

    def __init__(
        self,
        client: OscarClient,
        store: ObjectStore | None = None,
        *,
        progress: bool | None = False,
        s3_endpoint: str | None = None,
    ) -> None:
        self.client = client
        self._store = store
        self._store_kwargs: dict[str, Any] = {"progress": progress}
        self._s3_endpoint = s3_endpoint

    @property
    def config(self) -> ClusterConfig:
        """The cluster's settings."""
        return self.client.cluster

    @property
    def store(self) -> ObjectStore:
        """The cluster's object store (keys from ``/system/config``, read once)."""
        if self._store is None:
            self._store = store_for(self.client, endpoint=self._s3_endpoint, **self._store_kwargs)
        return self._store

    def store_of(self, service: str, service_def: dict, provider: str | None) -> ObjectStore:
        """The store of ``provider`` in ``service_def`` (the cluster's MinIO by default)."""
        if (provider or "minio.default") in CLUSTER_MINIO:
            return self.store
        return provider_store(service, service_def, provider, **self._store_kwargs)

    def __iter__(self):  # ``client, store = connect()``
        yield self.client
        yield self.store

    def __repr__(self) -> str:
        return f"Session(cluster={self.client.cluster_id!r}, endpoint={self.client.endpoint!r})"

    def __reduce__(self):
        raise TypeError("a Session holds credentials and cannot be pickled; call connect() again")


def connect(
    cluster: str | ClusterConfig | None = None,
    *,
    endpoint: str | None = None,
    client: OscarClient | None = None,
    store: ObjectStore | None = None,
    progress: bool | None = False,
    s3_endpoint: str | None = None,
    **resolve_kwargs: Any,
) -> Session:
    """Connect to a cluster: ``client``/``store`` if given, else built from the settings.

    ``cluster`` is an oscar-cli cluster id or a :class:`ClusterConfig`; ``endpoint`` and
    ``resolve_kwargs`` (``user``, ``password``, ``token``, ``ssl_verify``, ...) go to
    :func:`~oscar_elyra.config.resolve_cluster` (arguments > environment > oscar-cli config
    > the running embedded cluster).
    """
    if client is None:
        if isinstance(cluster, ClusterConfig):
            config = cluster
        else:
            config = resolve_cluster(cluster, endpoint=endpoint, **resolve_kwargs)
        client = OscarClient(config)
    return Session(client, store, progress=progress, s3_endpoint=s3_endpoint)
