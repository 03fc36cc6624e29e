"""CLI: ``cluster info``, ``services ls|get|apply|rm|deployment``, ``logs ls|get|rm``."""

from __future__ import annotations

from typing import Any

import click
import yaml

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.errors import ConfigError, NotFoundError, ValidationError
from oscar_elyra.fdl import by_cluster, load_fdl
from oscar_elyra.session import connect

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
    if isinstance(backend, dict):
        backend_name = " ".join(str(backend.get(k) or "") for k in ("name", "version")).strip()
    else:
        backend_name = str(backend)
    version = str(info.get("version") or "?")
    if info.get("git_commit"):
        version += f" ({str(info['git_commit'])[:12]})"
    human = "\n".join(
        [
            f"cluster:    {client.cluster_id}",
            f"endpoint:   {client.endpoint}",
            f"source:     {client.cluster.source}",
            f"version:    {version}",
            f"kubernetes: {info.get('kubernetes_version') or '-'}",
            f"backend:    {backend_name or '-'}",
            f"arch:       {info.get('architecture') or '-'}",
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


def _fdl_targets(state: CliState, groups: dict[str, list[dict]]) -> list[tuple[Any, list[dict]]]:
    """(client, services) per cluster, as ``oscar-cli apply`` sends an FDL file.

    An FDL naming one cluster goes to the selected cluster (``--cluster``, the environment,
    the oscar-cli default or the embedded cluster), so the same file deploys anywhere.
    One naming several sends each entry to the oscar-cli cluster of that id (``--cluster``
    keeps only that id's entries); every id is resolved before anything is sent.
    """
    if len(groups) == 1:
        return [(state.client(), next(iter(groups.values())))]
    if state.cluster:
        if state.cluster not in groups:
            raise ValidationError(
                f"the FDL file has no entry for cluster {state.cluster!r} "
                f"(it has: {', '.join(groups)})"
            )
        return [(state.client(), groups[state.cluster])]
    if state.endpoint:
        raise ValidationError(
            f"the FDL file names {len(groups)} clusters ({', '.join(groups)}): "
            "pick one with --cluster, not --endpoint"
        )
    targets, missing = [], []
    for cid, svcs in groups.items():
        try:
            targets.append((connect(cid, progress=state.progress).client, svcs))
        except ConfigError:
            missing.append(cid)
    if missing:
        raise ConfigError(
            f"the FDL file's cluster(s) {', '.join(missing)} are not in the oscar-cli config: "
            "add them with `oscar-cli cluster add`, or apply one cluster's entries with --cluster"
        )
    return targets


@services.command("apply")
@click.argument("fdl", type=click.Path(exists=True, dir_okay=False, path_type=str))
@pass_state
def services_apply(state: CliState, fdl: str) -> None:
    """Create or update every service of the FDL file (validated before sending).

    Each ``functions.oscar[].<cluster-id>`` entry goes to that cluster of the oscar-cli
    config when the file names several; ``--cluster ID`` applies only ID's entries.
    """
    targets = _fdl_targets(state, by_cluster(load_fdl(fdl)))
    results = []
    for client, svcs in targets:
        for svc in svcs:
            results.append((svc["name"], client.apply_service(svc), client.cluster_id))
    multi = len(targets) > 1
    state.emit(
        [{"name": n, "action": a, "cluster": c} for n, a, c in results],
        "\n".join(f"{a} {n}" + (f" on {c}" if multi else "") for n, a, c in results)
        or "no services in the file",
    )


@services.command("deployment")
@click.argument("name")
@click.option("--logs", "show_logs", is_flag=True, help="Also print the deployment logs.")
@click.option("--tail", type=click.IntRange(1), default=50, show_default=True)
@pass_state
def services_deployment(state: CliState, name: str, show_logs: bool, tail: int) -> None:
    """Show the deployment status of service NAME (and, with --logs, its deployment logs)."""
    client = state.client()
    status = client.deployment_status(name)
    data: dict[str, Any] = {"status": status}
    lines = [
        f"state:   {status.get('state', '?')}",
        f"reason:  {status.get('reason') or '-'}",
        f"active:  {status.get('active_instances', 0)}  affected: "
        f"{status.get('affected_instances', 0)}  ({status.get('resource_kind') or '-'})",
    ]
    if show_logs:
        logs_ = client.deployment_logs(name, timestamps=True, tail_lines=tail)
        data["logs"] = logs_
        entries = logs_.get("entries") or []
        if logs_.get("message"):
            lines.append(str(logs_["message"]))
        lines += [" ".join(filter(None, (e.get("timestamp"), e.get("message")))) for e in entries]
    state.emit(data, "\n".join(lines))


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


_STATUSES = ("Pending", "Running", "Succeeded", "Failed", "Suspended")


@logs.command("ls")
@click.argument("service")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_STATUSES, case_sensitive=False),
    help="Only jobs in this status (repeatable).",
)
@pass_state
def logs_ls(state: CliState, service: str, statuses: tuple[str, ...]) -> None:
    """List every job of SERVICE with its status and times."""
    jobs = state.client().list_jobs(service)
    if statuses:
        wanted = {s.lower() for s in statuses}
        jobs = {n: j for n, j in jobs.items() if str(j.get("status", "")).lower() in wanted}
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


def _latest_job(jobs: dict[str, dict]) -> str:
    return max(jobs, key=lambda n: (str(jobs[n].get("creation_time") or ""), n))


@logs.command("get")
@click.argument("service")
@click.argument("job", required=False)
@click.option("--latest", is_flag=True, help="The most recently created job.")
@click.option("--timestamps", is_flag=True, help="Prefix lines with timestamps.")
@pass_state
def logs_get(
    state: CliState, service: str, job: str | None, latest: bool, timestamps: bool
) -> None:
    """Print the log of JOB of SERVICE (or of its latest job with --latest)."""
    if bool(job) == latest:
        raise click.UsageError("give a JOB name or --latest")
    client = state.client()
    if latest:
        jobs = client.list_jobs(service)
        if not jobs:
            raise NotFoundError(f"service {service!r} has no jobs")
        job = _latest_job(jobs)
        state.info(f"job {job}")
    text = client.get_job_log(service, job, timestamps=timestamps)
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
