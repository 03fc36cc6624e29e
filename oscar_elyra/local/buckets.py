"""Buckets of the embedded cluster as OSCAR's ``/system/buckets`` API shows them, on SeaweedFS.

What OSCAR keeps in MinIO's admin API (users, groups, per-user policies) is kept here in
what SeaweedFS itself offers:

- **owner** and other metadata: bucket tags, as OSCAR tags its buckets (``owner``,
  ``owner_name``, ``from_service`` for a service's buckets);
- **visibility**: a bucket policy. ``public`` allows anonymous reading and listing
  (``Principal: "*"``, ``s3:GetObject`` and ``s3:ListBucket``); ``restricted`` allows
  every S3 action to the IAM users named in ``allowed_users``
  (``arn:aws:iam:::user/<name>``); ``private`` has no policy (only the cluster's own
  keys reach it). The policy is the source of truth: it is read back, never cached.
- **presigned URLs**: SeaweedFS's own S3 signature V4 query authentication (minio-py
  signs them with the cluster's keys); an expired or altered URL is refused by SeaweedFS.

Every function takes the cluster's ``minio.Minio`` client and runs in an I/O thread.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from io import BytesIO
from typing import Any

from minio import Minio
from minio.commonconfig import Tags
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from oscar_elyra._paths import bucket_problem
from oscar_elyra.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "DEFAULT_OWNER",
    "LIST_LIMIT",
    "PRESIGN_DEFAULT",
    "PRESIGN_MAX",
    "VISIBILITIES",
    "create_bucket",
    "delete_bucket",
    "describe",
    "list_buckets",
    "list_page",
    "presign",
    "set_visibility",
]

#: owner OSCAR records for what is created with Basic auth (``types.DefaultOwner``)
DEFAULT_OWNER = "cluster_admin"
#: OSCAR's ``owner_name`` for Basic-auth requests
ADMIN_NAME = "oscar"
VISIBILITIES = ("private", "public", "restricted")
#: objects per page of ``GET /system/buckets/{bucket}`` (OSCAR's JobListingLimit default)
LIST_LIMIT = 70
#: presign expiry: OSCAR's default and bounds (seconds)
PRESIGN_DEFAULT = 900
PRESIGN_MAX = 7 * 24 * 3600
_USER = re.compile(r"^[A-Za-z0-9@._+=,-]{1,128}$")
_SID = "oscar-elyra-visibility"


def check_name(name: Any) -> str:
    """``name`` as a valid bucket name, else :class:`ValidationError`."""
    problem = bucket_problem(name)
    if problem:
        raise ValidationError(f"bucket name {name!r} is not valid: {problem}")
    return name


def _code(exc: S3Error) -> str:
    return getattr(exc, "code", "") or ""


def _policy(name: str, visibility: str, users: list[str]) -> str | None:
    arns = [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    if visibility == "public":
        stmt = {
            "Sid": _SID,
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": arns,
        }
    elif visibility == "restricted" and users:
        stmt = {
            "Sid": _SID,
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam:::user/{u}" for u in users]},
            "Action": ["s3:*"],
            "Resource": arns,
        }
    elif visibility == "restricted":
        # no member yet: a policy that grants nothing still marks the bucket restricted
        stmt = {
            "Sid": _SID,
            "Effect": "Deny",
            "Principal": {"AWS": ["arn:aws:iam:::user/-"]},
            "Action": ["s3:*"],
            "Resource": arns,
        }
    else:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


def _visibility(s3: Minio, name: str) -> tuple[str, list[str]]:
    """(visibility, allowed users) read back from the bucket's policy."""
    try:
        doc = json.loads(s3.get_bucket_policy(name) or "{}")
    except S3Error as exc:
        if _code(exc) == "NoSuchBucketPolicy":
            return "private", []
        raise
    except ValueError:
        return "private", []
    for stmt in doc.get("Statement") or []:
        if not isinstance(stmt, dict) or stmt.get("Sid") != _SID:
            continue
        principal = stmt.get("Principal")
        if principal == "*" or principal == {"AWS": "*"}:
            return "public", []
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        aws = [aws] if isinstance(aws, str) else list(aws or [])
        users = [a.rsplit("user/", 1)[-1] for a in aws if "user/" in a]
        return "restricted", [u for u in users if u != "-"]
    return "private", []


