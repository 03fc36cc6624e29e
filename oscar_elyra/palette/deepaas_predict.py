"""Component ``oscar_deepaas_predict.yaml``: a DEEPaaS model's prediction per input artifact."""

from __future__ import annotations

import argparse

from oscar_elyra import deepaas, nodes
from oscar_elyra.artifacts import publish, run_name
from oscar_elyra.palette._common import add_run_id, entry_point, parser, service_inputs

__all__ = ["build", "main", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the component YAML passes."""
    p = parser("deepaas_predict", __doc__)
    p.add_argument("--service", required=True, help="DEEPaaS OSCAR service name")
    p.add_argument("--input-manifest", required=True, help="manifest of the input artifacts")
    p.add_argument(
        "--file-arg", default="", help="the model's file argument (default: its only one)"
    )
    p.add_argument("--model-args", default="", help="name=value pairs or a JSON object")
    p.add_argument("--destination", default="", help="object storage prefix for the predictions")
    p.add_argument("--timeout", default="300", help="seconds to wait for each call")
    add_run_id(p)
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    """Predict on each input artifact and write the manifest; returns a one-line summary."""
    service, timeout, inputs = service_inputs(args, 300)
    arts = deepaas.predict_artifacts(
        service,
        inputs,
        prefix=nodes.artifacts_prefix(service, args.destination or None),
        file_arg=args.file_arg.strip() or None,
        node=service,
        run=run_name(),
        timeout=timeout,
        args=deepaas.parse_model_args(args.model_args),
    )
    publish(arts, service, service=service, path=args.output_manifest)
    return f"{service}: {len(inputs)} input(s), {len(arts)} prediction(s)"


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
