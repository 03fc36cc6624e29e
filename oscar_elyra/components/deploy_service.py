"""Component ``oscar_deploy_service.yaml``: create or update the services of an FDL file."""

from __future__ import annotations

import argparse
import sys

from oscar_elyra import ops
from oscar_elyra.components._common import main, parser, write_json


def build() -> argparse.ArgumentParser:
    p = parser("deploy_service", __doc__)
    p.add_argument("--fdl", required=True, help="path to an FDL file, or the FDL YAML text")
    p.add_argument("--timeout", default="120", help="seconds to wait for the services")
    p.add_argument("--output", required=True, help="where to write the JSON result")
    return p


def work(args: argparse.Namespace) -> str:
    fdl = ops.require("fdl", args.fdl, "a path to an FDL file or the FDL YAML text")
    timeout = ops.as_int("timeout", args.timeout, minimum=1, default=120)
    done = ops.deploy(fdl, timeout=timeout)
    write_json(args.output, done)
    return ", ".join(f"{d['service']} {d['action']}" for d in done)


if __name__ == "__main__":
    sys.exit(main(build, work))