def _tags(s3: Minio, name: str) -> dict[str, str]:
    try:
        tags = s3.get_bucket_tags(name)
    except S3Error as exc:
        if _code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return {}
        raise
    return dict(tags or {})


def _exists(s3: Minio, name: str) -> None:
    # a name S3 refuses names no bucket (minio-py would raise ValueError: a 500)
    if bucket_problem(name) or not s3.bucket_exists(name):
        raise NotFoundError(f"bucket {name!r} not found")


def _size_text(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _usage(s3: Minio, name: str) -> dict:
    count = total = 0
    for obj in s3.list_objects(name, recursive=True):
        if not obj.is_dir:
            count += 1
            total += obj.size or 0
    return {"objects": count, "used_bytes": total, "used": _size_text(total)}


def describe(s3: Minio, name: str, *, usage: bool = True) -> dict:
    """A bucket in OSCAR's ``utils.MinIOBucket`` shape (no objects)."""
    _exists(s3, name)
    visibility, users = _visibility(s3, name)
    metadata = _tags(s3, name)
    owner = metadata.pop("owner", "") or DEFAULT_OWNER
    out: dict[str, Any] = {
        "bucket_name": name,
        "visibility": visibility,
        "owner": owner,
        "allowed_users": users,
        "metadata": metadata,
    }
    if usage:
        out["storage_usage"] = _usage(s3, name)
    return out


def list_buckets(s3: Minio) -> list[dict]:
    """Every bucket, described (``GET /system/buckets``)."""
    out = []
    for b in s3.list_buckets():
        try:
            out.append(describe(s3, b.name))
        except NotFoundError:
            continue  # deleted meanwhile
    return out


def list_page(s3: Minio, name: str, page: str | None, limit: int = LIST_LIMIT) -> dict:
    """``GET /system/buckets/{bucket}``: the bucket and one page of its objects.

    The page token is the last key of the previous page (``next_page``).
    """
    info = describe(s3, name)
    objects = []
    truncated = False
    for obj in s3.list_objects(name, recursive=True, start_after=page or None):
        if obj.is_dir:
            continue
        if len(objects) == limit:
            truncated = True
            break
        objects.append(
            {
                "object_name": obj.object_name,
                "size_bytes": obj.size or 0,
                "last_modified": obj.last_modified.isoformat() if obj.last_modified else "",
                "owner": info["owner"],
            }
        )
    info["objects"] = objects
    info["is_truncated"] = truncated
    info["returned_items"] = len(objects)
    if truncated:
        info["next_page"] = objects[-1]["object_name"]
    return info


def _check_visibility(visibility: Any, users: Any) -> tuple[str, list[str]]:
    vis = str(visibility or "private").strip().lower()
    if vis not in VISIBILITIES:
        raise ValidationError(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    if users is None:
        users = []
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise ValidationError("allowed_users must be a list of user names")
    clean = sorted({u.strip() for u in users if u.strip()})
    bad = [u for u in clean if not _USER.match(u)]
    if bad:
        raise ValidationError(f"allowed_users: {bad[0]!r} is not a valid user name")
    return vis, clean if vis == "restricted" else []


def _apply_visibility(s3: Minio, name: str, vis: str, users: list[str]) -> None:
    policy = _policy(name, vis, users)
    if policy is None:
        try:
            s3.delete_bucket_policy(name)
        except S3Error as exc:
            if _code(exc) != "NoSuchBucketPolicy":
                raise
    else:
        s3.set_bucket_policy(name, policy)


def _set_tags(s3: Minio, name: str, values: dict[str, str]) -> None:
    tags = Tags.new_bucket_tags()
    for k, v in values.items():
        tags[k] = v
    s3.set_bucket_tags(name, tags)


def create_bucket(
    s3: Minio,
    path: str,
    visibility: Any = None,
    allowed_users: Any = None,
    *,
    tags: dict[str, str] | None = None,
) -> str:
    """Create bucket ``path`` (``bucket`` or ``bucket/folder``) with its visibility.

    :class:`ConflictError` when the bucket exists; returns the bucket name.
    """
    if not isinstance(path, str) or not path.strip(" /"):
        raise ValidationError("bucket_name is required")
    name, _, folder = path.strip(" /").partition("/")
    check_name(name)
    vis, users = _check_visibility(visibility, allowed_users)
    if s3.bucket_exists(name):
        raise ConflictError(f"bucket {name!r} already exists")
    try:
        s3.make_bucket(name)
    except S3Error as exc:
        if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise ConflictError(f"bucket {name!r} already exists") from None
        raise
    if folder:
        # an empty "folder/" marker, as OSCAR's CreateS3Path makes
        s3.put_object(name, folder.strip("/") + "/", BytesIO(b""), 0)
    _set_tags(s3, name, {"owner": DEFAULT_OWNER, "owner_name": ADMIN_NAME, **(tags or {})})
    _apply_visibility(s3, name, vis, users)
    return name


def set_visibility(s3: Minio, name: str, visibility: Any, allowed_users: Any) -> None:
    """``PUT /system/buckets``: change visibility/allowed users (not of a service's bucket)."""
    check_name(name)
    _exists(s3, name)
    if _tags(s3, name).get("from_service"):
        raise PermissionError("a bucket of a service cannot be modified")
    vis, users = _check_visibility(visibility, allowed_users)
    _apply_visibility(s3, name, vis, users)


def delete_bucket(s3: Minio, name: str) -> int:
    """Delete bucket ``name`` and every object in it; returns how many objects went."""
    check_name(name)
    _exists(s3, name)
    total = 0
    batch: list[DeleteObject] = []

    def flush() -> None:
        for err in s3.remove_objects(name, batch):
            raise OSError(f"cannot delete {err.name}: {err.message}")
        batch.clear()

    for obj in s3.list_objects(name, recursive=True):
        batch.append(DeleteObject(obj.object_name))
        total += 1
        if len(batch) == 1000:
            flush()
    if batch:
        flush()
    try:
        s3.delete_bucket_policy(name)
    except S3Error:
        pass  # none
    s3.remove_bucket(name)
    return total


def presign(s3: Minio, name: str, body: Any) -> dict:
    """``POST /system/buckets/{bucket}/presign``: a presigned GET (download) or PUT (upload).

    ``body`` is OSCAR's ``PresignRequest``: ``object_key``, ``operation``, ``expires_in``
    (1 s to 7 days, default 900), ``content_type``, ``extra_headers``.
    """
    if not isinstance(body, dict):
        raise ValidationError("the presign request must be a JSON object")
    key = str(body.get("object_key") or "").strip().strip("/")
    if not key:
        raise ValidationError("Object key cannot be empty")
    operation = str(body.get("operation") or "").strip().lower()
    if operation not in ("upload", "download"):
        raise ValidationError(
            f"Unsupported operation {body.get('operation')!r}. "
            "Allowed values are 'upload' or 'download'"
        )
    expires = body.get("expires_in") or 0
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise ValidationError("expires_in must be an integer number of seconds")
    expires = expires or PRESIGN_DEFAULT
    if not 1 <= expires <= PRESIGN_MAX:
        raise ValidationError(
            f"Invalid expiration requested: {expires}. Allowed range is 1-{PRESIGN_MAX} seconds"
        )
    content_type = str(body.get("content_type") or "")
    extra = body.get("extra_headers") or {}
    if not isinstance(extra, dict):
        raise ValidationError("extra_headers must be an object")
    check_name(name)
    _exists(s3, name)
    method = "PUT" if operation == "upload" else "GET"
    params = {}
    if operation == "download" and content_type:
        params["response-content-type"] = content_type
    url = s3.get_presigned_url(
        method,
        name,
        key,
        expires=timedelta(seconds=expires),
        extra_query_params=params or None,
    )
    headers = {str(k).title(): str(v) for k, v in extra.items()}
    if operation == "upload" and content_type:
        headers["Content-Type"] = content_type
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires)
    out = {
        "object_key": key,
        "operation": operation,
        "method": method,
        "url": url,
        "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if headers:
        out["headers"] = headers
    return out
