"""CLI: ``buckets ls|get|create|update|rm|presign`` (OSCAR's ``/system/buckets``) and ``rm REMOTE``.

Exit codes: 0 ok, 1 remote failure, 2 bad usage or input (also: a deletion above the
confirmation threshold without ``--yes`` when there is no terminal to ask).
"""

from __future__ import annotations

import sys

import click

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.commands.cluster import _table
from oscar_elyra.commands.data import _human_size
from oscar_elyra.errors import NotFoundError, ValidationError
from oscar_elyra.storage import format_uri, parse_uri

__all__ = ["buckets", "rm"]

_VISIBILITY = click.Choice(["private", "public", "restricted"])


def _confirm(state: CliState, what: str, count: int, threshold: int, yes: bool) -> None:
    """Ask before deleting more than ``threshold`` objects (``--yes`` skips; no tty: refuse)."""
    if yes or count <= threshold:
        return
    if state.json or not sys.stdin.isatty():
        raise ValidationError(
            f"{what}: {count} objects would be deleted (more than {threshold}); "
            "check with --dry-run, then rerun with --yes"
        )
    if not click.confirm(f"Delete {count} objects under {what}?", err=True):
        raise click.Abort()


@click.group()
def buckets() -> None:
    """List, show, create, change, delete buckets and presign object URLs (OSCAR v4)."""


@buckets.command("ls")
@pass_state
def buckets_ls(state: CliState) -> None:
    """List the buckets with visibility, owner, objects and size."""
    items = state.client().list_buckets()
    rows = []
    for b in sorted(items, key=lambda b: str(b.get("bucket_name", ""))):
        usage = b.get("storage_usage") or {}
        rows.append(
            [
                str(b.get("bucket_name", "?")),
                str(b.get("visibility") or "-"),
                str(b.get("owner") or "-"),
                str(usage.get("objects", "-")),
                _human_size(usage.get("used_bytes")),
                ",".join(b.get("allowed_users") or []) or "-",
            ]
        )
    state.emit(items, _table(rows, ["BUCKET", "VISIBILITY", "OWNER", "OBJECTS", "SIZE", "USERS"]))


@buckets.command("get")
@click.argument("name")
@click.option("--page", metavar="TOKEN", help="Continue from the 'next page' of a previous call.")
@pass_state
def buckets_get(state: CliState, name: str, page: str | None) -> None:
    """Show bucket NAME and one page of its objects."""
    data = state.client().get_bucket(name, page=page)
    head = [
        f"bucket:     {data.get('bucket_name', name)}",
        f"visibility: {data.get('visibility') or '-'}",
        f"owner:      {data.get('owner') or '-'}",
    ]
    if data.get("allowed_users"):
        head.append(f"users:      {', '.join(data['allowed_users'])}")
    rows = [
        [
            str(o.get("last_modified", ""))[:19],
            _human_size(o.get("size_bytes")),
            o.get("object_name", ""),
        ]
        for o in data.get("objects") or []
    ]
    text = "\n".join(head) + "\n" + _table(rows, ["MODIFIED", "SIZE", "OBJECT"])
    if data.get("is_truncated") and data.get("next_page"):
        text += f"\n(more: --page {data['next_page']})"
    state.emit(data, text)


def _visibility(state: CliState, name: str, visibility: str, users: tuple[str, ...], new: bool):
    if users and visibility != "restricted":
        raise click.UsageError("--allow is for --visibility restricted")
    client = state.client()
    (client.create_bucket if new else client.update_bucket)(name, visibility, list(users))
    verb = "created" if new else "updated"
    state.emit({"bucket": name, "visibility": visibility}, f"{verb} {name} ({visibility})")


_ALLOW = click.option(
    "--allow", "users", multiple=True, metavar="USER", help="A user (restricted)."
)


@buckets.command("create")
@click.argument("name")
@click.option("--visibility", type=_VISIBILITY, default="private", show_default=True)
@_ALLOW
@pass_state
def buckets_create(state: CliState, name: str, visibility: str, users: tuple[str, ...]) -> None:
    """Create bucket NAME with a visibility (restricted: --allow USER, repeatable)."""
    _visibility(state, name, visibility, users, new=True)


