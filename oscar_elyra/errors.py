"""The whole exception tree of oscar_elyra (every layer raises only these)::

    Exception
    └── OscarError                      base of everything below
        ├── ConfigError                 no usable cluster settings, a malformed setting
        ├── ValidationError (ValueError) bad user input: service definition, FDL, pipeline, URI
        │   ├── ParameterError          a node parameter (environment variable) missing or wrong
        │   └── UnsafePathError         a key or archive member would write outside its folder
        ├── AuthError                   credentials refused or not obtainable (401/403)
        ├── NotFoundError               a service, job, bucket or object does not exist (404)
        ├── ConflictError               the resource already exists (409)
        ├── ServiceError                the cluster or a service answered an error; a job failed
        ├── TimeoutError (builtins.TimeoutError)  a request or a wait ran out of time
        ├── StorageError                object storage failed
        │   └── IntegrityError          size or sha256 of a transfer does not match
        └── NodeFailure                 a pipeline node ran and failed (``error`` goes to run.json)

Every message names what went wrong and, where it helps, how to fix it; none carries a
secret (messages are built from values passed through :func:`oscar_elyra.redact.redact`).
Exit codes are the CLI's business (:func:`exit_code`), not stored on the exceptions.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "OscarError",
    "ConfigError",
    "ValidationError",
    "ParameterError",
    "UnsafePathError",
    "AuthError",
    "NotFoundError",
    "ConflictError",
    "ServiceError",
    "TimeoutError",
    "StorageError",
    "IntegrityError",
    "NodeFailure",
    "is_bad_input",
]


class OscarError(Exception):
    """Base class of all oscar_elyra errors."""


class ConfigError(OscarError):
    """No usable cluster configuration, or a malformed setting."""


class ValidationError(OscarError, ValueError):
    """Invalid user input: a service definition, an FDL file, a pipeline, a URI."""


class ParameterError(ValidationError):
    """A node parameter (environment variable) is missing or wrong.

    The message is one line naming the variable and what it expects; in a notebook the
    traceback is just that line (IPython's ``_render_traceback_`` hook).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class UnsafePathError(ValidationError):
    """A key or archive member would write outside the target directory."""


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


class NodeFailure(OscarError):
    """A pipeline node ran and failed; ``error`` is the dict stored in run.json."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"message": message, **details}


def is_bad_input(exc: BaseException) -> bool:
    """True for errors the user fixes in their input or settings (CLI exit code 2)."""
    return isinstance(exc, (ConfigError, ValidationError))
