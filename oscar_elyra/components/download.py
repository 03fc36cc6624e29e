"""Component ``oscar_download.yaml``: download artifacts to a local folder (sha256 checked)."""

from __future__ import annotations

import argparse
import sys

from oscar_elyra import ops
from oscar_elyra.artifacts import publish, read_manifest
from oscar_elyra.components._common import main, parser


def build() -> argparse.ArgumentParser:
    p = parser("download", __doc__)
    p.add_argument("--input-manifest", required=True, help="manifest of the artifacts")
    p.add_argument("--destination", required=True, help="local folder to download into")
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    dest = ops.require("destination", args.destination, "a local folder to download into")
    arts = ops.download(read_manifest(args.input_manifest).artifacts, dest)
    publish(arts, "download", path=args.output_manifest)
    return f"downloaded {len(arts)} file(s) to {dest}"


if __name__ == "__main__":
    sys.exit(main(build, work))
