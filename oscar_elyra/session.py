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
from oscar_elyra.errors import StorageError
from oscar_elyra.storage import ObjectStore

__all__ = ["Session", "connect", "store_for"]


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
