"""Alias of :mod:`oscar_elyra.palette`, kept so that component YAML and exported KFP pipelines
running ``python -m oscar_elyra.components.<name>`` keep working."""

from __future__ import annotations

from oscar_elyra.palette import COMPONENTS

__all__ = ["COMPONENTS"]
