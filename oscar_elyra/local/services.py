"""Persistent service registry of the embedded cluster (one JSON file per service)."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

from oscar_elyra._paths import write_json_atomic
from oscar_elyra.errors import ConflictError, NotFoundError
from oscar_elyra.fdl import validate_service

__all__ = ["ServiceStore", "path_matches", "split_path", "storage_paths", "validated"]

_LOCAL_PROVIDERS = {"minio", "minio.default"}


def storage_paths(svc: dict, field: str) -> list[dict]:
    """The ``input``/``output`` entries of ``svc`` that live in the cluster's own storage."""
    return [
        io
        for io in svc.get(field) or []
        if (io.get("storage_provider") or "minio.default") in _LOCAL_PROVIDERS
    ]


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
