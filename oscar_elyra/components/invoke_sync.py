"""Alias of :mod:`oscar_elyra.palette.invoke_sync` (for older component YAML, KFP pipelines)."""

from __future__ import annotations

from oscar_elyra.palette.invoke_sync import *  # noqa: F403
from oscar_elyra.palette.invoke_sync import main

if __name__ == "__main__":
    raise SystemExit(main())
