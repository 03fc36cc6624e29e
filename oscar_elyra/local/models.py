"""Where the embedded cluster's service scripts find DEEPaaS models (``deepaas.v2.model``).

The scripts run on the host with this environment's ``bin`` first on ``PATH``, so
``deepaas-cli`` is the PyPI ``deepaas`` package pinned in the ``local`` extra; it lives in the
same environment as the other dependencies (checked with ``pip install --dry-run``: no
conflict), so no separate virtual environment is made. DEEPaaS finds models through the
entry point group ``deepaas.v2.model``, read from installed package metadata. A source
checkout whose installed metadata predates the ``deepaas-digits`` entry point (or that is
not the installed copy) would not be found: for that case :func:`model_env` writes a small
``.dist-info`` declaring the entry points into a directory of its own and puts it, with the
package root this cluster runs from, on the scripts' ``PYTHONPATH``, and says so in the log.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import oscar_elyra
from oscar_elyra._paths import temp_near

__all__ = ["ENTRY_POINT_GROUP", "MODELS", "deepaas_available", "model_env"]

log = logging.getLogger("oscar_elyra.local")

ENTRY_POINT_GROUP = "deepaas.v2.model"
#: the DEEPaaS models of this package: entry point name -> module
MODELS = {"deepaas-digits": "oscar_elyra.examples.deepaas_digits_model"}


def deepaas_available() -> bool:
    """True when the ``deepaas`` package (``deepaas-cli``) is installed here."""
    return importlib.util.find_spec("deepaas") is not None


def _registered() -> bool:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return all(found.get(name) == module for name, module in MODELS.items())


def _package_root() -> Path:
    return Path(oscar_elyra.__file__).resolve().parent.parent


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = temp_near(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


@functools.lru_cache(maxsize=1)
def model_env() -> dict[str, str]:
    """Extra environment for service scripts so ``deepaas-cli`` finds this package's models."""
    if not deepaas_available():
        log.warning(
            "deepaas is not installed: the deepaas-digits example will fail; "
            "install it with: pip install 'oscar-elyra[local]'"
        )
        return {}
    root = _package_root()
    paths = [str(root)]
    if not _registered():
        tag = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        site = Path(tempfile.gettempdir()) / f"oscar-elyra-deepaas-{tag}"
        info = site / "oscar_elyra_deepaas_models-0.0.0.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{n} = {m}" for n, m in MODELS.items()]
        meta = "Metadata-Version: 2.1\nName: oscar-elyra-deepaas-models\nVersion: 0.0.0\n"
        _write_atomic(info / "METADATA", meta)
        _write_atomic(info / "entry_points.txt", "\n".join(lines) + "\n")
        paths.insert(0, str(site))
        log.info(
            "DEEPaaS models of %s are not in the installed package metadata: registered "
            "them for service scripts in %s",
            root,
            site,
        )
    return {"PYTHONPATH": os.pathsep.join(paths)}
