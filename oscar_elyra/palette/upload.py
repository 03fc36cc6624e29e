"""Component ``oscar_upload.yaml``: upload a local file or folder to object storage."""

from __future__ import annotations

import argparse

from oscar_elyra import nodes
from oscar_elyra.artifacts import publish
from oscar_elyra.examples.digits import sample_digits
from oscar_elyra.palette._common import add_run_id, entry_point, parser

__all__ = ["build", "main", "work"]


def build() -> argparse.ArgumentParser:
    """The command line the component YAML passes."""
    p = parser("upload", __doc__)
    p.add_argument("--source", required=True, help="local file or folder to upload")
    p.add_argument("--destination", default="", help="object storage prefix (default: run folder)")
    p.add_argument("--pattern", default="*", help="glob of the files to upload from a folder")
    p.add_argument("--sample-digits", default="0", help="first write this many sample digit PNGs")
    add_run_id(p)
    p.add_argument("--output-manifest", required=True, help="where to write the manifest")
    return p


def work(args: argparse.Namespace) -> str:
    """Upload and write the manifest; returns a one-line summary."""
    count = nodes.as_int("sample_digits", args.sample_digits, default=0)
    if count:
        sample_digits(args.source, count)
    arts = nodes.upload(
        args.source, destination=args.destination or None, pattern=args.pattern or "*"
    )
    publish(arts, "upload", path=args.output_manifest)
    return f"uploaded {len(arts)} file(s) to {arts[0].uri.rsplit('/', 1)[0]}/"


main = entry_point(build, work)


if __name__ == "__main__":
    raise SystemExit(main())
