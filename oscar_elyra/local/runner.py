"""The one job runner of the embedded cluster, shared by sync ``/run`` and async jobs.

It does on the host what OSCAR's faas-supervisor does in a service container: a fresh
workspace (``work/``, ``input/``, ``output/`` in a temp dir), the container's
environment (``environment.variables`` and ``secrets``, ``INPUT_FILE_PATH``,
``TMP_OUTPUT_DIR``, ``OSCAR_SERVICE_NAME``, ``OSCAR_SERVICE_TOKEN``, ``JOB_UUID`` and,
for async jobs, ``EVENT``), ``bash script.sh`` in its own process group, then the
outputs: the sync answer (one file, a zip of several, or the script's stdout) or an
upload of every output file to each output path whose filters match.

Crash safety: the script runs under a small ``bash -c`` wrapper that writes its exit code
to ``rc`` in the workspace, and the wrapper's pid (= process group) is written to ``pgid``
there, so a restarted cluster can tell a script its killed predecessor left running
(:func:`~oscar_elyra.local.procs.group_of`), wait for it, read its exit code and upload its
outputs (see :mod:`~oscar_elyra.local.jobs`), or end it and clean up
(:meth:`Runner.clean_leftovers`).

The venv's ``bin`` dir is first on ``PATH`` so ``python3`` has this environment's
packages; credentials of the host (``AWS_*``, ``OSCAR_*``, ``MINIO_*``) are not passed.
Difference from OSCAR: the service ``image`` is recorded but never pulled.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from minio import Minio

from oscar_elyra.errors import ValidationError
from oscar_elyra.local.models import model_env
from oscar_elyra.local.procs import group_of, kill_group
from oscar_elyra.local.services import path_matches, split_path, storage_paths

__all__ = [
    "TIMED_OUT",
    "Runner",
    "Workspace",
    "decode_body",
    "event_file_name",
    "job_env",
    "supervisor_line",
]

#: exit code :meth:`Runner.run` reports for a script killed at its timeout
TIMED_OUT = -9
#: a body up to this size that looks like JSON is parsed to be sure it is JSON
JSON_CHECK_LIMIT = 32 * 1024 * 1024
CHUNK = 1 << 16
_SECRET_ENV_PREFIXES = ("AWS_", "OSCAR_", "MINIO_")

T = TypeVar("T")


def decode_body(src: Path, dest: Path) -> str:
    """Write the job input for request body ``src`` to ``dest``; returns "json" or "base64".

    A body that parses as JSON (an object, array or string) is written as-is; any other
    body is base64-decoded, chunk by chunk. Raises :class:`ValidationError` otherwise.
    """
    src, dest = Path(src), Path(dest)
    with open(src, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head[:1] in (b"{", b"[", b'"'):
        is_json = True
        if src.stat().st_size <= JSON_CHECK_LIMIT:
            try:
                with open(src, "rb") as fh:
                    json.load(fh)
            except (ValueError, UnicodeDecodeError):
                is_json = False
        if is_json:
            shutil.copyfile(src, dest)
            return "json"
    tmp = dest.with_name(dest.name + ".part")
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            carry = b""
            while chunk := fi.read(CHUNK):
                data = carry + chunk.translate(None, b" \t\r\n")
                n = len(data) // 4 * 4
                fo.write(base64.b64decode(data[:n], validate=True))
                carry = data[n:]
            if carry:
                raise binascii.Error("truncated")
        os.replace(tmp, dest)
    except (binascii.Error, ValueError):
        tmp.unlink(missing_ok=True)
        raise ValidationError(
            "request body is neither JSON nor valid base64; send JSON as-is or "
            "base64-encode the file"
        ) from None
    return "base64"


def event_file_name(job_uuid: str) -> str:
    """Name of the input file of a job invoked with a request body (as OSCAR names it)."""
    return f"event-file-{job_uuid}"


def job_env(
    svc: dict,
    input_path: Path | str,
    out_dir: Path | str,
    job_uuid: str,
    event: str | None = None,
) -> dict[str, str]:
    """The environment a service script gets (host env without credentials + OSCAR's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_ENV_PREFIXES)}
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.pop("PYTHONPATH", None)
    env.update(model_env())  # DEEPaaS models of this package (local/models.py)
    environment = svc.get("environment") or {}
    for section in ("variables", "secrets"):
        for k, v in (environment.get(section) or {}).items():
            env[str(k)] = str(v)
    env.update(
        INPUT_FILE_PATH=str(input_path),
        TMP_OUTPUT_DIR=str(out_dir),
        OSCAR_SERVICE_NAME=svc["name"],
        OSCAR_SERVICE_TOKEN=svc.get("token", ""),
        JOB_UUID=job_uuid,
    )
    if event is not None:
        env["EVENT"] = event
    return env


def supervisor_line(message: str, level: str = "INFO") -> str:
    """A job-log line as OSCAR's faas-supervisor writes them around the script's output
    (its logging format ``%(asctime)s - %(name)s - %(levelname)s - %(message)s``)."""
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{ts} - supervisor - {level} - {message}\n"


#: runs the script, then records its exit code in the workspace (atomically)
_WRAPPER = 'bash "$1"; rc=$?; printf "%s\\n" "$rc" > "$2.tmp" && mv -f "$2.tmp" "$2"; exit "$rc"'


@dataclass(frozen=True)
class Workspace:
    """One job's temp dir: ``work/`` (the script's cwd), ``input/`` and ``output/``."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def tmp(self) -> Path:
        """The script's ``$TMPDIR`` (a container's /tmp: gone with the job)."""
        return self.root / "tmp"

    @property
    def script(self) -> Path:
        return self.root / "script.sh"

    @property
    def pgid_file(self) -> Path:
        return self.root / "pgid"

    def pgid(self) -> int | None:
        """The process group of the script started in this workspace, if one was."""
        try:
            return int(self.pgid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        """The script's exit code once it has ended (written by the wrapper), else None."""
        try:
            return int((self.root / "rc").read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """True while the script started in this workspace is still alive."""
        pgid = self.pgid()
        return pgid is not None and group_of(pgid, str(self.script))

    def outputs(self) -> list[Path]:
        """Every file the script wrote under ``output/`` (recursively), sorted."""
        return sorted(p for p in self.output.rglob("*") if p.is_file())

    def sync_answer(self, stdout: Path) -> tuple[Path, bool]:
        """What sync ``/run`` answers: (file, base64-encode it).

        One output file: that file; several: a zip of them (relative names kept);
        none: the script's stdout, as it is.
        """
        files = self.outputs()
        if not files:
            return stdout, False
        if len(files) == 1:
            return files[0], True
        dest = self.root / "outputs.zip"
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f.relative_to(self.output).as_posix())
        return dest, True


