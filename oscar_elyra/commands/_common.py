"""Shared plumbing of the CLI: global options, client construction, output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click


@dataclass
class CliState:
    """Global options of ``oscar-elyra``, stored on the click context."""

    cluster: str | None = None
    endpoint: str | None = None
    json: bool = False
    quiet: bool = False
    _client: Any = field(default=None, repr=False)

    def client(self):
        """The :class:`~oscar_elyra.client.OscarClient` for the selected cluster (built once)."""
        if self._client is None:
            from oscar_elyra.client import OscarClient
            from oscar_elyra.config import resolve_cluster

            config = resolve_cluster(cluster=self.cluster, endpoint=self.endpoint)
            self._client = OscarClient(config)
        return self._client

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
