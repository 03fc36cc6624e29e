"""Component ``oscar_download.yaml``: download artifacts into the ``files`` output (a folder
KFP keeps as an output artifact), sha256 checked."""

from __future__ import annotations

import argparse

from oscar_elyra import nodes
from oscar_elyra.artifacts import publish, read_manifest
from oscar_elyra.palette._common import add_run_id, entry_point, parser

__all__ = ["build", "main", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the component YAML passes."""
    p = parser("download", __doc__)
    p.add_argument("--input-manifest", required=True, help="manifest of the artifacts")
    add_run_id(p)
    p.add_argument("--output-dir", required=True, help="folder to download into (KFP output)")
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    """Download and write the manifest; returns a one-line summary."""
    arts = nodes.download(read_manifest(args.input_manifest).artifacts, args.output_dir)
    publish(arts, "download", path=args.output_manifest)
    return f"downloaded {len(arts)} file(s) to {args.output_dir}"


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
