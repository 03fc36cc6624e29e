"""Shared argument parsing and error handling of the palette entry points."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from oscar_elyra import nodes
from oscar_elyra._paths import slug
from oscar_elyra.artifacts import Artifact, read_manifest
from oscar_elyra.errors import OscarError, is_bad_input
from oscar_elyra.redact import install_log_redaction, redact


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser for ``python -m oscar_elyra.palette.<prog>``."""
    return argparse.ArgumentParser(
        prog=f"python -m oscar_elyra.palette.{prog}", description=description
    )


#: what an unresolved KFP placeholder (``{{$.pipeline_job_uuid}}``) starts with
_PLACEHOLDER = "{{$"


def add_run_id(p: argparse.ArgumentParser) -> None:
    """``--run-id``: the run folder; the component YAML passes ``{{$.pipeline_job_uuid}}``, which
    Kubeflow Pipelines replaces with the run's id (an input constant equal to the placeholder)."""
    p.add_argument("--run-id", default="", help="run folder name (KFP: the run's id)")


def _ensure_run_name(run_id: str = "") -> None:
    """Set ``ELYRA_RUN_NAME``, which names the run's object storage folder.

    A run id KFP resolved wins, so all palette tasks of one KFP run share one folder; an
    unresolved placeholder (``oscar-elyra run`` does not resolve it) falls back to the
    ``ELYRA_RUN_NAME`` the runner set, else to a fresh name.
    """
    run_id = (run_id or "").strip()
    if run_id and not run_id.startswith(_PLACEHOLDER):
        os.environ["ELYRA_RUN_NAME"] = slug(run_id)
    elif not os.environ.get("ELYRA_RUN_NAME"):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        os.environ["ELYRA_RUN_NAME"] = slug(f"component-{stamp}-{uuid.uuid4().hex[:6]}")


def run_component(
    build: Callable[[], argparse.ArgumentParser],
    work: Callable[[argparse.Namespace], str],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run ``work`` (returns a one-line summary), map errors to one line + exit code.

    Exit codes: 0 done, 2 bad input or settings, 1 any other OSCAR error.
    """
    args = build().parse_args(argv)
    install_log_redaction()
    _ensure_run_name(getattr(args, "run_id", ""))
    try:
        print(work(args))
    except OscarError as exc:
        print(f"Error: {redact(str(exc))}", file=sys.stderr)
        return 2 if is_bad_input(exc) else 1
    return 0


def entry_point(
    build: Callable[[], argparse.ArgumentParser],
    work: Callable[[argparse.Namespace], str],
) -> Callable[[Sequence[str] | None], int]:
    """The ``main(argv=None) -> exit code`` of a palette module (see :func:`run_component`)."""

    def main(argv: Sequence[str] | None = None) -> int:
        return run_component(build, work, argv)

    main.__doc__ = "Run the component; returns the exit code."
    return main


def service_inputs(args: argparse.Namespace, timeout: int) -> tuple[str, int, list[Artifact]]:
    """``--service``, ``--timeout`` (default ``timeout``) and the ``--input-manifest`` artifacts
    of a service node, checked."""
    service = nodes.require("service", args.service, "the name of an OSCAR service")
    seconds = nodes.as_int("timeout", args.timeout, minimum=1, default=timeout)
    return service, seconds, read_manifest(args.input_manifest).artifacts
