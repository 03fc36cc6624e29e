"""Component ``oscar_invoke_sync.yaml``: call a service synchronously once per input artifact."""

from __future__ import annotations

import argparse
import sys

from oscar_elyra import ops
from oscar_elyra.artifacts import publish, read_manifest
from oscar_elyra.components._common import main, parser


def build() -> argparse.ArgumentParser:
    p = parser("invoke_sync", __doc__)
    p.add_argument("--service", required=True, help="OSCAR service name")
    p.add_argument("--input-manifest", required=True, help="manifest of the input artifacts")
    p.add_argument("--destination", default="", help="object storage prefix for the results")
    p.add_argument("--timeout", default="300", help="seconds to wait for each call")
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    service = ops.require("service", args.service, "the name of an OSCAR service")
    timeout = ops.as_int("timeout", args.timeout, minimum=1, default=300)
    inputs = read_manifest(args.input_manifest).artifacts
    arts = ops.invoke_sync(service, inputs, destination=args.destination or None, timeout=timeout)
    publish(arts, service, service=service, path=args.output_manifest)
    return f"{service}: {len(inputs)} call(s), {len(arts)} result(s)"


if __name__ == "__main__":
    sys.exit(main(build, work))
