"""Shared fixtures: a real embedded cluster and a real SeaweedFS S3 server.

Session-scoped (one per xdist worker), on free ports in temp dirs; stopped at the end.

- ``cluster``: a started :class:`oscar_elyra.local.LocalCluster` with the example
  services (cowsay, grayify, digits) deployed.
- ``cluster_env``: ``os.environ`` + ``cluster.env()`` for subprocesses.
- ``s3``: a started :class:`oscar_elyra.local.weed.SeaweedFS` (``endpoint``,
  ``access_key``, ``secret_key``, ``host``, ``minio()``) for pure storage tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from oscar_elyra.client import OscarClient
from oscar_elyra.config import ClusterConfig
from oscar_elyra.local import LocalCluster
from oscar_elyra.local.weed import PORTS_FILE, SeaweedFS, remove_stale_sockets


def pytest_configure(config):
    """The whole run (xdist workers and every child process) uses a private temp folder."""
    if hasattr(config, "workerinput"):
        return  # a worker: it inherited TMPDIR from the controller
    tmp = tempfile.mkdtemp(prefix="oscar-elyra-tests-")
    config._oscar_tmp = tmp
    config._oscar_old_tmpdir = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = None  # recompute from TMPDIR


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if anything the suite started left files in the temp folder, or (with
    OSCAR_ELYRA_TESTS_NO_SKIP set, as in CI) if any test was skipped."""
    if os.environ.get("OSCAR_ELYRA_TESTS_NO_SKIP") and not hasattr(session.config, "workerinput"):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        skipped = reporter.stats.get("skipped", []) if reporter is not None else []
        if skipped:
            reporter.write_line(
                f"FAILED: {len(skipped)} test(s) skipped with OSCAR_ELYRA_TESTS_NO_SKIP set",
                red=True,
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    tmp = getattr(session.config, "_oscar_tmp", None)
    if tmp is None:
        return
    # what the package removes at interpreter exit (invoke's output folders) is not left
    # behind: remove it now, as a run without xdist checks before this process exits
    sync = sys.modules.get("oscar_elyra.invoke.sync")
    if sync is not None:
        sync._cleanup_tmp()
    left = sorted(p.name for p in Path(tmp).iterdir() if not p.name.startswith("pytest-of-"))
    left += _stale_weed_sockets(Path(tmp))
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        shown = ", ".join(left[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else "")
        if reporter is not None:
            reporter.write_line(
                f"FAILED: the suite left files in the temp folder: {shown}", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(tmp, ignore_errors=True)
    # back to the caller's temp folder (pytest may run again in this process, e.g. mutmut)
    old = session.config._oscar_old_tmpdir
    if old is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = old
    tempfile.tempdir = None


def _stale_weed_sockets(tmp: Path) -> list[str]:
    """The unix sockets (hard-coded in /tmp) of the suite's SeaweedFS servers that were killed
    and never cleaned up: a ``ports.json`` is left in such a server's data dir. Removed."""
    return [
        f"{sock} (of {record.parent})"
        for record in tmp.rglob(PORTS_FILE)
        for sock in remove_stale_sockets(record.parent)
    ]


def pytest_collection_modifyitems(items):
    """The tests marked ``slow`` come first: ``make test`` hands whole modules to its workers
    in this order (``--dist loadfile --no-loadscope-reorder``), so the long ones start at once
    instead of keeping one worker busy while the others are idle at the end.

    `make mutate`: mutmut 3.7 (the last release that accepts elyra's click pin) reads the
    ``_nodeid`` attribute that pytest 9 no longer sets; its own order (fastest first) stays."""
    if "mutmut" in sys.modules:
        for item in items:
            item._nodeid = item.nodeid
        return
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


_hits_read: dict[str, int] = {}  # bytes of $MUTMUT_SUBPROCESS_HITS already credited


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """`make mutate` stats run: the functions that child processes (the embedded cluster, the
    CLI) called during this test, appended to $MUTMUT_SUBPROCESS_HITS by the sitecustomize.py
    that benchmarks/mutate.py writes, are credited to this test like in-process calls."""
    hits = os.environ.get("MUTMUT_SUBPROCESS_HITS")
    if not hits or os.environ.get("MUTANT_UNDER_TEST") != "stats" or "mutmut" not in sys.modules:
        return
    try:
        with open(hits, "rb") as f:
            f.seek(_hits_read.get(hits, 0))
            data = f.read()
    except FileNotFoundError:
        return
    data = data[: data.rfind(b"\n") + 1]  # whole lines only: the rest is read next time
    _hits_read[hits] = _hits_read.get(hits, 0) + len(data)
    names = set(data.decode().split())
    sys.modules["mutmut"]._stats.update(names)


# property-based tests: bounded in `make test`, many more cases under `make fuzz`
# (HYPOTHESIS_PROFILE=fuzz); FUZZ_API_EXAMPLES sets the API requests per operation
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "default", max_examples=300, deadline=None, database=None, suppress_health_check=_SLOW
)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, database=None, suppress_health_check=_SLOW
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _no_oscar_settings(monkeypatch):
    """No test sees the developer's OSCAR_* settings (each test sets what it needs)."""
    for name in list(os.environ):
        if name.startswith("OSCAR_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("oscar-cluster"))
    c.start()
    try:
        c.deploy_examples()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def cluster_env(cluster) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSCAR_")}
    env.update(cluster.env())
    return env


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    server = SeaweedFS(
        tmp_path_factory.mktemp("s3") / "data",
        access_key="test" + secrets.token_hex(6),
        secret_key=secrets.token_urlsafe(24),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def oscar_schema():
    """``check(instance, ref)``: validate JSON against the OSCAR v4.1.2 Swagger definitions.

    ``ref`` is a definition name (``"types.Service"``) or a schema dict using
    ``#/definitions/...`` refs; undeclared properties are rejected.
    """
    from oscar_spec import validator

    cache: dict = {}

    def check(instance, ref):
        key = ref if isinstance(ref, str) else repr(ref)
        if key not in cache:
            cache[key] = validator(ref)
        cache[key].validate(instance)
        return instance

    return check


@pytest.fixture(scope="module")
def client(cluster):
    """A fresh OscarClient per test module for the session's cluster (Basic auth, loopback http)."""
    cfg = ClusterConfig(
        cluster_id="local",
        endpoint=cluster.endpoint,
        user=cluster.user,
        password=cluster.password,
        ssl_verify=False,
        source="test",
    )
    with OscarClient(cfg) as c:
        yield c


@pytest.fixture
def self_signed(tmp_path) -> tuple[Path, Path, Path]:
    """A key and certificate for 127.0.0.1 and the certificate of the private CA that
    issued it (PEM files, made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: apt-get install openssl")
    key, cert, ca, ca_key = (tmp_path / n for n in ("key.pem", "cert.pem", "ca.pem", "ca.key"))
    ext = tmp_path / "cert.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for cmd in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA"]
        + ["-keyout", str(ca_key), "-out", str(ca)],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(tmp_path / "cert.csr")],
        ["x509", "-req", "-in", str(tmp_path / "cert.csr"), "-CA", str(ca), "-CAkey", str(ca_key)]
        + ["-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(cert)],
    ):
        subprocess.run(["openssl", *cmd], check=True, capture_output=True)
    return key, cert, ca
