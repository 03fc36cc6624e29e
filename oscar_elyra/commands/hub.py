"""``oscar-elyra hub ls|show|deploy``: curated services of the OSCAR Hub (RO-Crates)."""

from __future__ import annotations

import click

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.commands.cluster import _paths, _table
from oscar_elyra.hub import Hub

HUB_OPTION = click.option(
    "--hub",
    "location",
    metavar="URL|DIR",
    default=None,
    help="The hub: a URL or a local folder of crates (default: $OSCAR_HUB, else "
    "github.com/grycap/oscar-hub).",
)


@click.group("hub")
def hub() -> None:
    """Curated OSCAR services of the OSCAR Hub (grycap/oscar-hub RO-Crates)."""


@hub.command("ls")
@HUB_OPTION
@pass_state
def hub_ls(state: CliState, location: str | None) -> None:
    """List the hub's crates (a crate that cannot be read is reported on stderr)."""
    source = Hub(location)
    crates, broken = source.crates()
    for slug, error in broken.items():
        click.echo(f"warning: crate {slug}: {error}", err=True)
    if state.json:
        state.emit([c.to_dict() for c in crates])
        return
    rows = [
        [
            c.slug,
            c.name,
            ",".join(c.service_types) or "-",
            c.memory or "-",
            ", ".join(c.processors) or "-",
        ]
        for c in crates
    ]
    click.echo(_table(rows, ["SLUG", "NAME", "TYPE", "MEMORY", "PROCESSORS"]))


@hub.command("show")
@click.argument("slug")
@HUB_OPTION
@pass_state
def hub_show(state: CliState, slug: str, location: str | None) -> None:
    """Show a crate: its metadata, the service its FDL defines, the model arguments."""
    source = Hub(location)
    crate = source.crate(slug)
    services = source.services(slug)
    data = {
        **crate.to_dict(),
        "hub": source.location,
        "services": [
            {k: svc.get(k) for k in ("name", "image", "memory", "cpu", "input", "output")}
            for svc in services
        ],
    }
    if state.json:
        state.emit(data)
        return
    lines = [f"{crate.name} ({crate.slug}, version {crate.version or '?'})"]
    if crate.description:
        lines.append(crate.description)
    for label, value in [
        ("author", crate.author),
        ("license", crate.license),
        ("needs", ", ".join(filter(None, [crate.memory, *crate.processors]))),
        ("type", ", ".join(crate.service_types)),
        ("based on", ", ".join(crate.based_on)),
        ("files", ", ".join(crate.files)),
        ("url", crate.url),
    ]:
        if value:
            lines.append(f"  {label + ':':<10} {value}")
    for svc in services:
        lines.append(
            f"  service:   {svc['name']} (image {svc.get('image')}; "
            f"input {_paths(svc, 'input')}; output {_paths(svc, 'output')})"
        )
    if crate.arguments is not None:
        lines.append("  model arguments:")
        lines += [f"    {a.describe()}" for a in crate.arguments]
    click.echo("\n".join(lines))


@hub.command("deploy")
@click.argument("slug")
@click.option("-n", "--name", default=None, help="Deploy as NAME (its MinIO buckets renamed too).")
@HUB_OPTION
@pass_state
def hub_deploy(state: CliState, slug: str, name: str | None, location: str | None) -> None:
    """Deploy a crate's service (its FDL and script) to the selected cluster."""
    done = Hub(location).deploy(slug, name=name, session=state.session())
    lines = []
    for d in done:
        lines.append(f"{d['action']} {d['name']} (image {d['image']}) from crate {slug}")
        lines += [f"  bucket path {old} -> {new}" for old, new in d["moved"].items()]
    state.emit([{**d, "crate": slug} for d in done], "\n".join(lines))