class Runner:
    """Runs service scripts in workspaces under ``tmp_dir``; file and S3 I/O in ``executor``."""

    def __init__(
        self, tmp_dir: Path, cache_dir: Path, s3: Minio, executor: ThreadPoolExecutor
    ) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.cache_dir = Path(cache_dir)
        for d in (self.tmp_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.s3 = s3
        self.executor = executor

    def io(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run blocking ``fn(*args)`` in the I/O thread pool."""
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def temp_file(self, prefix: str) -> Path:
        """A new empty file in the runner's temp dir (the caller removes it)."""
        fd, path = tempfile.mkstemp(prefix=prefix, dir=self.tmp_dir)
        os.close(fd)
        return Path(path)

    def new_workspace(self, prefix: str) -> Workspace:
        """A fresh :class:`Workspace` (the caller removes it with :meth:`remove`)."""
        ws = Workspace(Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp_dir)))
        for d in (ws.work, ws.input, ws.output, ws.tmp):
            d.mkdir()
        return ws

    async def remove(self, ws: Workspace) -> None:
        """Remove ``ws`` with everything in it."""
        await self.io(shutil.rmtree, ws.root, True)

    @contextlib.asynccontextmanager
    async def workspace(self, prefix: str) -> AsyncIterator[Workspace]:
        """A fresh :class:`Workspace`, removed with everything in it on exit."""
        ws = self.new_workspace(prefix)
        try:
            yield ws
        finally:
            await self.remove(ws)

    def clean_leftovers(self, keep: set[Path]) -> int:
        """At start-up: end every script a killed predecessor left running in a workspace
        not in ``keep`` (a sync ``/run`` whose client is gone, a job that will run again),
        and remove those workspaces and stray temp files. Returns how many were removed."""
        n = 0
        for entry in self.tmp_dir.iterdir():
            if entry in keep:
                continue
            if entry.is_dir():
                ws = Workspace(entry)
                if ws.running():
                    kill_group(ws.pgid())
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            n += 1
        return n

    async def fetch(self, bucket: str, key: str, dest: Path) -> None:
        """Download ``bucket/key`` to ``dest`` (streamed; no temp name beside a long one)."""

        def get() -> None:
            resp = self.s3.get_object(bucket, key)
            try:
                with open(dest, "wb") as fh:
                    for chunk in resp.stream(CHUNK * 16):
                        fh.write(chunk)
            finally:
                resp.close()
                resp.release_conn()

        await self.io(get)

    async def stage(self, src: Path, dest: Path) -> None:
        """Put the file ``src`` at ``dest`` (a hard link, else a copy)."""
        try:
            os.link(src, dest)
        except OSError:
            await self.io(shutil.copyfile, src, dest)

    async def run(
        self,
        svc: dict,
        ws: Workspace,
        input_path: Path,
        job_uuid: str,
        stdout: Path,
        *,
        stderr: Path | None = None,
        event: str | None = None,
        timeout: float | None = None,
        on_start: Callable[[asyncio.subprocess.Process], None] | None = None,
    ) -> int:
        """Run ``svc``'s script with bash in ``ws``; returns its exit code.

        Output goes to ``stdout`` (and ``stderr``, else also ``stdout``). The script runs
        in its own process group (recorded in ``ws``), all of it killed when the script
        ends, at ``timeout`` (exit code :data:`TIMED_OUT`) or on cancellation.
        """
        env = job_env(svc, input_path, ws.output, job_uuid, event=event)
        env["OSCAR_ELYRA_CACHE_DIR"] = str(self.cache_dir)
        env["TMPDIR"] = str(ws.tmp)
        ws.script.write_text(svc["script"], encoding="utf-8")
        with contextlib.ExitStack() as files:
            out = files.enter_context(open(stdout, "ab"))
            err = files.enter_context(open(stderr, "ab")) if stderr else asyncio.subprocess.STDOUT
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                _WRAPPER,
                "oscar-elyra-job",
                str(ws.script),
                str(ws.root / "rc"),
                cwd=str(ws.work),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        ws.pgid_file.write_text(f"{proc.pid}\n")
        if on_start:
            on_start(proc)
        try:
            if timeout:
                return await asyncio.wait_for(proc.wait(), timeout)
            return await proc.wait()
        except asyncio.TimeoutError:
            kill_group(proc.pid)
            await proc.wait()
            return TIMED_OUT
        finally:
            kill_group(proc.pid)  # also whatever the script left running in its group

    def upload(
        self,
        svc: dict,
        ws: Workspace,
        on_upload: Callable[[str, str], None] | None = None,
    ) -> list[tuple[str, str]]:
        """Upload ``ws``'s outputs to each of ``svc``'s output paths whose filters match.

        Relative names are kept (``<path>/<relative name>``); ``on_upload(bucket, key)``
        is called before each upload (the supervisor logs each one); returns (bucket, key)
        pairs.
        """
        done = []
        files = ws.outputs()
        for io in storage_paths(svc, "output"):
            bucket, prefix = split_path(io["path"])
            for f in files:
                rel = f.relative_to(ws.output).as_posix()
                if path_matches(rel, io):
                    key = f"{prefix}/{rel}" if prefix else rel
                    if on_upload is not None:
                        on_upload(bucket, key)
                    self.s3.fput_object(bucket, key, str(f))
                    done.append((bucket, key))
        return done
