"""Alias of :mod:`oscar_elyra.palette.download` (for older component YAML, KFP pipelines)."""

from __future__ import annotations

from oscar_elyra.palette.download import *  # noqa: F403
from oscar_elyra.palette.download import main

if __name__ == "__main__":
    raise SystemExit(main())
