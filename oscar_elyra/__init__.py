"""oscar_elyra: compose AI inference pipelines on OSCAR clusters from JupyterLab/Elyra.

The names below are imported lazily so that ``import oscar_elyra`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "OscarClient": "oscar_elyra.client",
    "ObjectStore": "oscar_elyra.storage",
    "ClusterConfig": "oscar_elyra.config",
    "resolve_cluster": "oscar_elyra.config",
    "run": "oscar_elyra.invoke",
    "submit": "oscar_elyra.invoke",
    "wait": "oscar_elyra.invoke",
    "map": "oscar_elyra.invoke",
    "Result": "oscar_elyra.invoke",
    "Job": "oscar_elyra.invoke",
    "OscarError": "oscar_elyra.errors",
    "AuthError": "oscar_elyra.errors",
    "NotFoundError": "oscar_elyra.errors",
    "ConflictError": "oscar_elyra.errors",
    "ServiceError": "oscar_elyra.errors",
    "TimeoutError": "oscar_elyra.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oscar_elyra' has no attribute {name!r}")
    return getattr(import_module(module), name)
