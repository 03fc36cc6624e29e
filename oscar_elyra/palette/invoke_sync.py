"""Component ``oscar_invoke_sync.yaml``: call a service synchronously once per input artifact."""

from __future__ import annotations

import argparse

from oscar_elyra import nodes
from oscar_elyra.artifacts import publish
from oscar_elyra.palette._common import add_run_id, entry_point, parser, service_inputs

__all__ = ["build", "main", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the component YAML passes."""
    p = parser("invoke_sync", __doc__)
    p.add_argument("--service", required=True, help="OSCAR service name")
    p.add_argument("--input-manifest", required=True, help="manifest of the input artifacts")
    p.add_argument("--destination", default="", help="object storage prefix for the results")
    p.add_argument("--timeout", default="300", help="seconds to wait for each call")
    add_run_id(p)
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    """Call the service and write the manifest; returns a one-line summary."""
    service, timeout, inputs = service_inputs(args, 300)
    arts = nodes.invoke_sync(service, inputs, destination=args.destination or None, timeout=timeout)
    publish(arts, service, service=service, path=args.output_manifest)
    return f"{service}: {len(inputs)} call(s), {len(arts)} result(s)"


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
