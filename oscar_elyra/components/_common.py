"""Shared argument parsing and error handling of the component entry points."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oscar_elyra.errors import OscarError


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser for ``python -m oscar_elyra.components.<prog>``."""
    return argparse.ArgumentParser(
        prog=f"python -m oscar_elyra.components.{prog}", description=description
    )


def _ensure_run_name() -> None:
    # Palette components on KFP get no ELYRA_RUN_NAME; a fresh one keeps each run's objects apart.
    if not os.environ.get("ELYRA_RUN_NAME"):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        os.environ["ELYRA_RUN_NAME"] = f"component-{stamp}-{uuid.uuid4().hex[:6]}"


def write_json(path: str, data: Any) -> None:
    """Write a small JSON output file (KFP ``outputPath``), creating its folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def main(
    build: Callable[[], argparse.ArgumentParser],
    work: Callable[[argparse.Namespace], str],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run ``work`` (returns a one-line summary), map errors to one line + exit code."""
    from oscar_elyra.redact import install_log_redaction, redact

    args = build().parse_args(argv)
    install_log_redaction()
    _ensure_run_name()
    try:
        print(work(args))
    except OscarError as exc:
        print(f"Error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    return 0
