"""Elyra integration: the OSCAR component catalog connector, its schema, and the palette YAML.

The component YAML files ship inside this package (``oscar_elyra/elyra/components``) so
they are found both in an editable install and from a wheel; the repository's top-level
``components/`` folder holds symlinks to them for people browsing the project.
"""

from __future__ import annotations

from pathlib import Path

from oscar_elyra import __version__

#: catalog type id: schema name, entry point name, and the prefix of palette node ops
CATALOG_TYPE = "oscar-catalog"
#: palette category the components appear under
CATEGORY = "OSCAR"
#: name of the catalog instance ``oscar-elyra catalog install`` creates
CATALOG_INSTANCE = "oscar-components"
#: the container image every component YAML names and the Dockerfile builds (single source)
COMPONENT_IMAGE = f"ghcr.io/grycap/oscar-elyra:{__version__}"


def components_dir() -> Path:
    """Directory holding the palette component YAML files (``<name>.yaml``)."""
    return Path(__file__).resolve().parent / "components"


def component_files() -> list[Path]:
    """Every palette component YAML file, sorted by name."""
    return sorted(components_dir().glob("*.yaml"))


#: pod label that selects the Kubeflow PodDefault injecting OSCAR_* into palette tasks
POD_LABEL = "oscar-credentials"
#: Kubernetes Secret holding the OSCAR settings (Generic nodes reference its keys too)
CREDENTIALS_SECRET = "oscar-credentials"
