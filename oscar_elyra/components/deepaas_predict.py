"""Alias of :mod:`oscar_elyra.palette.deepaas_predict` (for older component YAML, KFP pipelines)."""

from __future__ import annotations

from oscar_elyra.palette.deepaas_predict import *  # noqa: F403
from oscar_elyra.palette.deepaas_predict import main

if __name__ == "__main__":
    raise SystemExit(main())
