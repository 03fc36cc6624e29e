"""Data commands: ``run SERVICE``, ``job``, ``map``, ``put``, ``get``, ``ls``.

Exit codes: 0 ok, 1 remote failure (a failed job or input), 2 bad usage or input.
Progress and status go to stderr; results to stdout (JSON with ``--json``).
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import click
from platformdirs import user_cache_dir

from oscar_elyra.commands._common import SECONDS, CliState, pass_state, writable
from oscar_elyra.errors import NotFoundError, OscarError
from oscar_elyra.invoke import map as run_map
from oscar_elyra.invoke import resume, run, submit, wait
from oscar_elyra.invoke.jobs import VIA, read_submission
from oscar_elyra.storage import format_uri, parse_uri

__all__ = ["get", "job", "ls", "map", "put", "run_service"]


def _human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return str(n)


# ----------------------------------------------------------------------------- run


@click.command("run")
@click.argument("service")
@click.option("-i", "--input", "text", metavar="TEXT", help="Text input (sent base64-encoded).")
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Input file (streamed).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    callback=writable,
    help="Output file, or directory (existing or ending in /) for several files.",
)
@click.option("--timeout", type=SECONDS, default=300, show_default=True, help="Seconds.")
@pass_state
def run_service(
    state: CliState,
    service: str,
    text: str | None,
    file: Path | None,
    output: Path | None,
    timeout: float,
) -> None:
    """Invoke SERVICE synchronously (POST /run) with -i TEXT or -f FILE."""

    if (text is None) == (file is None):
        raise click.UsageError("give exactly one input: -i TEXT or -f FILE")
    if text is not None and text == "":
        raise click.BadParameter("the input text is empty", param_hint="-i/--input")
    state.info(f"invoking {service} ...")
    res = run(
        service, file if file is not None else text, output, client=state.client(), timeout=timeout
    )
    data = {
        "service": service,
        "kind": res.kind,
        "paths": [str(p) for p in res.paths] if output is not None else [],
        "seconds": round(res.seconds, 3),
    }
    if res.kind == "text":
        data["text"] = res.text
        state.emit(data, res.text.rstrip("\n"))
        return
    if output is not None:
        state.emit(data, "\n".join(str(p) for p in res.paths))
        return
    # no -o: a single text-like output is printed; binary goes to a pipe, never to a terminal
    if res.kind == "file" and res.paths[0].suffix in (".json", ".txt"):
        data["text"] = res.text
        state.emit(data, res.text.rstrip("\n"))
        return
    if res.kind == "file" and not state.json and not sys.stdout.isatty():
        out = click.get_binary_stream("stdout")
        with open(res.paths[0], "rb") as fh:
            while chunk := fh.read(1 << 20):
                out.write(chunk)
        out.flush()
        return
    raise click.UsageError(
        f"service {service!r} answered {'a binary file' if res.kind == 'file' else 'several files'}"
        "; save it with -o PATH (or pipe stdout for one file)"
    )


# ----------------------------------------------------------------------------- job


def _default_record() -> Path:
    """Where ``job`` records a submission when no ``--record`` is given."""
    name = time.strftime("job-%Y%m%d-%H%M%S-") + secrets.token_hex(3) + ".jsonl"
    return Path(user_cache_dir("oscar-elyra", appauthor=False)) / "jobs" / name


def _resume_hint(record: Path, what: str) -> None:
    """After an interrupted submission: how many inputs are queued, and how to send the rest."""
    try:
        plan, queued = read_submission(record)
    except OscarError:
        return
    total = len(plan["inputs"])
    click.echo(
        f"{what}: {len(queued)} of {total} input(s) queued to {plan['service']} "
        f"(run {plan['run_id']}); send the other {total - len(queued)} with: "
        f"oscar-elyra job --resume {record}",
        err=True,
    )


@click.command("job")
@click.argument("service", required=False)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", "wait_", is_flag=True, help="Wait for the outputs.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    callback=writable,
    help="Download the outputs here (implies --wait).",
)
@click.option("--timeout", type=SECONDS, default=600, show_default=True, help="Seconds to wait.")
@click.option(
    "--via-api",
    is_flag=True,
    help="Start each job with POST /job (a storage event) instead of the input bucket.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record the submission here, each started job as it happens (default: a file in "
    "the user cache dir, removed once every input is queued).",
)
@click.option(
    "--resume",
    "resume_record",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="RECORD",
    help="Finish an interrupted submission: send only the inputs RECORD does not list as queued.",
)
@pass_state
def job(
    state: CliState,
    service: str | None,
    files: tuple[Path, ...],
    wait_: bool,
    output: Path | None,
    timeout: float,
    via_api: bool,
    record: Path | None,
    resume_record: Path | None,
) -> None:
    """Submit FILES to async SERVICE through its input bucket; --wait for the outputs.

    Each upload is recorded as it happens; an interrupted submission is finished with
    --resume RECORD (the inputs already queued are not sent again).
    """

    if resume_record is not None:
        if files or record is not None or via_api:
            raise click.UsageError("--resume RECORD takes no FILES, --record or --via-api")
        plan, _ = read_submission(resume_record)
        if service is not None and service != plan["service"]:
            raise click.UsageError(
                f"{resume_record} is a submission to {plan['service']!r}, not {service!r}"
            )
        record = resume_record
    elif service is None or not files:
        raise click.UsageError("give SERVICE and FILES, or --resume RECORD")
    keep = record is not None or resume_record is not None
    if record is None:
        record = _default_record()  # kept only if the submission does not complete
        record.parent.mkdir(parents=True, exist_ok=True)
    client = state.client()
    store = state.store()
    try:
        if resume_record is not None:
            jobs = resume(resume_record, client=client, store=store)
        else:
            via = "job" if via_api else "bucket"
            jobs = submit(service, list(files), client=client, store=store, record=record, via=via)
    except KeyboardInterrupt:
        _resume_hint(record, "interrupted")
        raise SystemExit(130) from None
    except (OscarError, OSError):
        _resume_hint(record, "submission stopped")
        raise
    if not keep:
        record.unlink(missing_ok=True)
    where = f"; record {record}" if keep else ""
    state.info(f"submitted {len(jobs)} input(s) to {jobs[0].service} (run {jobs[0].run_id}{where})")
    if wait_ or output is not None:
        try:
            wait(jobs, timeout, download_to=output)
        finally:
            _emit_jobs(state, jobs)
        return
    _emit_jobs(state, jobs)


def _emit_jobs(state: CliState, jobs) -> None:
    lines = []
    for j in jobs:
        outs = [str(p) for p in j.downloaded] or j.outputs
        tail = ("  -> " + ", ".join(outs)) if outs else ""
        why = f"  ({j.error})" if j.error else ""
        lines.append(f"{j.status:<10} {j.input}  {j.input_uri}{tail}{why}")
    data = [dict(j.to_dict(), downloaded=[str(p) for p in j.downloaded]) for j in jobs]
    state.emit(data, "\n".join(lines))


# ----------------------------------------------------------------------------- map


@click.command("map")
@click.argument("service")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=writable,
    help="Directory for the outputs.",
)
@click.option("--sync", "sync", is_flag=True, help="Use /run calls instead of async jobs.")
@click.option(
    "-j",
    "--jobs",
    "concurrency",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Inputs in flight at once.",
)
@click.option("--retries", type=click.IntRange(0, 10), default=1, show_default=True)
@click.option("--no-resume", is_flag=True, help="Process every input, also those recorded as done.")
@click.option(
    "--record",
    "record",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=writable,
    help="The run record (JSON; default: .oscar-elyra-map.json in the output directory).",
)
@click.option(
    "--timeout", type=SECONDS, default=600, show_default=True, help="Seconds per input attempt."
)
@click.option(
    "--via",
    type=click.Choice(VIA),
    help="How async jobs start: 'job' (POST /job with a storage event naming the input, "
    "uploaded ahead) or 'bucket' (upload into the input path). Default: 'job' when the "
    "service allows it.",
)
@pass_state
def map(  # noqa: A001 - the command's name
    state: CliState,
    service: str,
    directory: Path,
    output: Path,
    sync: bool,
    concurrency: int,
    retries: int,
    no_resume: bool,
    record: Path | None,
    timeout: float,
    via: str | None,
) -> None:
    """Run SERVICE on every file in DIRECTORY; outputs into -o DIR (exit 1 if any failed)."""
    if sync and via:
        raise click.UsageError("--via is for async jobs: drop it or --sync")
    client = state.client()
    result = run_map(
        service,
        directory,
        mode="sync" if sync else "async",
        concurrency=concurrency,
        retries=retries,
        resume=not no_resume,
        output_dir=output,
        record_file=record,
        client=client,
        store=None if sync else state.store(),
        timeout=timeout,
        progress=state.progress,
        via=via,
    )
    counts = result.counts()
    lines = [
        f"{r['status']:<8} {r['input']}"
        + (f"  -> {', '.join(r['outputs'])}" if r["outputs"] else "")
        + (f"  ({r['error']})" if r["error"] else "")
        for r in result
    ]
    lines.append("; ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    state.emit(list(result), "\n".join(lines))
    if not result.ok:
        err = OscarError(f"{counts.get('failed', 0)} of {len(result)} inputs failed")
        raise err


# ----------------------------------------------------------------------------- storage


@click.command("put")
@click.argument("local", type=click.Path(exists=True, path_type=Path))
@click.argument("remote")
@pass_state
def put(state: CliState, local: Path, remote: str) -> None:
    """Upload a LOCAL file or directory to REMOTE (s3://b/k, minio.default:b/k or b/k)."""
    store = state.store()
    if local.is_dir():
        infos = store.upload_dir(local, remote)
    else:
        infos = [store.put_file(local, remote)]
    state.emit([i.to_dict() for i in infos], "\n".join(f"{i.uri}  {i.size}" for i in infos))


@click.command("get")
@click.argument("remote")
@click.argument("local", type=click.Path(), callback=writable)
@click.option("--latest", is_flag=True, help="Only the most recently modified object under REMOTE.")
@pass_state
def get(state: CliState, remote: str, local: str, latest: bool) -> None:
    """Download REMOTE (an object, or every object under a prefix ending in /) to LOCAL
    (an object to a directory, or to a path ending in /, keeps its name)."""

    store = state.store()
    bucket, key = parse_uri(remote)
    if latest:
        objs = [o for o in store.list(format_uri(bucket, key)) if not o.is_dir]
        if not objs:
            raise NotFoundError(f"nothing found under {remote!r}")
        newest = max(objs, key=lambda o: (o.last_modified is not None, o.last_modified, o.key))
        path = store.get_file(newest.uri, local)
        state.emit([str(path)], str(path))
        return
    paths = None
    if key and not key.endswith("/"):
        try:
            paths = [store.get_file(remote, local)]
        except NotFoundError:
            if not any(True for _ in store.list(remote.rstrip("/") + "/")):
                raise
    if paths is None:
        paths = store.download_dir(remote, local)
        if not paths:
            raise NotFoundError(f"nothing found under {remote!r}")
    state.emit([str(p) for p in paths], "\n".join(str(p) for p in paths))


@click.command("ls")
@click.argument("remote", required=False)
@click.option("-r", "--recursive", is_flag=True, help="List every key under the prefix.")
@pass_state
def ls(state: CliState, remote: str | None, recursive: bool) -> None:
    """List objects under REMOTE (bucket or prefix); without REMOTE, the buckets."""
    store = state.store()
    if not remote:
        names = store.list_buckets()
        state.emit(names, "\n".join(names))
        return

    bucket, key = parse_uri(remote)
    prefix = key if (not key or key.endswith("/")) else key
    infos = list(store.list(f"s3://{bucket}/{prefix}", recursive=recursive))
    if key and not key.endswith("/") and not any(i.key == key for i in infos):
        # "ls bucket/dir" means the directory's content
        infos = list(store.list(f"s3://{bucket}/{key}/", recursive=recursive))
    lines = []
    for i in infos:
        when = i.last_modified.strftime("%Y-%m-%d %H:%M") if i.last_modified else ""
        size = "DIR" if i.is_dir else _human_size(i.size)
        lines.append(f"{when:>16}  {size:>8}  {i.uri}")
    state.emit([i.to_dict() for i in infos], "\n".join(lines) if lines else "(empty)")
