"""Run Elyra ``.pipeline`` files as batch jobs: model, validation, DAG runner, run record, report.

Elyra itself is not imported here: only papermill, for notebook nodes.
"""

from __future__ import annotations

from oscar_elyra.pipeline.model import Node, Parameter, Pipeline, load_pipeline
from oscar_elyra.pipeline.runner import RunResult, prepare, read_run, run_pipeline
from oscar_elyra.pipeline.validation import (
    Issue,
    resolve_parameters,
    services_used,
    validate_pipeline,
)

__all__ = [
    "Issue",
    "Node",
    "Parameter",
    "Pipeline",
    "RunResult",
    "load_pipeline",
    "prepare",
    "read_run",
    "resolve_parameters",
    "run_pipeline",
    "services_used",
    "validate_pipeline",
]
