"""Alias of :mod:`oscar_elyra.palette.deploy_service` (for older component YAML, KFP pipelines)."""

from __future__ import annotations

from oscar_elyra.palette.deploy_service import *  # noqa: F403
from oscar_elyra.palette.deploy_service import main

if __name__ == "__main__":
    raise SystemExit(main())
