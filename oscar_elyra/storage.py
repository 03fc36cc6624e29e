"""Object storage: streaming, parallel, checksummed transfers.

Object contents (put, get, head) go through obstore (the Rust ``object_store`` crate):
its requests run outside the GIL, so many small objects move in parallel at the speed
of a native client. Buckets and key listings (raw key prefixes, delimiters) and deletes
go through minio-py, which obstore does not offer.

URIs: ``s3://bucket/key``, OSCAR-style ``minio.default:bucket/key`` or
``minio:bucket/key``, and plain ``bucket/key``.

Integrity: every upload stores the content's sha256 as object metadata
(``x-amz-meta-sha256``); downloads check the size and, when present, the
sha256, and write to a temporary name that is renamed only once complete.
Memory is bounded by the part size times the number of parallel transfers,
never by the file size.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import quote

import certifi
import obstore
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from obstore import exceptions as obx
from obstore.store import S3Store

from oscar_elyra._paths import bucket_problem, safe_join, safe_join_fast, sha256_file, temp_near
from oscar_elyra.errors import (
    AuthError,
    IntegrityError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from oscar_elyra.progress import bar
from oscar_elyra.redact import redact, register_secret

__all__ = ["ObjectInfo", "ObjectStore", "format_uri", "object_created_event", "parse_uri"]

MiB = 1024 * 1024
#: metadata key holding the hex sha256 of the content
SHA256_META = "sha256"
_CHUNK = 1 * MiB
#: the chunks of a download stream: obstore joins the network's pieces up to this size
_STREAM_CHUNK = 256 * 1024
_META_PREFIX = "x-amz-meta-"
#: S3 error codes of a refusal for the credentials
_AUTH_CODES = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
)
_CODE_RE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE_RE = re.compile(r"<Message>([^<]*)</Message>")
#: a TLS certificate refused by obstore's client (rustls: ``InvalidCertificate(UnknownIssuer)``)
_TLS_RE = re.compile(r"InvalidCertificate\(\s*(\w*)")
#: obstore's error for a 206 answer covering less than the range asked
_SHORT_RANGE_RE = re.compile(r"Requested \d+\.\.\d+, got \d+\.\.\d+")
_URI_RE = re.compile(r"^(?:minio|s3)(?:\.[A-Za-z0-9_.-]+)?:(?!//)(.*)$")


# --------------------------------------------------------------------------- URIs and paths


def parse_uri(uri: str, default_bucket: str | None = None) -> tuple[str, str]:
    """Split ``uri`` into ``(bucket, key)``.

    Accepts ``s3://bucket/key``, ``minio.default:bucket/key``, ``minio:bucket/key``
    and ``bucket/key``. The key may be empty (a whole bucket). A bare name without
    ``/`` is a bucket, unless ``default_bucket`` is given: then it is a key in it.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValidationError("empty object URI: give s3://bucket/key or bucket/key")
    text = uri.strip()
    explicit_bucket = False
    if text.startswith("s3://"):
        text = text[5:]
        explicit_bucket = True
    else:
        m = _URI_RE.match(text)
        if m:
            text = m.group(1)
            explicit_bucket = True
        elif "://" in text:
            raise ValidationError(
                f"unsupported object URI {uri!r}: use s3://bucket/key, minio.default:bucket/key"
                " or bucket/key"
            )
    if not text.startswith("/") or not uri.strip().startswith("s3://"):
        text = text.lstrip("/")
    if "/" in text:
        bucket, key = text.split("/", 1)
    elif default_bucket and not explicit_bucket:
        bucket, key = default_bucket, text
    else:
        bucket, key = text, ""
    problem = bucket_problem(bucket)
    if problem:
        raise ValidationError(f"invalid bucket name {bucket!r} in {uri!r}: {problem}")
    if "\x00" in key:
        raise ValidationError(f"invalid object key in {uri!r}: NUL character")
    return bucket, key


def format_uri(bucket: str, key: str = "") -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"


def object_created_event(bucket: str, key: str, size: int = 0, etag: str = "") -> dict:
    """The MinIO ``s3:ObjectCreated:Put`` notification for ``bucket/key``, as OSCAR receives
    it from MinIO (and as OSCAR's supervisor reads it from a ``POST /job`` body)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": now,
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote(key), "size": int(size), "eTag": etag},
                },
            }
        ],
    }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ObjectInfo:
    """What is known about a stored object."""

    uri: str
    bucket: str
    key: str
    size: int | None = None
    sha256: str | None = None
    etag: str | None = None
    content_type: str | None = None
    last_modified: datetime | None = None
    is_dir: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (datetime as ISO text)."""
        d = asdict(self)
        if self.last_modified is not None:
            d["last_modified"] = self.last_modified.isoformat()
        return d