@buckets.command("update")
@click.argument("name")
@click.option("--visibility", type=_VISIBILITY, required=True)
@_ALLOW
@pass_state
def buckets_update(state: CliState, name: str, visibility: str, users: tuple[str, ...]) -> None:
    """Change the visibility (and allowed users) of bucket NAME."""
    _visibility(state, name, visibility, users, new=False)


@buckets.command("rm")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask, even for a bucket with objects.")
@click.option(
    "--threshold",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Ask when the bucket holds more objects than this.",
)
@pass_state
def buckets_rm(state: CliState, name: str, yes: bool, threshold: int) -> None:
    """Delete bucket NAME and every object in it (asks first when it is not empty)."""
    client = state.client()
    count = int((client.get_bucket(name).get("storage_usage") or {}).get("objects") or 0)
    _confirm(state, f"bucket {name!r}", count, threshold, yes)
    client.delete_bucket(name)
    state.emit({"bucket": name, "deleted_objects": count}, f"deleted {name} ({count} objects)")


@buckets.command("presign")
@click.argument("remote")
@click.option("--upload", is_flag=True, help="A PUT URL to upload (default: a GET URL).")
@click.option(
    "--expires",
    type=click.IntRange(1, 7 * 24 * 3600),
    default=None,
    help="Seconds the URL stays valid (cluster default: 900).",
)
@click.option("--content-type", default=None, help="Content type of the object.")
@pass_state
def buckets_presign(
    state: CliState, remote: str, upload: bool, expires: int | None, content_type: str | None
) -> None:
    """A presigned URL for object REMOTE (bucket/key): anyone holding it can use it."""
    bucket, key = parse_uri(remote)
    if not key or key.endswith("/"):
        raise click.BadParameter(
            f"{remote!r} names no object; give bucket/key", param_hint="REMOTE"
        )
    data = state.client().presign(
        bucket,
        key,
        "upload" if upload else "download",
        expires_in=expires,
        content_type=content_type,
    )
    headers = data.get("headers") or {}
    state.info(
        f"{data.get('method', '?')} {format_uri(bucket, key)}, expires {data.get('expires_at')}"
    )
    for k, v in headers.items():
        state.info(f"send header: {k}: {v}")
    state.emit(data, str(data.get("url", "")))


# ----------------------------------------------------------------------------- rm REMOTE


@click.command("rm")
@click.argument("remote")
@click.option("-n", "--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask, whatever the count.")
@click.option(
    "--threshold",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Ask when more objects than this would be deleted.",
)
@pass_state
def rm(state: CliState, remote: str, dry_run: bool, yes: bool, threshold: int) -> None:
    """Delete object REMOTE, or every object under it (a prefix: bucket/dir/)."""
    store = state.store()
    bucket, key = parse_uri(remote)
    if not key:
        raise click.BadParameter(
            f"{remote!r} is a whole bucket; use 'buckets rm {bucket}' for that",
            param_hint="REMOTE",
        )
    prefix = key
    found = list(store.list(format_uri(bucket, key), recursive=True))
    exact = [o for o in found if o.key == key]
    if exact and not key.endswith("/"):
        targets = exact
    else:
        prefix = key if key.endswith("/") else key + "/"
        targets = [o for o in found if o.key.startswith(prefix) and not o.is_dir]
    if not targets:
        raise NotFoundError(f"nothing found at {format_uri(bucket, key)}")
    data = {
        "deleted": [] if dry_run else [o.uri for o in targets],
        "would_delete": [o.uri for o in targets] if dry_run else [],
        "count": len(targets),
    }
    if dry_run:
        lines = [f"would delete {o.uri}  {_human_size(o.size)}" for o in targets]
        lines.append(f"{len(targets)} objects (dry run: nothing deleted)")
        state.emit(data, "\n".join(lines))
        return
    where = format_uri(bucket, key if targets is exact else prefix)
    _confirm(state, where, len(targets), threshold, yes)
    for o in targets:
        store.delete(o.uri)
    state.emit(data, f"deleted {len(targets)} objects under {where}")
