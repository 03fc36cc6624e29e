"""Alias of :mod:`oscar_elyra.palette.invoke_async` (for older component YAML, KFP pipelines)."""

from __future__ import annotations

from oscar_elyra.palette.invoke_async import *  # noqa: F403
from oscar_elyra.palette.invoke_async import main

if __name__ == "__main__":
    raise SystemExit(main())
