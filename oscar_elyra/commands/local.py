"""``oscar-elyra local up|down|status``: the embedded OSCAR-compatible cluster."""

from __future__ import annotations

import signal
from pathlib import Path

import click
import requests

from oscar_elyra.commands._common import CliState, pass_state
from oscar_elyra.discovery import default_data_dir, pid_alive, read_cluster_file
from oscar_elyra.local import LocalCluster, stop_running
from oscar_elyra.local.jobs import COMPAT_MODES
from oscar_elyra.local.state import load_credentials

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cluster data dir (default: $OSCAR_ELYRA_DATA_DIR or the user data dir).",
)


def _data_dir(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()).expanduser().resolve()


def _describe(info: dict, creds: dict | None, show: bool) -> dict:
    out = {
        "endpoint": info.get("endpoint"),
        "user": info.get("user"),
        "credentials_file": info.get("credentials_file"),
        "s3_endpoint": info.get("s3_endpoint"),
        "data_dir": info.get("data_dir"),
        "pid": info.get("pid"),
    }
    if show and creds:
        out["password"] = creds.get("password")
        out["s3_access_key"] = creds.get("s3_access_key")
        out["s3_secret_key"] = creds.get("s3_secret_key")
    return out


def _human(d: dict, title: str) -> str:
    lines = [title]
    for key in ("endpoint", "user", "credentials_file", "s3_endpoint", "data_dir", "pid"):
        if d.get(key) is not None:
            lines.append(f"  {key.replace('_', ' ')}: {d[key]}")
    for key in ("password", "s3_access_key", "s3_secret_key"):
        if key in d:
            lines.append(f"  {key.replace('_', ' ')}: {d[key]}")
    if "password" not in d:
        lines.append("  (password in the credentials file; show it with --show-credentials)")
    return "\n".join(lines)


@click.group("local")
def local() -> None:
    """Run an embedded OSCAR-compatible cluster on this machine (127.0.0.1 only).

    Service images are recorded but not pulled: scripts run on the host.
    """


@local.command("up")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="API port on 127.0.0.1 (0 = a free port).",
)
@_DATA_DIR
@click.option("--detach", is_flag=True, help="Start in the background and return.")
@click.option("--with-examples", is_flag=True, help="Deploy cowsay, grayify and digits.")
@click.option(
    "--max-jobs",
    type=click.IntRange(1, 1024),
    default=None,
    help="Async jobs run at once (default: number of cores).",
)
@click.option(
    "--job-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds an async job may run unless its service's 'oscar-elyra/job-timeout' "
    "annotation says otherwise (default 3600; 0: no limit).",
)
@click.option(
    "--compat",
    type=click.Choice(COMPAT_MODES),
    default="embedded",
    show_default=True,
    help="'oscar': ignore scripts' exit codes as OSCAR does (a failing script gives a "
    "Succeeded job and a 200 answer); 'embedded': a non-zero exit fails the job and /run.",
)
@click.option("--show-credentials", is_flag=True, help="Also print the password and S3 keys.")
@pass_state
def up(
    state: CliState,
    port,
    data_dir,
    detach,
    with_examples,
    max_jobs,
    job_timeout,
    compat,
    show_credentials,
) -> None:
    """Start the embedded cluster (SeaweedFS S3 + OSCAR REST API)."""

    data_dir = _data_dir(data_dir)
    cluster = LocalCluster(
        data_dir, port=port, max_jobs=max_jobs, job_timeout=job_timeout, compat=compat
    )
    state.info(f"Starting the embedded cluster in {data_dir} ...")
    cluster.start()

    def _stop(signum, frame):
        raise KeyboardInterrupt

    try:
        if not detach:
            signal.signal(signal.SIGTERM, _stop)
        if with_examples:
            names = cluster.deploy_examples()
            state.info(f"Deployed example services: {', '.join(names)}")
        info = dict(read_cluster_file(data_dir) or {}, data_dir=str(data_dir))
        desc = _describe(info, load_credentials(data_dir, create=False), show_credentials)
        if detach:
            desc["detached"] = True
            state.emit(
                desc,
                _human(desc, "Embedded OSCAR cluster running (detached)")
                + "\n  stop it with: oscar-elyra local down"
                + ("" if data_dir == _data_dir(None) else f" --data-dir {data_dir}"),
            )
            cluster.detach()
            return
        # Ctrl-C (or SIGTERM) at any point from here on stops the cluster cleanly, exit 0
        state.emit(desc, _human(desc, "Embedded OSCAR cluster running; Ctrl-C to stop"))
        code = cluster.wait()
        state.info(f"The cluster exited with code {code} (log: {cluster.log_file})")
    except KeyboardInterrupt:
        state.info("Stopping ...")
    finally:
        cluster.stop()


@local.command("down")
@_DATA_DIR
@pass_state
def down(state: CliState, data_dir) -> None:
    """Stop the embedded cluster running from the data dir."""
    data_dir = _data_dir(data_dir)
    pid = stop_running(data_dir)
    if pid is None:
        state.emit(
            {"stopped": False, "data_dir": str(data_dir)},
            f"No embedded cluster is running from {data_dir}",
        )
    else:
        state.emit(
            {"stopped": True, "pid": pid, "data_dir": str(data_dir)},
            f"Stopped the embedded cluster (pid {pid}) of {data_dir}",
        )


@local.command("status")
@_DATA_DIR
@click.option("--show-credentials", is_flag=True, help="Also print the password and S3 keys.")
@pass_state
def status(state: CliState, data_dir, show_credentials) -> None:
    """Show whether the embedded cluster runs, and where (exit code 1 when it doesn't)."""

    data_dir = _data_dir(data_dir)
    info = read_cluster_file(data_dir)
    if not info or not pid_alive(info.get("pid")):
        state.emit(
            {"running": False, "data_dir": str(data_dir)},
            f"No embedded cluster is running from {data_dir}",
        )
        raise SystemExit(1)
    healthy = False
    try:
        healthy = requests.get(info["endpoint"] + "/health", timeout=3).status_code == 200
    except requests.RequestException:
        pass
    desc = _describe(
        dict(info, data_dir=str(data_dir)),
        load_credentials(data_dir, create=False),
        show_credentials,
    )
    desc.update(running=True, healthy=healthy)
    state.emit(
        desc,
        _human(
            desc, "Embedded OSCAR cluster running" + ("" if healthy else " (API not answering)")
        ),
    )
