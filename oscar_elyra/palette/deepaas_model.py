"""Typed model components (``oscar-elyra palette add``): a DEEPaaS model's predictions.

Each ``--file NAME MANIFEST`` is a file argument of the model and the artifact manifest of
its files; each ``--arg NAME VALUE`` a model argument (an empty value counts as not given).
The node makes one prediction per artifact of the first ``--file`` (the other file arguments
give one artifact, used for every call, or as many as the first), stores each prediction as
``<input stem>.json`` and writes their manifest. With no ``--file``, one prediction.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oscar_elyra import deepaas, nodes
from oscar_elyra._paths import slug
from oscar_elyra.artifacts import Artifact, fetch, publish, read_manifest, run_name
from oscar_elyra.errors import ValidationError
from oscar_elyra.palette._common import entry_point, parser
from oscar_elyra.session import Session, connect
from oscar_elyra.storage import parse_uri

__all__ = ["build", "main", "predict_manifests", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the generated component YAML passes."""
    p = parser("deepaas_model", __doc__)
    p.add_argument("--service", required=True, help="DEEPaaS OSCAR service name")
    p.add_argument(
        "--file",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "MANIFEST"),
        help="a file argument and the manifest of its files",
    )
    p.add_argument(
        "--arg",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a model argument",
    )
    p.add_argument("--destination", default="", help="object storage prefix for the predictions")
    p.add_argument("--timeout", default="300", help="seconds to wait for each prediction")
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def _rounds(service: str, manifests: Mapping[str, list[Artifact]]) -> list[dict[str, Artifact]]:
    """One ``{file argument: artifact}`` per prediction (the first argument's artifacts)."""
    if not manifests:
        return [{}]
    first, *others = manifests
    count = len(manifests[first])
    if count == 0:
        raise ValidationError(f"{service}: the manifest of file argument {first!r} is empty")
    for name in others:
        if len(manifests[name]) not in (1, count):
            raise ValidationError(
                f"{service}: file argument {name!r} has {len(manifests[name])} artifacts; "
                f"give one, or as many as {first!r} ({count})"
            )
    return [
        {name: arts[i if len(arts) > 1 else 0] for name, arts in manifests.items()}
        for i in range(count)
    ]


def predict_manifests(
    service: str,
    manifests: Mapping[str, list[Artifact]],
    args: Mapping[str, Any],
    *,
    prefix: str,
    run: str | None = None,
    timeout: float | None = None,
    session: Session | None = None,
) -> list[Artifact]:
    """Predict once per round of input artifacts (see the module docstring); returns the
    prediction artifacts stored under ``prefix`` (``<stem of the first file>.json``)."""
    sess = session if session is not None else connect()
    rounds = _rounds(service, manifests)
    deepaas.help(service, session=sess, timeout=timeout)  # a non-DEEPaaS service fails here
    sess.store.ensure_bucket(parse_uri(prefix)[0])
    out: list[Artifact] = []
    used: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="oscar-deepaas-") as tmp:
        for n, inputs in enumerate(rounds):
            files = {}
            for name, art in inputs.items():
                (files[name],) = fetch([art], Path(tmp) / f"{n}-{slug(name)}", store=sess.store)
            pred = deepaas.predict(
                service, files=files, session=sess, timeout=timeout, args=dict(args)
            )
            first = next(iter(inputs.values()), None)
            stem = slug(Path(first.name).stem) if first is not None else "prediction"
            source = first.uri if first is not None else None
            out.append(
                deepaas.store_prediction(
                    sess,
                    pred,
                    prefix,
                    stem,
                    used,
                    n,
                    node=service,
                    service=service,
                    run=run,
                    source=source,
                )
            )
    return out


def work(args: argparse.Namespace) -> str:
    """Predict and write the manifest; returns a one-line summary."""
    service = nodes.require("service", args.service, "the name of a DEEPaaS OSCAR service")
    timeout = nodes.as_int("timeout", args.timeout, minimum=1, default=300)
    manifests = {name: read_manifest(path).artifacts for name, path in args.file}
    model_args = {name: value for name, value in args.arg if value.strip() != ""}
    arts = predict_manifests(
        service,
        manifests,
        model_args,
        prefix=nodes.artifacts_prefix(service, args.destination or None),
        run=run_name(),
        timeout=timeout,
    )
    publish(arts, service, service=service, path=args.output_manifest)
    return f"{service}: {len(arts)} prediction(s)"


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
