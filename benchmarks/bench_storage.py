"""P4: object storage throughput, ``oscar_elyra.storage.ObjectStore`` beside ``rclone``.

Same SeaweedFS S3 server (started here, 127.0.0.1, temp dir), same parallelism for both
(``--parallel``: our ``workers``; rclone's ``--transfers``, ``--checkers``,
``--multi-thread-streams`` and ``--s3-upload-concurrency``; both with 8 MiB parts).
rclone is Debian's package (``apt-get install rclone``); without it the rclone figures are
skipped with a line. Each case is the best of ``--repeat`` runs, the two sides alternating.

Goals (throughput ratio ours / rclone): small-file downloads >= 1.0, small-file uploads
>= 1.2, the big file >= 1.0 both ways.

    python benchmarks/bench_storage.py                  # 256 MB file + 1,000 x 16 KB files
    python benchmarks/bench_storage.py --size-mb 1024 --files 300
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _results import row, save

from oscar_elyra.local.weed import SeaweedFS
from oscar_elyra.storage import ObjectStore

MiB = 1024 * 1024


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256, help="big file size (MB)")
    ap.add_argument("--files", type=int, default=1000, help="number of small files")
    ap.add_argument("--small-kb", type=int, default=16, help="small file size (KB)")
    ap.add_argument("--parallel", type=int, default=8, help="parallel streams/transfers")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    args = ap.parse_args()

    rclone = shutil.which("rclone")
    if rclone is None:
        print("rclone not found (apt-get install rclone): rclone figures skipped")
    par = str(args.parallel)
    rows: list[dict] = []
    raw: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        work = Path(tmp)
        server = SeaweedFS(
            work / "s3",
            access_key="bench" + secrets.token_hex(4),
            secret_key=secrets.token_urlsafe(24),
        )
        server.start()
        try:
            store = ObjectStore(
                server.endpoint,
                server.access_key,
                server.secret_key,
                progress=False,
                workers=args.parallel,
                part_size=8 * MiB,
            )
            store.ensure_bucket("bench")
            # AWS_* variables of this shell (a CA bundle...) must not reach rclone's S3 SDK
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(
                RCLONE_CONFIG_W_TYPE="s3",
                RCLONE_CONFIG_W_PROVIDER="Other",
                RCLONE_CONFIG_W_ACCESS_KEY_ID=server.access_key,
                RCLONE_CONFIG_W_SECRET_ACCESS_KEY=server.secret_key,
                RCLONE_CONFIG_W_ENDPOINT=server.endpoint,
                RCLONE_CONFIG_W_REGION="us-east-1",
                RCLONE_CONFIG=str(work / "none.conf"),
            )
            common = [
                "--s3-no-check-bucket",
                "--s3-chunk-size",
                "8M",
                "--s3-upload-concurrency",
                par,
                "--multi-thread-streams",
                par,
                "--multi-thread-cutoff",
                "16M",
                "--transfers",
                par,
                "--checkers",
                par,
                "-q",
            ]

            def rc(*a: str) -> None:
                subprocess.run([rclone, *a, *common], env=env, check=True)

            big = work / "big.bin"
            block = os.urandom(MiB)
            with open(big, "wb") as fh:
                for _ in range(args.size_mb):
                    fh.write(block)
            small = work / "small"
            small.mkdir()
            for i in range(args.files):
                (small / f"f{i:05d}.bin").write_bytes(os.urandom(args.small_kb * 1024))

            # warm the server up (volume allocation) so neither side pays for it
            store.put_bytes(os.urandom(32 * MiB), "bench/warmup.bin")
            store.upload_dir(small, "bench/warmup-small")

            def case(name, ours, theirs, size: int, count: int, goal: float, clean=None):
                # best of --repeat runs each, order alternating (page cache, writeback)
                t_rc = t_ours = float("inf")
                for i in range(args.repeat):
                    if clean:
                        clean()
                    for who in ("rc", "ours") if i % 2 == 0 else ("ours", "rc"):
                        # a fresh destination per run: rclone would skip what is there
                        if who == "ours":
                            t_ours = min(t_ours, timed(lambda i=i: ours(i)))
                        elif rclone:
                            t_rc = min(t_rc, timed(lambda i=i: theirs(i)))

                def rate(t: float) -> str:
                    if count > 1:
                        return f"{count / t:,.0f} files/s"
                    return f"{size / MiB / t:,.0f} MB/s"

                ratio = t_rc / t_ours if rclone else None
                met = None if ratio is None else ratio >= goal
                raw[name] = {"ours_s": t_ours, "rclone_s": t_rc if rclone else None}
                rows.append(
                    row(
                        name,
                        rate(t_ours),
                        f"rclone {rate(t_rc)}" if rclone else "rclone absent",
                        ratio,
                        f">= {goal:g}x",
                        met,
                    )
                )
                theirs_txt = f"rclone {rate(t_rc):>13}" if rclone else "rclone skipped"
                verdict = "" if ratio is None else f"ratio {ratio:5.2f} (goal >= {goal:g}: "
                verdict += "" if met is None else ("met)" if met else "MISSED)")
                print(f"{name:<34} ours {rate(t_ours):>13}  {theirs_txt}  {verdict}", flush=True)

            print(
                f"\n== P4: {args.files} x {args.small_kb} KB files and a {args.size_mb} MB file, "
                f"parallel={par}, SeaweedFS {server.endpoint}, best of {args.repeat} ==",
                flush=True,
            )
            d1, d2 = work / "dl-ours", work / "dl-rc"

            def clean() -> None:
                shutil.rmtree(d1, ignore_errors=True)
                shutil.rmtree(d2, ignore_errors=True)
                os.sync()

            label = f"{args.files:,} x {args.small_kb} KB"
            case(
                f"download {label}",
                lambda i: store.download_dir("bench/warmup-small", d1),
                lambda i: rc("copy", "w:bench/warmup-small", str(d2)),
                args.files * args.small_kb * 1024,
                args.files,
                1.0,
                clean,
            )
            assert len(list(d1.iterdir())) == args.files
            case(
                f"upload {label}",
                lambda i: store.upload_dir(small, f"bench/ours-small{i}"),
                lambda i: rc("copy", str(small), f"w:bench/rc-small{i}"),
                args.files * args.small_kb * 1024,
                args.files,
                1.2,
            )
            case(
                f"upload one {args.size_mb} MB file",
                lambda i: store.put_file(big, f"bench/ours{i}/big.bin"),
                lambda i: rc("copyto", str(big), f"w:bench/rc{i}/big.bin"),
                args.size_mb * MiB,
                1,
                1.0,
                os.sync,
            )
            case(
                f"download one {args.size_mb} MB file",
                lambda i: store.get_file("bench/ours0/big.bin", d1 / "big.bin"),
                lambda i: rc("copyto", "w:bench/ours0/big.bin", str(d2 / "big.bin")),
                args.size_mb * MiB,
                1,
                1.0,
                clean,
            )
            assert (d1 / "big.bin").stat().st_size == big.stat().st_size
            clean()
        finally:
            server.stop()
    path = save("storage", rows, figures=raw, parallel=args.parallel)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
