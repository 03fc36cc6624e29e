"""``oscar-elyra deepaas help|predict|map``: AI4EOSC marketplace (DEEPaaS) models on OSCAR."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from oscar_elyra import deepaas as dp
from oscar_elyra.commands._common import SECONDS, CliState, pass_state, writable
from oscar_elyra.errors import ServiceError, ValidationError


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"{what} {item!r}: write it as NAME=VALUE")
        out[key.strip()] = value
    return out


@click.group("deepaas")
def deepaas() -> None:
    """Call DEEPaaS models (AI4EOSC marketplace services) on OSCAR.

    Works with only an endpoint and the service's token:
    `oscar-elyra --endpoint URL --token TOKEN deepaas predict SERVICE ...`.
    """


@deepaas.command("help")
@click.argument("service")
@pass_state
def help_(state: CliState, service: str) -> None:
    """The model's arguments (name, type, required, default, choices, help)."""
    args = dp.help(service, session=state.session(), refresh=True)
    if state.json:
        state.emit([a.to_dict() for a in args])
        return
    for a in args:
        click.echo(a.describe())
        for line in a.help.splitlines():
            click.echo(f"    {line}")


@deepaas.command("predict")
@click.argument("service")
@click.option("-f", "--file", "files", multiple=True, metavar="NAME=PATH", help="A file argument.")
@click.option("-a", "--arg", "args", multiple=True, metavar="NAME=VALUE", help="A model argument.")
@click.option("--timeout", type=SECONDS, default=300, show_default=True, help="Seconds.")
@click.option("--log", "show_log", is_flag=True, help="Print the model's log on stderr too.")
@pass_state
def predict(state: CliState, service, files, args, timeout, show_log) -> None:
    """Predict synchronously (/run): prints the prediction as JSON.

    \b
    Example: oscar-elyra deepaas predict deepaas-digits --file image=x.png --arg top_k=3
    """
    try:
        pred = dp.predict(
            service,
            files=_pairs(files, "--file"),
            args=_pairs(args, "--arg"),
            session=state.session(),
            timeout=timeout,
        )
    except ServiceError as exc:
        if show_log and exc.log:
            click.echo(exc.log, err=True)
        raise
    if show_log:
        click.echo(pred.log, err=True)
    click.echo(json.dumps(pred.json(), indent=None if state.json else 2, sort_keys=True))


@deepaas.command("map")
@click.argument("service")
@click.argument("inputs", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o", "--output", "output", type=click.Path(path_type=Path), required=True, callback=writable
)
@click.option(
    "--file-arg", metavar="NAME", help="The file argument inputs go to (default: the only one)."
)
@click.option("-a", "--arg", "args", multiple=True, metavar="NAME=VALUE", help="A model argument.")
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--timeout", type=SECONDS, default=600, show_default=True, help="Seconds, in all.")
@pass_state
def map_(state: CliState, service, inputs, output, file_arg, args, concurrency, timeout) -> None:
    """Predict on every file of INPUTS asynchronously (through the input bucket).

    Writes OUTPUT/<stem>.json (prediction) and OUTPUT/<stem>.log for each input and
    OUTPUT/results.json (one record per input); exit code 1 if any input failed.
    """
    res = dp.map(
        service,
        inputs,
        file_arg=file_arg,
        output_dir=output,
        session=state.session(),
        concurrency=concurrency,
        timeout=timeout,
        args=_pairs(args, "--arg"),
    )
    (output / "results.json").write_text(json.dumps(list(res), indent=2, default=str) + "\n")
    counts = res.counts()
    if state.json:
        state.emit({"counts": counts, "records": list(res)})
    else:
        for r in res:
            if r["status"] == "failed":
                click.echo(f"FAILED {r['input']}: {r['error']}", err=True)
        click.echo(
            f"{counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed; "
            f"results in {output}/results.json"
        )
    if not res.ok:
        sys.exit(1)
