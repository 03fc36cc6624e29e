"""Component ``oscar_deploy_service.yaml``: create or update the services of an FDL file."""

from __future__ import annotations

import argparse

from oscar_elyra import nodes
from oscar_elyra._paths import write_json_atomic
from oscar_elyra.palette._common import entry_point, parser

__all__ = ["build", "main", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the component YAML passes."""
    p = parser("deploy_service", __doc__)
    p.add_argument("--fdl", required=True, help="path to an FDL file, or the FDL YAML text")
    p.add_argument("--timeout", default="120", help="seconds to wait for the services")
    p.add_argument("--output", required=True, help="where to write the JSON result")
    return p


def work(args: argparse.Namespace) -> str:
    """Deploy and write the JSON result; returns a one-line summary."""
    fdl = nodes.require("fdl", args.fdl, "a path to an FDL file or the FDL YAML text")
    timeout = nodes.as_int("timeout", args.timeout, minimum=1, default=120)
    done = nodes.deploy(fdl, timeout=timeout)
    write_json_atomic(args.output, done)
    return ", ".join(f"{d['service']} {d['action']}" for d in done)


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
