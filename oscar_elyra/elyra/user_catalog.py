"""Where palette components are: the bundled ones and the user's own (``palette add``).

The user component catalog is a folder, ``$OSCAR_ELYRA_COMPONENTS`` or the platform user
data dir's ``oscar-elyra/components`` (``~/.local/share/oscar-elyra/components`` on Linux),
holding one generated KFP component YAML per model (``<service>.yaml``). Elyra's palette
shows it through a second instance of the OSCAR catalog (:data:`USER_CATALOG_INSTANCE`,
category :data:`USER_CATEGORY`) whose metadata says ``"components": "user"``.

A palette node names its component by id (``component_ref["component-id"]``): a bundled
component is ``<file>.yaml``, a user one ``user/<file>.yaml`` (:data:`USER_PREFIX`).
:func:`component_path` resolves either, for the catalog connector and the pipeline runner.
Stdlib and platformdirs only: the Jupyter server imports this through the connector.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from platformdirs import user_data_dir

from oscar_elyra.elyra import components_dir

__all__ = [
    "COMPONENTS_ENV",
    "USER_CATALOG_INSTANCE",
    "USER_CATEGORY",
    "USER_PREFIX",
    "component_path",
    "user_component_files",
    "user_components_dir",
]

#: environment variable naming the user component folder
COMPONENTS_ENV = "OSCAR_ELYRA_COMPONENTS"
#: prefix of the component ids of user components
USER_PREFIX = "user/"
#: name of the Elyra catalog instance showing the user components
USER_CATALOG_INSTANCE = "oscar-models"
#: palette category of the user components (Elyra allows 18 characters)
USER_CATEGORY = "OSCAR models"
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.yaml$")


def user_components_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$OSCAR_ELYRA_COMPONENTS``, else ``<user data dir>/oscar-elyra/components``."""
    env = os.environ if env is None else env
    value = env.get(COMPONENTS_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path(user_data_dir("oscar-elyra", appauthor=False)) / "components"


def user_component_files() -> list[Path]:
    """Every user component YAML file, sorted by name (none when the folder is absent)."""
    folder = user_components_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file() and _FILE.match(p.name))


def component_path(component_id: str) -> Path | None:
    """The YAML file of a component id, or None (no such file, or not a plain file name).

    ``<file>.yaml`` is a bundled component, ``user/<file>.yaml`` a user one; a name with a
    path separator or ``..`` is never looked up.
    """
    cid = str(component_id or "")
    folder = components_dir()
    if cid.startswith(USER_PREFIX):
        cid = cid[len(USER_PREFIX) :]
        folder = user_components_dir()
    if not _FILE.match(cid) or ".." in cid:
        return None
    path = folder / cid
    return path if path.is_file() else None
