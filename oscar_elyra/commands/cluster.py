"""CLI: ``cluster info``, ``services ls|get|apply|rm``, ``logs ls|get|rm``."""

from __future__ import annotations

from typing import Any

import click
import yaml

from oscar_elyra.commands._common import CliState, pass_state

#: fields of a service definition that are never printed
_HIDDEN = ("token",)


def _public(svc: Any) -> Any:
    """A service definition with its token and environment secrets shown as ``***``."""
    if not isinstance(svc, dict):
        return svc
    out = {k: ("***" if k in _HIDDEN and v else v) for k, v in svc.items()}
    env = out.get("environment")
    if isinstance(env, dict) and isinstance(env.get("secrets"), dict):
        out["environment"] = {**env, "secrets": {k: "***" for k in env["secrets"]}}
    return out


def _table(rows: list[list[str]], header: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def _paths(svc: dict, key: str) -> str:
    items = svc.get(key) or []
    return ",".join(str(i.get("path", "")) for i in items if isinstance(i, dict)) or "-"


# ---------------------------------------------------------------------- cluster


@click.group()
def cluster() -> None:
    """Information about the selected OSCAR cluster."""


@cluster.command("info")
@pass_state
def cluster_info(state: CliState) -> None:
    """Show the cluster's endpoint, version and serverless backend."""
    client = state.client()
    info = client.info()
    data = {
        "cluster": client.cluster_id,
        "endpoint": client.endpoint,
        "source": client.cluster.source,
        "info": info,
    }
    backend = info.get("serverless_backend") or {}
    backend_name = backend.get("name") if isinstance(backend, dict) else backend
    human = "\n".join(
        [
            f"cluster:    {client.cluster_id}",
            f"endpoint:   {client.endpoint}",
            f"source:     {client.cluster.source}",
            f"version:    {info.get('version', '?')}",
            f"kubernetes: {info.get('kubernetes_version', '?')}",
            f"backend:    {backend_name or '-'}",
        ]
    )
    state.emit(data, human)


# ---------------------------------------------------------------------- services


@click.group()
def services() -> None:
    """List, show, deploy (from FDL) and delete services."""


@services.command("ls")
@pass_state
def services_ls(state: CliState) -> None:
    """List the services of the cluster."""
    items = state.client().list_services()
    rows = [
        [
            s.get("name", "?"),
            s.get("image", "-"),
            str(s.get("memory", "-")),
            str(s.get("cpu", "-")),
            _paths(s, "input"),
            _paths(s, "output"),
        ]
        for s in sorted(items, key=lambda s: str(s.get("name", "")))
    ]
    state.emit(
        [_public(s) for s in items],
        _table(rows, ["NAME", "IMAGE", "MEMORY", "CPU", "INPUT", "OUTPUT"]),
    )


@services.command("get")
@click.argument("name")
@pass_state
def services_get(state: CliState, name: str) -> None:
    """Show the definition of service NAME (its token is hidden)."""
    svc = _public(state.client().get_service(name))
    if state.json:
        state.emit(svc)
    else:
        state.emit(svc, yaml.safe_dump(svc, sort_keys=False, allow_unicode=True).rstrip())


@services.command("apply")
@click.argument("fdl", type=click.Path(exists=True, dir_okay=False, path_type=str))
@pass_state
def services_apply(state: CliState, fdl: str) -> None:
    """Create or update every service of the FDL file (validated before sending)."""
    results = state.client().apply_fdl(fdl)
    state.emit(
        [{"name": n, "action": a} for n, a in results],
        "\n".join(f"{a} {n}" for n, a in results) or "no services in the file",
    )


@services.command("rm")
@click.argument("names", nargs=-1, required=True)
@pass_state
def services_rm(state: CliState, names: tuple[str, ...]) -> None:
    """Delete services NAMES."""
    client = state.client()
    for name in names:
        client.delete_service(name)
        state.info(f"deleted {name}")
    state.emit({"deleted": list(names)}, "\n".join(f"deleted {n}" for n in names))


# ---------------------------------------------------------------------- logs


@click.group()
def logs() -> None:
    """List, show and delete the jobs (and logs) of a service."""


@logs.command("ls")
@click.argument("service")
@pass_state
def logs_ls(state: CliState, service: str) -> None:
    """List every job of SERVICE with its status and times."""
    jobs = state.client().list_jobs(service)
    rows = [
        [
            name,
            str(j.get("status", "?")),
            str(j.get("creation_time") or "-"),
            str(j.get("start_time") or "-"),
            str(j.get("finish_time") or "-"),
        ]
        for name, j in sorted(jobs.items(), key=lambda kv: str(kv[1].get("creation_time", "")))
    ]
    state.emit(jobs, _table(rows, ["JOB", "STATUS", "CREATED", "STARTED", "FINISHED"]))


@logs.command("get")
@click.argument("service")
@click.argument("job")
@click.option("--timestamps", is_flag=True, help="Prefix lines with timestamps.")
@pass_state
def logs_get(state: CliState, service: str, job: str, timestamps: bool) -> None:
    """Print the log of JOB of SERVICE."""
    text = state.client().get_job_log(service, job, timestamps=timestamps)
    state.emit({"service": service, "job": job, "log": text}, text.rstrip("\n"))


@logs.command("rm")
@click.argument("service")
@click.argument("jobs", nargs=-1)
@click.option("--succeeded", is_flag=True, help="Delete every succeeded job.")
@click.option("--all", "all_", is_flag=True, help="Delete every job (also pending/running/failed).")
@pass_state
def logs_rm(
    state: CliState, service: str, jobs: tuple[str, ...], succeeded: bool, all_: bool
) -> None:
    """Delete JOBS of SERVICE, or all succeeded jobs (--succeeded), or every job (--all)."""
    if bool(jobs) + succeeded + all_ != 1:
        raise click.UsageError("give job names, or exactly one of --succeeded / --all")
    client = state.client()
    if jobs:
        for job in jobs:
            client.delete_job(service, job)
        deleted: Any = list(jobs)
        human = "\n".join(f"deleted {j}" for j in jobs)
    else:
        client.delete_jobs(service, all=all_)
        deleted = "all" if all_ else "succeeded"
        human = f"deleted {deleted} jobs of {service}"
    state.emit({"service": service, "deleted": deleted}, human)
