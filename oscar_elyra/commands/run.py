"""``oscar-elyra run``: a service (``run SERVICE -i/-f``) or a pipeline (``run FILE.pipeline``).

Service names are DNS labels and never contain a dot, so an argument ending in
``.pipeline`` is unambiguous.
"""

from __future__ import annotations

import click

from oscar_elyra.commands.data import run_service
from oscar_elyra.commands.pipeline import run_file


class _RunDispatch(click.Command):
    def _target(self, args: list[str]) -> click.Command:
        # a word ending in .pipeline that is not the value of a service-run option
        values = {"-i", "--input", "-f", "--file", "-o", "--output", "--timeout"}
        words = [a for i, a in enumerate(args) if i == 0 or args[i - 1] not in values]
        if any(a.endswith(".pipeline") and not a.startswith("-") for a in words):
            return run_file

        return run_service

    def make_context(self, info_name, args, parent=None, **extra):
        if any(a in ("-h", "--help") for a in args) and not any(
            not a.startswith("-") for a in args
        ):
            return super().make_context(info_name, args, parent=parent, **extra)
        self._delegate = self._target(list(args))
        return self._delegate.make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        delegate = getattr(self, "_delegate", None)
        if delegate is None:
            return super().invoke(ctx)
        return delegate.invoke(ctx)


@click.command(cls=_RunDispatch, context_settings={"ignore_unknown_options": True})
def run() -> None:
    """Invoke a service synchronously, or run a .pipeline file.

    \b
      oscar-elyra run SERVICE -i TEXT | -f FILE [-o OUT]   sync call to /run/SERVICE
      oscar-elyra run PIPELINE.pipeline [options]           run a pipeline as a batch job
    See `oscar-elyra run SERVICE --help` or `oscar-elyra run X.pipeline --help`.
    """
