"""``oscar-elyra kfp credentials``: the Secret and PodDefault that give OSCAR palette tasks on
Kubeflow Pipelines their settings (see :mod:`oscar_elyra.elyra.kfp`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from oscar_elyra._paths import write_text_atomic
from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.elyra import CREDENTIALS_SECRET, POD_LABEL
from oscar_elyra.elyra.kfp import credentials_objects, warnings_for


@click.group("kfp")
def kfp() -> None:
    """Kubeflow Pipelines: what OSCAR palette components need in the cluster."""


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (temp file, then rename)."""
    write_text_atomic(path, text, mode=0o600)


@kfp.command("credentials")
@click.option("--namespace", "-n", required=True, help="Kubeflow profile namespace of the runs.")
@click.option("--secret-name", default=CREDENTIALS_SECRET, show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (mode 0600) instead of printing.",
)
@pass_state
def credentials(state: CliState, namespace: str, secret_name: str, output: Path | None) -> None:
    """Print the Kubernetes Secret with the selected cluster's settings and the Kubeflow
    PodDefault that injects them as OSCAR_* into pods labelled oscar-credentials=true (the
    OSCAR nodes of digits_kfp.pipeline). Apply with: ... | kubectl apply -f -
    """
    config = state.cluster_config(required=True)
    objects = credentials_objects(config, namespace, secret_name=secret_name)
    for line in warnings_for(config):
        click.echo(f"Warning: {line}", err=True)
    if state.json:
        text = json.dumps({"objects": objects}, indent=2) + "\n"
    else:
        text = yaml.safe_dump_all(objects, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_private(output, text)
    state.info(
        f"wrote the Secret {secret_name!r} and its PodDefault to {output} (mode 0600); label "
        f"the OSCAR nodes {POD_LABEL}=true and apply it with: kubectl apply -f {output}"
    )
