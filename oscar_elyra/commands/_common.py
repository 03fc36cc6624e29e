"""Shared plumbing of the CLI: global options, client construction, output."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from oscar_elyra._paths import output_problem
from oscar_elyra.config import ClusterConfig, resolve_cluster
from oscar_elyra.errors import ConfigError
from oscar_elyra.session import Session, connect


@dataclass
class CliState:
    """Global options of ``oscar-elyra``, stored on the click context."""

    cluster: str | None = None
    endpoint: str | None = None
    service_token: str | None = None
    json: bool = False
    quiet: bool = False
    _session: Session | None = field(default=None, repr=False)

    def session(self) -> Session:
        """The connection to the selected cluster (built once, see :func:`session.connect`)."""
        if self._session is None:
            self._session = connect(
                self.cluster,
                endpoint=self.endpoint,
                service_token=self.service_token,
                progress=self.progress,
            )
        return self._session

    def client(self):
        """The :class:`~oscar_elyra.client.OscarClient` of the selected cluster."""
        return self.session().client

    def store(self):
        """The selected cluster's :class:`~oscar_elyra.storage.ObjectStore`."""
        return self.session().store

    def cluster_config(self, required: bool = False) -> ClusterConfig | None:
        """The cluster ``--cluster``/``--endpoint``/environment/config select, if any.

        With neither option given and nothing configured, None (unless ``required``).
        """
        if self._session is not None:
            return self._session.config
        try:
            return resolve_cluster(
                self.cluster, endpoint=self.endpoint, service_token=self.service_token
            )
        except ConfigError:
            if required or self.cluster or self.endpoint:
                raise
            return None

    def emit(self, data: Any, human: str | None = None) -> None:
        """Print ``data`` as JSON with ``--json``, else ``human`` (or a readable dump)."""
        if self.json:
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        elif human is not None:
            click.echo(human)
        elif isinstance(data, (dict, list)):
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            click.echo(str(data))

    def info(self, message: str) -> None:
        """A progress/status line on stderr, silent with ``--quiet`` or ``--json``."""
        if not (self.quiet or self.json):
            click.echo(message, err=True)

    @property
    def progress(self) -> bool | None:
        """Value for the ``progress=`` argument of library calls: False when quiet."""
        return False if (self.quiet or self.json or not sys.stderr.isatty()) else None


pass_state = click.make_pass_decorator(CliState, ensure=True)


class Seconds(click.ParamType):
    """A positive, finite number of seconds (``--timeout``): 0, -1, nan and inf are refused."""

    name = "SECONDS"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r}: give a positive number of seconds", param, ctx)
        return seconds


SECONDS = Seconds()


def writable(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: refuse an output path nothing could be written at, before any work."""
    if value is not None:
        problem = output_problem(value)
        if problem:
            raise click.BadParameter(f"cannot write {str(value)!r}: {problem}")
    return value