# --------------------------------------------------------------------------- helpers


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream; reports bytes read to ``on_read`` and hashes them optionally."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None] | None, hasher=None):
        self._raw = raw
        self._on_read = on_read
        self._hasher = hasher
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            if not isinstance(data, bytes):
                data = bytes(data)
            self.count += len(data)
            if self._hasher is not None:
                self._hasher.update(data)
            if self._on_read is not None:
                self._on_read(len(data))
        return data


def _meta_get(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for k, v in headers.items():
        lk = k.lower()
        if lk == wanted or lk == _META_PREFIX + wanted:
            return v
    return None


#: pid of the process whose obstore runtime is in use (None: not yet used)
_obstore_pid: int | None = None


def _check_not_forked() -> None:
    """Refuse, with a clear message, obstore in a child forked after the parent used it.

    obstore's runtime runs threads that ``fork()`` does not copy: a request from such a
    child would wait forever.
    """
    global _obstore_pid
    pid = os.getpid()
    if _obstore_pid is None:
        _obstore_pid = pid
    elif _obstore_pid != pid:
        raise StorageError(
            "this process was forked from one that had already used S3, which the S3 client"
            " (obstore) does not survive: start worker processes with multiprocessing's"
            " 'spawn' or 'forkserver' method (multiprocessing.get_context('spawn')), or fork"
            " before the first transfer"
        )


def _attributes(content_type: str, metadata: dict[str, str]) -> dict[str, str]:
    """obstore attributes of an upload: its content type and user metadata (``x-amz-meta-*``)."""
    attrs = {"Content-Type": content_type}
    for k, v in metadata.items():
        name = k[len(_META_PREFIX) :] if k.lower().startswith(_META_PREFIX) else k
        attrs[name] = str(v)
    return attrs


def _etag(meta: Any) -> str | None:
    """An ETag without its quotes (from obstore's object meta or put result)."""
    return (meta.get("e_tag") or "").strip('"') or None


def _pinned(options: dict[str, Any], etag: str | None) -> dict[str, Any]:
    """GET ``options`` that fail (412) if the object is no longer the version ``etag``."""
    return {**options, "if_match": f'"{etag}"'} if etag else options


# --------------------------------------------------------------------------- the store


class ObjectStore:
    """An S3/MinIO object store.

    ``endpoint`` is ``http(s)://host:port`` or ``host:port`` (``secure`` then
    defaults to True). ``verify`` is False, True or a CA bundle path.
    ``progress``: None automatic, False never, True always. ``workers`` bounds
    parallel parts and parallel files; ``part_size`` is the multipart chunk.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        *,
        secure: bool | None = None,
        region: str | None = None,
        verify: bool | str = True,
        progress: bool | None = None,
        workers: int = 8,
        part_size: int = 8 * MiB,
        session_token: str | None = None,
    ) -> None:
        register_secret(secret_key)
        register_secret(session_token)
        if not endpoint or not isinstance(endpoint, str):
            raise ValidationError("S3 endpoint is empty: give http(s)://host:port")
        ep = endpoint.strip().rstrip("/")
        scheme_secure: bool | None = None
        if ep.startswith("https://"):
            scheme_secure, ep = True, ep[8:]
        elif ep.startswith("http://"):
            scheme_secure, ep = False, ep[7:]
        if "/" in ep:
            raise ValidationError(
                f"S3 endpoint {endpoint!r} must be scheme://host[:port] without a path"
            )
        if secure is None:
            secure = True if scheme_secure is None else scheme_secure
        if workers < 1:
            raise ValidationError("workers must be >= 1")
        if part_size < 5 * MiB:
            raise ValidationError("part_size must be >= 5 MiB (S3 multipart minimum)")
        self.secure = bool(secure)
        self.endpoint = ("https://" if self.secure else "http://") + ep
        self.region = region
        self.verify = verify
        self.progress = progress
        self.workers = int(workers)
        self.part_size = int(part_size)
        self._host = ep
        self._access_key = access_key
        self._secret_key = secret_key
        self._session_token = session_token
        self._mc = self._make_client()
        self._ob = self._obstore_options()
        self._stores: dict[str, S3Store] = {}
        self._stores_lock = threading.Lock()

    # ---------------------------------------------------------------- construction

    def _make_client(self):
        kwargs: dict[str, Any] = {}
        if self.secure:
            if self.verify is False:
                kwargs["cert_reqs"] = "CERT_NONE"
            else:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                kwargs["ca_certs"] = (
                    self.verify
                    if isinstance(self.verify, str)
                    else os.environ.get("SSL_CERT_FILE") or certifi.where()
                )
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=300),
            maxsize=max(10, 2 * self.workers + 2),
            retries=urllib3.Retry(
                total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
            **kwargs,
        )
        return Minio(
            self._host,
            access_key=self._access_key,
            secret_key=self._secret_key,
            session_token=self._session_token,
            secure=self.secure,
            region=self.region,
            http_client=http,
        )

    def _obstore_options(self) -> dict[str, Any]:
        """What every bucket's ``S3Store`` is made with: TLS as minio's, no AWS_* from the env.

        The credentials come from a callback, not the store's config (which the store would
        show), so none is read from ``AWS_*`` variables either.
        """
        client: dict[str, Any] = {
            "allow_http": not self.secure,
            "connect_timeout": timedelta(seconds=10),
            "read_timeout": timedelta(seconds=300),  # a stalled connection
            "timeout": timedelta(days=1),  # a whole transfer: obstore's 30 s default is too short
        }
        if self.secure and self.verify is False:
            client["allow_invalid_certificates"] = True
        elif self.secure:
            ca = self.verify if isinstance(self.verify, str) else os.environ.get("SSL_CERT_FILE")
            if ca:
                try:
                    client["root_certificate"] = Path(ca).read_bytes()
                except OSError as exc:
                    raise ValidationError(
                        f"cannot read the CA bundle {ca!r}: {exc.strerror}"
                    ) from None
        config: dict[str, Any] = {  # each also overrides its AWS_* variable
            "endpoint": self.endpoint,
            "region": self.region or "us-east-1",
            "virtual_hosted_style_request": False,
            "skip_signature": not self._access_key,
            "unsigned_payload": False,
            "request_payer": False,
        }
        options: dict[str, Any] = {
            "config": config,
            "client_options": client,
            "retry_config": {
                "max_retries": 5,
                "backoff": {"init_backoff": timedelta(seconds=0.2)},
                "retry_timeout": timedelta(minutes=3),
            },
        }
        if self._access_key:
            creds = {
                "access_key_id": self._access_key,
                "secret_access_key": self._secret_key or "",
                "token": self._session_token,
                "expires_at": None,
            }
            options["credential_provider"] = lambda: creds
        return options

    def _store(self, bucket: str) -> S3Store:
        """The obstore client of ``bucket`` (made once, shared by threads)."""
        _check_not_forked()
        store = self._stores.get(bucket)
        if store is None:
            with self._stores_lock:
                store = self._stores.get(bucket)
                if store is None:
                    store = self._stores[bucket] = S3Store(bucket, **self._ob)
        return store

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self.endpoint!r})"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("ObjectStore holds credentials and is not picklable")

    # ---------------------------------------------------------------- errors

    def _error(self, exc: BaseException, bucket: str, key: str, action: str) -> Exception:

        where = format_uri(bucket, key)
        if isinstance(exc, S3Error):
            code = exc.code or ""
            if code == "NoSuchBucket":
                return NotFoundError(f"bucket {bucket!r} does not exist at {self.endpoint}")
            if code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound", "NoSuchUpload"):
                return NotFoundError(f"object {where} not found at {self.endpoint}")
            if code in _AUTH_CODES:
                return AuthError(
                    f"S3 at {self.endpoint} refused {action} {where}: {code}"
                    " (check the access/secret key)"
                )
            if code == "PreconditionFailed":
                return StorageError(f"object {where} changed while it was being read; retry")
            return StorageError(
                redact(f"{action} {where} failed at {self.endpoint}: {code} {exc.message}")
            )
        if isinstance(exc, (obx.BaseError, FileNotFoundError)):  # obstore's 404 is the latter
            return self._obstore_error(exc, bucket, key, action)
        if isinstance(exc, (NotFoundError, StorageError, AuthError, ValidationError)):
            return exc  # type: ignore[return-value]
        if isinstance(exc, ValueError):
            if "Could not parse path" in str(exc):
                return ValidationError(
                    f"{action} {where}: this client cannot address the key {key!r} (it has an"
                    " empty segment '//', a '.' or '..' segment, or a control character)"
                )
            return ValidationError(redact(f"{action} {where}: {exc}"))
        text = redact(f"{type(exc).__name__}: {exc}")
        if len(text) > 300:
            text = text[:300] + "..."
        return StorageError(
            f"{action} {where} failed: cannot talk to S3 at {self.endpoint} ({text})"
        )

    def _obstore_error(self, exc: Exception, bucket: str, key: str, action: str) -> Exception:
        """An obstore error as the documented exceptions (S3's code read from its text)."""
        text = str(exc)
        code = (m.group(1) if (m := _CODE_RE.search(text)) else "").strip()
        where = format_uri(bucket, key)
        if code == "NoSuchBucket":
            return NotFoundError(f"bucket {bucket!r} does not exist at {self.endpoint}")
        if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "NoSuchUpload"):
            return NotFoundError(f"object {where} not found at {self.endpoint}")
        if isinstance(exc, obx.PreconditionError) or code == "PreconditionFailed":
            return StorageError(f"object {where} changed while it was being read; retry")
        if _SHORT_RANGE_RE.search(text):
            return IntegrityError(f"{where}: the server sent a shorter range than asked; retry")
        if "body error" in text:  # after obstore's own retries of the rest of the body
            return IntegrityError(f"{where}: the connection closed mid-body; retry")
        if code in _AUTH_CODES or isinstance(
            exc, (obx.PermissionDeniedError, obx.UnauthenticatedError)
        ):
            return AuthError(
                f"S3 at {self.endpoint} refused {action} {where}: {code or 'access denied'}"
                " (check the access/secret key)"
            )
        if m := _TLS_RE.search(text):
            return StorageError(
                f"{action} {where} failed: TLS error at {self.endpoint}: certificate"
                f" {m.group(1) or 'refused'}; fix the certificate or give the CA bundle that"
                " issued it (verify=PATH), or set OSCAR_SSL_VERIFY=false only for a cluster"
                " you trust"
            )
        if code:
            message = (m.group(1) if (m := _MESSAGE_RE.search(text)) else "").strip()
            return StorageError(
                redact(f"{action} {where} failed at {self.endpoint}: {code} {message}".strip())
            )
        reason = redact(text.splitlines()[0] if text else type(exc).__name__)
        if len(reason) > 300:
            reason = reason[:300] + "..."
        return StorageError(
            f"{action} {where} failed: cannot talk to S3 at {self.endpoint} ({reason})"
        )

    def _call(self, action: str, bucket: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - mapped to the documented hierarchy
            err = self._error(exc, bucket, key, action)
            if err is exc:
                raise
            raise err from None

    def _bar(self, total: int | None, desc: str, unit: str = "B"):
        return bar(total, desc, unit=unit, enabled=self.progress)

    # ---------------------------------------------------------------- buckets

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        parse_uri(f"s3://{bucket}")
        if self._call("check bucket", bucket, "", lambda: self._mc.bucket_exists(bucket)):
            return
        try:
            self._mc.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._error(exc, bucket, "", "create bucket") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, bucket, "", "create bucket") from None

    def list_buckets(self) -> list[str]:
        """Names of the buckets the credentials can see."""
        return sorted(b.name for b in self._call("list buckets", "-", "", self._mc.list_buckets))

    # ---------------------------------------------------------------- upload

    def _put_object(
        self,
        bucket: str,
        key: str,
        data: Any,
        length: int,
        content_type: str,
        metadata: dict[str, str],
        parallel: int | None = None,
    ) -> Any:
        """One upload of bytes or a stream (multipart, ``parallel`` parts at a time, above
        ``part_size``; ``length`` -1: unknown), errors mapped."""
        attrs = _attributes(content_type, metadata)
        return self._call(
            "upload to",
            bucket,
            key,
            lambda: obstore.put(
                self._store(bucket),
                key,
                data,
                attributes=attrs,
                use_multipart=None if length < 0 else length > self.part_size,
                chunk_size=self.part_size,
                max_concurrency=parallel or self.workers,
            ),
        )

    def put_file(
        self,
        path: str | os.PathLike[str],
        uri: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        _parallel: int | None = None,
        _bar: Any = None,
    ) -> ObjectInfo:
        """Upload a local file (multipart in parallel above ``part_size``) with its sha256.

        A ``uri`` ending in ``/`` gets the file's name appended.
        """
        p = Path(path)
        if not p.is_file():
            if p.exists():
                raise ValidationError(
                    f"{str(p)!r} is not a regular file (for directories use upload_dir)"
                )
            raise ValidationError(f"input file {str(p)!r} does not exist")
        bucket, key = parse_uri(uri)
        if not key or key.endswith("/"):
            key = key + p.name
        st = p.stat()
        size = st.st_size
        own_bar = _bar is None
        bar = _bar if _bar is not None else self._bar(size, f"upload {p.name}")
        ctype = content_type or mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        meta = dict(metadata or {})
        try:
            if size <= self.part_size:
                # one part: read once (bounded by part_size), hash and send the same bytes
                with open(p, "rb") as f:
                    data = f.read(size + 1)
                if len(data) != size:
                    raise IntegrityError(f"{str(p)!r} changed while it was being read; retry")
                digest = hashlib.sha256(data).hexdigest()
                meta[SHA256_META] = digest
                result = self._put_object(bucket, key, data, size, ctype, meta)
                bar.update(size)
            else:
                digest = sha256_file(p)
                meta[SHA256_META] = digest
                with open(p, "rb") as f:
                    reader = _CountingReader(f, bar.update)
                    result = self._put_object(bucket, key, reader, size, ctype, meta, _parallel)
                st2 = p.stat()
                if (st2.st_size, st2.st_mtime_ns) != (size, st.st_mtime_ns) or reader.count != size:
                    self._call("delete", bucket, key, lambda: self._mc.remove_object(bucket, key))
                    raise IntegrityError(f"{str(p)!r} changed while it was being uploaded; retry")
        finally:
            if own_bar:
                bar.close()
        return ObjectInfo(
            uri=format_uri(bucket, key),
            bucket=bucket,
            key=key,
            size=size,
            sha256=digest,
            etag=_etag(result),
            content_type=ctype,
        )

    def put_bytes(
        self,
        data: bytes | bytearray | memoryview | str,
        uri: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload an in-memory value (str is UTF-8 encoded)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
        data = bytes(data)
        bucket, key = parse_uri(uri)
        if not key or key.endswith("/"):
            raise ValidationError(f"object URI {uri!r} needs a key (file name) after the bucket")
        digest = hashlib.sha256(data).hexdigest()
        meta = dict(metadata or {})
        meta[SHA256_META] = digest
        ctype = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
        result = self._put_object(bucket, key, data, len(data), ctype, meta)
        return ObjectInfo(
            uri=format_uri(bucket, key),
            bucket=bucket,
            key=key,
            size=len(data),
            sha256=digest,
            etag=_etag(result),
            content_type=ctype,
        )

    def put_stream(
        self,
        stream: IO[bytes],
        uri: str,
        length: int = -1,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> ObjectInfo:
        """Upload from a readable binary stream without holding it in memory.

        With ``sha256`` given (hex) the stream goes straight to S3 and the digest is
        checked as it passes. Without it the stream is spooled to a temporary file
        first (the digest must be known before the upload starts, to be stored as
        metadata), then uploaded like :meth:`put_file`.
        """
        if not callable(getattr(stream, "read", None)):
            raise ValidationError("put_stream needs a readable binary stream")
        bucket, key = parse_uri(uri)
        if not key or key.endswith("/"):
            raise ValidationError(f"object URI {uri!r} needs a key (file name) after the bucket")
        if sha256 is None:
            with tempfile.TemporaryDirectory(prefix="oscar-elyra-spool-") as tmpd:
                spool = Path(tmpd) / (PurePosixPath(key).name or "object")
                n = 0
                with open(spool, "wb") as out:
                    while True:
                        chunk = stream.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        n += len(chunk)
                if length >= 0 and n != length:
                    raise IntegrityError(
                        f"stream for {format_uri(bucket, key)} gave {n} bytes, expected {length}"
                    )
                return self.put_file(
                    spool, format_uri(bucket, key), content_type=content_type, metadata=metadata
                )
        meta = dict(metadata or {})
        meta[SHA256_META] = sha256
        ctype = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
        hasher = hashlib.sha256()
        bar = self._bar(length if length >= 0 else None, f"upload {PurePosixPath(key).name}")
        reader = _CountingReader(stream, bar.update, hasher)
        try:
            result = self._put_object(bucket, key, reader, length, ctype, meta)
        finally:
            bar.close()
        if hasher.hexdigest() != sha256.lower():
            self._call("delete", bucket, key, lambda: self._mc.remove_object(bucket, key))
            raise IntegrityError(
                f"sha256 of the uploaded stream does not match the given digest;"
                f" {format_uri(bucket, key)} removed"
            )
        return ObjectInfo(
            uri=format_uri(bucket, key),
            bucket=bucket,
            key=key,
            size=reader.count,
            sha256=hasher.hexdigest(),
            etag=_etag(result),
            content_type=ctype,
        )

    # ---------------------------------------------------------------- metadata

    def stat(self, uri: str) -> ObjectInfo:
        """Size, sha256 (when stored), etag, content type and date of an object."""
        bucket, key = parse_uri(uri)
        if not key:
            raise ValidationError(f"object URI {uri!r} needs a key after the bucket")
        head = self._call(
            "stat",
            bucket,
            key,
            lambda: obstore.get(self._store(bucket), key, options={"head": True}),
        )
        return ObjectInfo(
            uri=format_uri(bucket, key),
            bucket=bucket,
            key=key,
            size=head.meta["size"],
            sha256=_meta_get(head.attributes, SHA256_META),
            etag=_etag(head.meta),
            content_type=head.attributes.get("Content-Type"),
            last_modified=head.meta["last_modified"],
        )

    def exists(self, uri: str) -> bool:
        """True if the object exists (a bucket URI: if the bucket exists)."""
        bucket, key = parse_uri(uri)
        if not key:
            return bool(
                self._call("check bucket", bucket, "", lambda: self._mc.bucket_exists(bucket))
            )
        try:
            self.stat(uri)
        except NotFoundError:
            return False
        return True

    def list(self, uri_prefix: str, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects whose key starts with the prefix (all pages; no 1,000-key cap).

        The prefix is a raw key prefix: end it with ``/`` to list a "directory" only.
        Non-recursive listings also yield common prefixes with ``is_dir=True``.
        """
        bucket, prefix = parse_uri(uri_prefix)
        try:
            for o in self._mc.list_objects(bucket, prefix=prefix or None, recursive=recursive):
                yield ObjectInfo(
                    uri=format_uri(bucket, o.object_name),
                    bucket=bucket,
                    key=o.object_name,
                    size=o.size,
                    etag=o.etag,
                    last_modified=o.last_modified,
                    is_dir=bool(o.is_dir),
                )
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, bucket, prefix, "list") from None

    # ---------------------------------------------------------------- download

    def open(self, uri: str):
        """A readable streaming response for the object; use it as a context manager."""
        bucket, key = parse_uri(uri)
        if not key:
            raise ValidationError(f"object URI {uri!r} needs a key after the bucket")
        resp = self._call("download", bucket, key, lambda: obstore.get(self._store(bucket), key))
        return _Body(
            resp.stream(_STREAM_CHUNK), lambda exc: self._error(exc, bucket, key, "download")
        )

    def sha256(self, uri: str) -> str:
        """Hex sha256 of an object's content, streamed (for objects stored without one)."""
        digest = hashlib.sha256()
        with self.open(uri) as body:
            for chunk in body.iter_chunks():
                digest.update(chunk)
        return digest.hexdigest()

    def get_bytes(self, uri: str) -> bytes:
        """The whole object in memory (size and sha256 checked).

        One GET: its headers bring the size and checksum (no stat round trip first).
        """
        bucket, key = parse_uri(uri)
        if not key or key.endswith("/"):
            raise ValidationError(f"object URI {uri!r} needs a key after the bucket")
        buf = io.BytesIO()
        with bar(None, None, enabled=False) as quiet:
            info, n, digest = self._download(bucket, key, buf, 1, quiet, False)
        self._check(info, n, digest)
        return buf.getvalue()

    def _check(self, info: ObjectInfo, size: int, digest: str | None) -> None:
        if info.size is not None and size != info.size:
            raise IntegrityError(f"{info.uri}: got {size} bytes, expected {info.size}; retry")
        if info.sha256 and digest and digest.lower() != info.sha256.lower():
            raise IntegrityError(
                f"{info.uri}: sha256 mismatch (stored {info.sha256[:12]}..., got {digest[:12]}...)"
            )

    def get_file(
        self,
        uri: str,
        path: str | os.PathLike[str],
        *,
        _parallel: int | None = None,
        _bar: Any = None,
        _size: int | None = None,
        _prepared: bool = False,
    ) -> Path:
        """Download an object to ``path`` (a directory: keep the key's file name).

        The data goes to a temporary name in the target directory and is renamed
        into place only after its size and sha256 match. The first request is a
        ranged GET of one part that also brings size and checksum; the rest of a
        large object comes as parallel ranged GETs pinned to the same ETag.
        """
        bucket, key = parse_uri(uri)
        if not key or key.endswith("/"):
            raise ValidationError(f"object URI {uri!r} needs a key after the bucket")
        target = Path(path)
        if not _prepared and (target.is_dir() or str(path).endswith(("/", os.sep))):
            target = safe_join(target, PurePosixPath(key).name)
        fd, tmp = temp_near(target, mkdir=not _prepared)
        own_bar = _bar is None
        bar = _bar if _bar is not None else self._bar(None, f"download {target.name}")
        try:
            with os.fdopen(fd, "r+b") as fh:
                info, n, digest = self._download(
                    bucket, key, fh, _parallel or self.workers, bar, own_bar, _size
                )
            self._check(info, n, digest)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if own_bar:
                bar.close()
        return target

    def _download(
        self,
        bucket: str,
        key: str,
        fh: IO[bytes],
        parallel: int,
        bar: Any,
        own_bar: bool,
        size_hint: int | None = None,
    ) -> tuple[ObjectInfo, int, str]:
        uri = format_uri(bucket, key)
        store = self._store(bucket)
        # a known-small object is fetched whole (no Range), else its first part
        first = 0 if size_hint is not None and size_hint <= self.part_size else self.part_size
        try:
            resp = obstore.get(store, key, options={"range": (0, first)} if first else None)
        except obx.BaseError as exc:
            if "InvalidRange" in str(exc):  # a ranged GET of an empty object
                info = self.stat(uri)
                if info.size == 0:
                    return info, 0, hashlib.sha256(b"").hexdigest()
            raise self._error(exc, bucket, key, "download") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, bucket, key, "download") from None
        total = int(resp.meta["size"])
        attrs = resp.attributes
        info = ObjectInfo(
            uri=uri,
            bucket=bucket,
            key=key,
            size=total,
            sha256=_meta_get(attrs, SHA256_META),
            etag=_etag(resp.meta),
            content_type=attrs.get("Content-Type"),
        )
        if own_bar:
            bar.set_total(total)
        h = hashlib.sha256()
        n = self._pump(resp, fh, h, bar, info)
        rest = total - n
        if rest > 0 and parallel > 1 and rest > self.part_size:
            piece = max(self.part_size, -(-rest // (parallel * 4)))
            ranges = [(off, min(piece, total - off)) for off in range(n, total, piece)]
            fh.truncate(total)
            fh.flush()
            n += self._get_ranges(info, fh.fileno(), ranges, parallel, bar.update, h)
        elif rest > 0:
            opts = _pinned({"range": {"offset": n}}, info.etag)
            resp = self._call(
                "download", bucket, key, lambda: obstore.get(store, key, options=opts)
            )
            n += self._pump(resp, fh, h, bar, info)
        return info, n, h.hexdigest()

    def _pump(self, resp: Any, fh: IO[bytes], h: Any, bar: Any, info: ObjectInfo) -> int:
        n = 0
        try:
            for chunk in resp.stream(_STREAM_CHUNK):
                fh.write(chunk)
                h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection dropped mid-body
            raise self._error(exc, info.bucket, info.key, "download") from None
        return n

    def _get_ranges(
        self,
        info: ObjectInfo,
        fd: int,
        ranges: list[tuple[int, int]],
        parallel: int,
        on_read: Callable[[int], None],
        hasher: Any,
    ) -> int:
        """Fetch ``ranges`` of the version ``info.etag`` in parallel into ``fd``; hash them
        in order as they complete."""
        done = [threading.Event() for _ in ranges]
        failed = threading.Event()
        store = self._store(info.bucket)

        def fetch(i: int, off: int, length: int) -> None:
            try:
                opts = _pinned({"range": (off, off + length)}, info.etag)
                resp = self._call(
                    "download",
                    info.bucket,
                    info.key,
                    lambda: obstore.get(store, info.key, options=opts),
                )
                pos = off
                try:
                    for chunk in resp.stream(_STREAM_CHUNK):
                        os.pwrite(fd, chunk, pos)
                        pos += len(chunk)
                        on_read(len(chunk))
                except OSError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise self._error(exc, info.bucket, info.key, "download") from None
                if pos - off != length:
                    raise IntegrityError(f"{info.uri}: short range read at {off}; retry")
            except BaseException:
                failed.set()
                raise
            finally:
                done[i].set()

        hashed = 0

        def follow() -> None:
            nonlocal hashed
            buf = bytearray(4 * MiB)
            view = memoryview(buf)
            for i, (off, length) in enumerate(ranges):
                while not done[i].wait(0.2):
                    if failed.is_set():
                        return
                if failed.is_set():
                    return
                pos, end = off, off + length
                while pos < end:
                    k = os.preadv(fd, [view[: min(len(buf), end - pos)]], pos)
                    if k <= 0:
                        return
                    hasher.update(view[:k])
                    pos += k
                    hashed += k

        follower = threading.Thread(target=follow, name="sha256-follower", daemon=True)
        follower.start()
        try:
            _run_parallel([(fetch, (i, o, n)) for i, (o, n) in enumerate(ranges)], parallel)
        finally:
            if not all(e.is_set() for e in done):
                failed.set()  # cancelled ranges: stop the follower
            follower.join()
        return hashed

    # ---------------------------------------------------------------- directories

    def upload_dir(
        self, directory: str | os.PathLike[str], uri_prefix: str, *, pattern: str | None = None
    ) -> list[ObjectInfo]:
        """Upload every file under ``directory`` to ``uri_prefix/<relative path>``.

        Files go up ``workers`` at a time; ``pattern`` (glob, e.g. ``*.png``) filters.
        """
        root = Path(directory)
        if not root.is_dir():
            raise ValidationError(f"{str(root)!r} is not a directory")
        bucket, prefix = parse_uri(uri_prefix)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        files = sorted(
            p for p in (root.rglob(pattern) if pattern else root.rglob("*")) if p.is_file()
        )
        total = sum(p.stat().st_size for p in files)
        per_file = max(1, self.workers // max(1, min(self.workers, len(files))))
        with self._bar(total, f"upload {root.name or root}") as bar:
            tasks = [
                (
                    self.put_file,
                    (p, format_uri(bucket, prefix + p.relative_to(root).as_posix())),
                    {"_parallel": per_file, "_bar": bar},
                )
                for p in files
            ]
            return _run_parallel(tasks, self.workers)

    def download_dir(self, uri_prefix: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Download every object under ``uri_prefix`` into ``directory`` (keys kept relative).

        Every key is checked before anything is written: a key that would land
        outside ``directory`` raises :class:`UnsafePathError`.
        """
        bucket, prefix = parse_uri(uri_prefix)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        root = Path(directory)
        items = []
        for info in self.list(format_uri(bucket, prefix), recursive=True):
            if info.key.endswith("/"):
                continue  # directory marker
            items.append((info, safe_join_fast(root, info.key[len(prefix) :])))
        root.mkdir(parents=True, exist_ok=True)
        for parent in sorted({t.parent for _, t in items}):
            parent.mkdir(parents=True, exist_ok=True)
            safe_join(root, parent.relative_to(root).as_posix() + "/x")  # symlinked dirs
        total = sum(i.size or 0 for i, _ in items)
        per_file = max(1, self.workers // max(1, min(self.workers, len(items))))
        with self._bar(total, f"download {prefix or bucket}") as bar:
            tasks = [
                (
                    self.get_file,
                    (info.uri, target),
                    {"_parallel": per_file, "_bar": bar, "_size": info.size, "_prepared": True},
                )
                for info, target in items
            ]
            return _run_parallel(tasks, self.workers)

    # ---------------------------------------------------------------- delete

    def delete(self, uri: str, *, recursive: bool = False) -> int:
        """Delete an object, or with ``recursive`` all under the prefix; returns the count."""
        bucket, key = parse_uri(uri)
        if not recursive:
            if not key:
                raise ValidationError(f"{uri!r} names a bucket; pass recursive=True to empty it")
            self._call("delete", bucket, key, lambda: self._mc.remove_object(bucket, key))
            return 1
        keys = [DeleteObject(o.key) for o in self.list(uri, recursive=True)]
        for start in range(0, len(keys), 1000):
            errors = list(self._mc.remove_objects(bucket, keys[start : start + 1000]))
            if errors:
                e = errors[0]
                raise StorageError(
                    f"delete under {format_uri(bucket, key)} failed: {e.code} {e.name}"
                )
        return len(keys)


class _Body(io.RawIOBase):
    """A streamed object body: file-like, its connection dropped on close.

    Holds at most one chunk of the stream; errors are mapped by ``error``.
    """

    def __init__(self, stream: Any, error: Callable[[Exception], Exception]) -> None:
        self._stream = stream
        self._error = error
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Refill the buffer from the stream; False at its end."""
        try:
            self._buf = memoryview(next(self._stream))
        except StopIteration:
            return False
        except Exception as exc:  # noqa: BLE001 - connection dropped mid-body
            raise self._error(exc) from None
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            if not self._next():
                return 0
        k = min(len(b), len(self._buf))
        b[:k] = self._buf[:k]
        self._buf = self._buf[k:]
        return k

    def iter_chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        """The body in chunks of at most ``size`` bytes."""
        while chunk := self.read(size):
            yield chunk

    def close(self) -> None:
        if not self.closed:
            self._stream = iter(())  # dropping the stream drops its connection
            self._buf = memoryview(b"")
            super().close()


def _run_parallel(tasks: Iterable[tuple], workers: int) -> list[Any]:
    """Run ``(fn, args[, kwargs])`` tasks on a bounded pool; results in task order.

    The first failure cancels what has not started and is raised.
    """
    tasks = list(tasks)
    if not tasks:
        return []
    if workers <= 1 or len(tasks) == 1:
        return [t[0](*t[1], **(t[2] if len(t) > 2 else {})) for t in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(t[0], *t[1], **(t[2] if len(t) > 2 else {})) for t in tasks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                for p in pending:
                    p.cancel()
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
