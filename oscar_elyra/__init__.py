"""oscar_elyra: compose AI inference pipelines on OSCAR clusters from JupyterLab/Elyra.

The names below are imported lazily so that ``import oscar_elyra`` stays cheap. ``map`` and
``TimeoutError`` are attributes (``oe.map``, ``oe.TimeoutError``) but not in ``__all__``, so
``from oscar_elyra import *`` never shadows the builtins of the same name.
"""

from __future__ import annotations

import builtins
from importlib import import_module
from typing import Any

from oscar_elyra import errors as _errors  # stdlib only: cheap

__version__ = "0.1.0"

_LAZY = {
    "connect": "oscar_elyra.session",
    "Session": "oscar_elyra.session",
    "OscarClient": "oscar_elyra.client",
    "ObjectStore": "oscar_elyra.storage",
    "ObjectInfo": "oscar_elyra.storage",
    "ClusterConfig": "oscar_elyra.config",
    "resolve_cluster": "oscar_elyra.config",
    "run": "oscar_elyra.invoke",
    "submit": "oscar_elyra.invoke",
    "wait": "oscar_elyra.invoke",
    "map": "oscar_elyra.invoke",
    "Result": "oscar_elyra.invoke",
    "Job": "oscar_elyra.invoke",
    "BatchResult": "oscar_elyra.invoke",
    "Artifact": "oscar_elyra.artifacts",
    "Manifest": "oscar_elyra.artifacts",
    **{name: "oscar_elyra.errors" for name in _errors.__all__},
}
#: sub-modules reachable as attributes (``oe.deepaas.predict(...)``)
_SUBMODULES = {"deepaas"}

__all__ = sorted(
    [name for name in _LAZY if not hasattr(builtins, name)] + [*_SUBMODULES, "__version__"]
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"oscar_elyra.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oscar_elyra' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Jupyter server extension: creates the OSCAR palette catalog when Jupyter starts
    (enabled by ``etc/jupyter/jupyter_server_config.d/oscar_elyra.json``, installed with the
    package)."""
    return [{"module": "oscar_elyra.elyra.catalog"}]
