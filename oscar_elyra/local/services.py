"""Persistent service registry of the embedded cluster (one JSON file per service)."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.errors import ConflictError, NotFoundError
from oscar_elyra.fdl import validate_service

__all__ = [
    "DEFAULT_OWNER",
    "ServiceStore",
    "as_oscar_returns",
    "path_matches",
    "split_path",
    "storage_paths",
    "validated",
]

#: the owner OSCAR records for a service created with Basic auth (``types.DefaultOwner``)
DEFAULT_OWNER = "cluster_admin"

#: fields OSCAR always returns (Go struct fields without ``omitempty``) with the defaults
#: its create handler sets (``checkValues``: memory 256Mi, cpu 0.2, log level INFO,
#: visibility private) or Go's zero values
_OSCAR_DEFAULTS: dict = {
    "cluster_id": "",
    "memory": "256Mi",
    "cpu": "0.2",
    "total_memory": "",
    "total_cpu": "",
    "ephemeral_storage_request": "",
    "enable_gpu": False,
    "enable_sgx": False,
    "image_prefetch": False,
    "synchronous": {"min_scale": 0, "max_scale": 0},
    "log_level": "INFO",
    "alpine": False,
    "file_stage_in": False,
    "input": [],
    "output": [],
    "annotations": {},
    "vo": "",
    "owner": DEFAULT_OWNER,
    "interlink_node_name": "",
    "visibility": "private",
    "allowed_users": [],
    "isolation_level": "SERVICE",
    "bucket_list": [],
}
_LOG_LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_LOCAL_PROVIDERS = {"minio", "minio.default"}


def storage_paths(svc: dict, field: str) -> list[dict]:
    """The ``input``/``output`` entries of ``svc`` that live in the cluster's own storage."""
    return [
        io
        for io in svc.get(field) or []
        if (io.get("storage_provider") or "minio.default") in _LOCAL_PROVIDERS
    ]


def as_oscar_returns(svc: dict, minio: dict) -> dict:
    """``svc`` as OSCAR's ``GET /system/services/{name}`` returns it.

    OSCAR's defaults and zero values filled in, its labels added, and
    ``storage_providers.minio.default`` set to the cluster's MinIO (endpoint, region and
    ``verify`` of ``minio``, keys shown as ``"hidden"``: clients read the real ones from
    ``/system/config``), overriding whatever the request said, as OSCAR does; other
    providers are returned as they were given (with their credentials). Filled at read
    time, because the embedded cluster's S3 port may change between restarts.
    """
    out = {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in _OSCAR_DEFAULTS.items()}
    out.update({k: v for k, v in svc.items() if v is not None})
    for key in ("memory", "cpu", "log_level", "visibility"):
        if not out.get(key):
            out[key] = _OSCAR_DEFAULTS[key]
    out["log_level"] = str(out["log_level"]).upper()
    if out["log_level"] not in _LOG_LEVELS:
        out["log_level"] = "INFO"
    env = dict(out.get("environment") or {})
    env.setdefault("variables", {})
    out["environment"] = env
    labels = dict(out.get("labels") or {})
    labels.update(
        {
            "oscar.grycap/user-service": "true",
            "oscar_service": svc["name"],
            "applicationId": svc["name"],
            "queue": f"root.oscar-queue.{svc['name']}",
            "owner_name": "oscar",
        }
    )
    out["labels"] = labels
    providers = {k: dict(v) for k, v in (out.get("storage_providers") or {}).items()}
    minio_providers = dict(providers.get("minio") or {})
    minio_providers["default"] = {
        "endpoint": minio.get("endpoint") or "",
        "verify": bool(minio.get("verify", False)),
        "access_key": "hidden",
        "secret_key": "hidden",
        "region": minio.get("region") or "us-east-1",
    }
    providers["minio"] = minio_providers
    out["storage_providers"] = providers
    return out


def split_path(path: str) -> tuple[str, str]:
    """``"bucket/a/b/"`` -> ``("bucket", "a/b")``."""
    bucket, _, prefix = path.partition("/")
    return bucket, prefix.strip("/")


def path_matches(name: str, io: dict) -> bool:
    """Whether ``name`` (relative to ``io``'s path) passes its ``prefix``/``suffix`` filters."""
    prefixes, suffixes = io.get("prefix") or [], io.get("suffix") or []
    base = name.rsplit("/", 1)[-1]
    if prefixes and not any(name.startswith(p) or base.startswith(p) for p in prefixes):
        return False
    if suffixes and not any(name.endswith(s) for s in suffixes):
        return False
    return True


def validated(svc: dict) -> dict:
    """``svc`` checked by :func:`~oscar_elyra.fdl.validate_service`, client-only keys dropped."""
    svc = validate_service(svc)
    svc.pop("_cluster_id", None)
    return svc


class ServiceStore:
    """Services kept in ``<data_dir>/services/<name>.json``; thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "services"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._services: dict[str, dict] = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                svc = json.loads(path.read_text(encoding="utf-8"))
                self._services[svc["name"]] = svc
            except (ValueError, KeyError, OSError):
                continue

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(s) for _, s in sorted(self._services.items())]

    def get(self, name: str) -> dict:
        with self._lock:
            svc = self._services.get(name)
        if svc is None:
            raise NotFoundError(f"service {name!r} not found")
        return dict(svc)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._services

    def create(self, svc: dict) -> dict:
        """Validate and store a new service with a fresh token (64 hex chars)."""
        svc = validated(svc)
        with self._lock:
            if svc["name"] in self._services:
                raise ConflictError(f"a service named {svc['name']!r} already exists")
            svc["token"] = secrets.token_hex(32)
            self._save(svc)
        return dict(svc)

    def update(self, svc: dict) -> tuple[dict, dict]:
        """Replace an existing service, keeping its token; returns (old, new)."""
        svc = validated(svc)
        with self._lock:
            old = self._services.get(svc["name"])
            if old is None:
                raise NotFoundError(f"service {svc['name']!r} not found")
            svc["token"] = old["token"]
            self._save(svc)
        return dict(old), dict(svc)

    def delete(self, name: str) -> dict:
        with self._lock:
            svc = self._services.pop(name, None)
            if svc is None:
                raise NotFoundError(f"service {name!r} not found")
            (self.dir / f"{name}.json").unlink(missing_ok=True)
        return svc

    def _save(self, svc: dict) -> None:
        write_json_atomic(self.dir / f"{svc['name']}.json", svc, mode=0o600)
        self._services[svc["name"]] = svc
