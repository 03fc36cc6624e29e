"""Exception hierarchy shared by every layer of oscar_elyra.

Every message names what went wrong and, where it helps, how to fix it.
Messages must never contain a secret: build them from redacted values
(see :func:`oscar_elyra.auth.redact`).
"""

from __future__ import annotations

import builtins


class OscarError(Exception):
    """Base class of all oscar_elyra errors."""

    #: process exit code the CLI uses for this error (1 remote failure, 2 bad usage/input)
    exit_code = 1


class ConfigError(OscarError):
    """No usable cluster configuration, or a malformed setting."""

    exit_code = 2


class ValidationError(OscarError, ValueError):
    """Invalid user input: a service definition, an FDL file, a pipeline, a URI."""

    exit_code = 2


class AuthError(OscarError):
    """Credentials were refused or could not be obtained (401/403, failed refresh)."""


class NotFoundError(OscarError):
    """A service, job, bucket or object does not exist (404)."""


class ConflictError(OscarError):
    """The resource already exists (409, or OSCAR's 400 on an existing service)."""


class ServiceError(OscarError):
    """The cluster or a service answered with an error, or a job failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        log: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.log = log


class TimeoutError(OscarError, builtins.TimeoutError):  # noqa: A001 - deliberate, documented name
    """A request or a wait ran out of time."""


class StorageError(OscarError):
    """Object storage failed (S3 errors, transfers)."""


class IntegrityError(StorageError):
    """Size or sha256 of a transferred object does not match."""


class UnsafePathError(ValidationError):
    """A key or archive member would write outside the target directory."""
