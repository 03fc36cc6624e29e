"""Write the sample inputs of the example pipelines: handwritten digits as small PNGs.

    python pipelines/make_digits.py [--count 40] [--out pipelines/data/digits]

The images come from scikit-learn's bundled 8x8 digits data set (no download), upscaled to
32x32 grayscale; each file is named ``digit-<true label>-<index>.png`` so the report can score
the classifier. The committed ``pipelines/data/digits`` was made with the defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from oscar_elyra.examples.digits import sample_digits


def main() -> None:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=40, help="number of images (default 40)")
    p.add_argument("--out", type=Path, default=here / "data" / "digits", help="output folder")
    args = p.parse_args()
    paths = sample_digits(args.out, args.count)
    print(f"wrote {len(paths)} images to {args.out}")


if __name__ == "__main__":
    main()
