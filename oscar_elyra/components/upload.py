"""Component ``oscar_upload.yaml``: upload a local file or folder to object storage."""

from __future__ import annotations

import argparse
import sys

from oscar_elyra import ops
from oscar_elyra.artifacts import publish
from oscar_elyra.components._common import main, parser


def build() -> argparse.ArgumentParser:
    p = parser("upload", __doc__)
    p.add_argument("--source", required=True, help="local file or folder to upload")
    p.add_argument("--destination", default="", help="object storage prefix (default: run folder)")
    p.add_argument("--pattern", default="*", help="glob of the files to upload from a folder")
    p.add_argument("--sample-digits", default="0", help="first write this many sample digit PNGs")
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    count = ops.as_int("sample_digits", args.sample_digits, default=0)
    if count:
        ops.sample_digits(args.source, count)
    arts = ops.upload(
        args.source, destination=args.destination or None, pattern=args.pattern or "*"
    )
    publish(arts, "upload", path=args.output_manifest)
    return f"uploaded {len(arts)} file(s) to {arts[0].uri.rsplit('/', 1)[0]}/"


if __name__ == "__main__":
    sys.exit(main(build, work))
