"""Hundreds of bad CLI and runner invocations, generated: no traceback, ever.

Each invocation of the CLI (in process, against the session's embedded cluster) must end
with exit 2 (bad input) or 1 (a remote failure), one ``Error:`` line and no traceback,
and leave the working directory as it was. The runner's and loaders' Python entry points
must raise only the project's errors. The count of invocations and of tracebacks is
printed (``-s``) for the report.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from oscar_elyra.cli import main
from oscar_elyra.errors import OscarError
from oscar_elyra.fdl import load_fdl, validate_service
from oscar_elyra.pipeline import run_pipeline
from oscar_elyra.pipeline.builder import node, pipeline, write_pipeline
from oscar_elyra.storage import parse_uri

TIMEOUTS = ["0", "-1", "nan", "inf", "-inf", "abc", "", "1e309", "-0", "0x10"]
ENDPOINTS = [
    "http://[::1",
    "http://h:99999",
    "ftp://x.org",
    "http://",
    "http://a b",
    "http://x\x01y",
    "[::1]",
    "http://[::1]:x",
    "://",
    "https://[",
]
CREDENTIALS = [
    {"OSCAR_TOKEN": "abc\ndef"},
    {"OSCAR_TOKEN": "abc\rdef"},
    {"OSCAR_PASSWORD": "pa\nss", "OSCAR_USER": "oscar"},
    {"OSCAR_USER": "a\x1bb", "OSCAR_PASSWORD": "x"},
    {"OSCAR_TOKEN": "\x7f"},
]
URIS = ["s3://", "s3://AB/x", "s3://a..b/x", "http://x/y", "s3://ab.-cd/k", "s3://192.168.1.1/k"]
SVC = "functions:\n  oscar:\n  - c: {name: s, image: i, script: s.sh"
FDLS = {
    "nested.yaml": "functions:\n  oscar:\n  - c:\n      x: " + "[" * 5000 + "]" * 5000 + "\n",
    "bomb.yaml": "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8)
    )
    + "functions: {oscar: []}\n",
    "providers.yaml": "storage_providers: [1]\n" + SVC + "}\n",
    "memory.yaml": SVC + ", memory: [1]}\n",
    "functions.yaml": "functions: 5\n",
    "empty.yaml": "",
    "binary.yaml": "\udcff",
    "env.yaml": SVC + ", environment: {variables: {'A=B': 1}}}\n",
    "bucket.yaml": SVC + ", input: [{path: xn--abc/in}]}\n",
    "deep-svc.yaml": SVC + ", x: " + "[" * 80 + "]" * 80 + "}\n",
    "recursive.yaml": "a: &a [*a]\n",
    "noscript.yaml": "functions:\n  oscar:\n  - c: {name: s, image: i, script: missing.sh}\n",
    "list.yaml": "- 1\n- 2\n",
}
RUN_RECORDS = [
    "[]",
    '{"nodes": 5}',
    '{"name": "p", "run_name": "r", "nodes": [1]}',
    '{"name": "p", "run_name": "r", "nodes": [{"id": 5}]}',
    '{"name": "p", "run_name": "r", "nodes": [{"id": "a", "status": "weird"}]}',
    '{"name": "p", "run_name": "r", "attempts": "x", "nodes": []}',
    "null",
    "not json",
    "[" * 100000,
    '{"name": "p", "nodes": []}',
]
PIPELINES = {
    "inputs.pipeline": lambda d: d["pipelines"][0]["nodes"][0].update(inputs="abc"),
    "runtime.pipeline": lambda d: d["pipelines"][0]["app_data"].update(runtime_type="NOPE"),
    "nan.pipeline": lambda d: d["pipelines"][0]["app_data"].update(version="NaN"),
    "deep.pipeline": lambda d: d["pipelines"][0].update(x=json.loads("[" * 200 + "]" * 200)),
    "props.pipeline": lambda d: d["pipelines"][0]["app_data"].update(properties=[1]),
    "nodes.pipeline": lambda d: d["pipelines"][0].update(nodes="x"),
}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    (d / "afile").write_text("a file, not a directory\n")
    (d / "in").mkdir()
    (d / "in" / "x.txt").write_text("x")
    (d / "s.sh").write_text("echo\n")
    for name, text in FDLS.items():
        (d / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    (d / "n.py").write_text("print(1)\n")
    good = pipeline([node("a", "n.py")])
    write_pipeline(d / "p.pipeline", good)
    for name, mutate in PIPELINES.items():
        doc = json.loads((d / "p.pipeline").read_text())
        mutate(doc)
        (d / name).write_text(json.dumps(doc))
    for i, text in enumerate(RUN_RECORDS):
        (d / f"rd{i}").mkdir()
        (d / f"rd{i}" / "run.json").write_text(text)
    return d


def _invocations() -> list[tuple[list[str], dict[str, str]]]:
    """(args, extra environment) of every bad invocation."""
    out: list[tuple[list[str], dict[str, str]]] = []
    for t in TIMEOUTS:
        out += [
            (["run", "cowsay", "-i", "{}", "--timeout", t], {}),
            (["job", "cowsay", "in/x.txt", "--wait", "--timeout", t], {}),
            (["map", "cowsay", "in", "-o", "outdir", "--timeout", t], {}),
            (["deepaas", "predict", "cowsay", "--timeout", t], {}),
            (["deepaas", "map", "cowsay", "in", "-o", "outdir", "--timeout", t], {}),
        ]
    for target in ("afile/x", "afile/x/y", "afile/x/y/z.txt"):
        out += [
            (["run", "cowsay", "-i", "{}", "-o", target], {}),
            (["job", "cowsay", "in/x.txt", "-o", target], {}),
            (["map", "cowsay", "in", "-o", target], {}),
            (["map", "cowsay", "in", "-o", "outdir", "--record", target], {}),
            (["get", "s3://cowsay/x.txt", target], {}),
            (["run", "p.pipeline", "--run-dir", target], {}),
            (["deepaas", "map", "cowsay", "in", "-o", target], {}),
        ]
    commands = [["services", "ls"], ["services", "get", "cowsay"], ["ls"], ["cluster", "info"]]
    for endpoint, cmd in itertools.product(ENDPOINTS, commands):
        out.append((cmd, {"OSCAR_ENDPOINT": endpoint}))
        out.append((["--endpoint", endpoint, *cmd], {}))
    for creds, cmd in itertools.product(CREDENTIALS, commands):
        out.append((cmd, {"OSCAR_ENDPOINT": "http://127.0.0.1:9", **creds}))
    for uri in URIS:
        out += [(["ls", uri], {}), (["get", uri, "outfile"], {}), (["put", "afile", uri], {})]
    for name in FDLS:
        out.append((["services", "apply", name], {}))
    for i in range(len(RUN_RECORDS)):
        out.append((["run", "p.pipeline", "--resume", f"rd{i}"], {}))
    for name in PIPELINES:
        out += [(["validate", name], {}), (["run", name], {}), (["describe", name], {})]
    out += [
        (["run", "p.pipeline", "--workers", "0"], {}),
        (["run", "p.pipeline", "--only", "nope"], {}),
        (["run", "p.pipeline", "--param", "=x"], {}),
        (["run", "nope.pipeline"], {}),
        (["services", "apply", "nope.yaml"], {}),
        (["services", "get", "no-such-service"], {}),
        (["run", "no-such-service", "-i", "x"], {}),
        (["get", "s3://cowsay/no/such/key", "outfile"], {}),
        (["deepaas", "map", "cowsay", "in", "-o", "outdir", "-c", "0"], {}),
        (["deepaas", "predict", "cowsay", "-a", "novalue"], {}),
    ]
    for cfg in ("oscar: [\n", "oscar: 5\n", "a: &a [*a]\n", "[" * 3000):
        out.append((["--cluster", "x", "services", "ls"], {"OSCAR_CLI_CONFIG": cfg}))
    return out


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mode)
        for p in d.rglob("*")
        if not p.name.startswith(".")
    }


def test_bad_cli_invocations_never_trace_back(cluster_env, work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    invocations = _invocations()
    assert len(invocations) >= 200
    runner = CliRunner()
    before = _snapshot(work)
    tracebacks, problems = 0, []
    for args, extra in invocations:
        env = {k: v for k, v in cluster_env.items() if k.startswith("OSCAR_")}
        env.update(extra)
        if "OSCAR_CLI_CONFIG" in extra:  # the value is the file's content
            cfg = tmp_path / "config.yaml"
            cfg.write_text(extra["OSCAR_CLI_CONFIG"])
            env["OSCAR_CLI_CONFIG"] = str(cfg)
        if "OSCAR_ENDPOINT" in extra or "--endpoint" in args:
            env.pop("OSCAR_USER", None)
            env.pop("OSCAR_PASSWORD", None)
            env.update({k: v for k, v in extra.items() if k.startswith("OSCAR_")})
        result = runner.invoke(main, args, env=env)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        text = result.output
        if crashed or "Traceback" in text:
            tracebacks += 1
            problems.append(f"{args!r} {extra!r}: {result.exception!r}")
        elif result.exit_code not in (1, 2) or "Error" not in text:
            problems.append(f"{args!r} {extra!r}: exit {result.exit_code}: {text[-300:]!r}")
    after = _snapshot(work)
    print(f"\nbad CLI invocations: {len(invocations)}, tracebacks: {tracebacks}")
    assert tracebacks == 0 and not problems, "\n".join(problems[:20])
    assert after == before, set(after.items()) ^ set(before.items())  # nothing written


def test_bad_runner_and_loader_calls_raise_project_errors(work):
    calls = []
    for i in range(len(RUN_RECORDS)):
        calls.append(lambda i=i: run_pipeline(work / "p.pipeline", resume=work / f"rd{i}"))
    for name in PIPELINES:
        calls.append(lambda name=name: run_pipeline(work / name, run_dir=work / "never"))
    for name in FDLS:
        calls.append(lambda name=name: load_fdl(work / name))
    for uri in [*URIS, "", "s3://b/\x00", 5]:
        calls.append(lambda uri=uri: parse_uri(uri))
    bad_services = [
        5,
        [],
        {"name": "x", "image": "i", "script": "s", "memory": [1]},
        {"name": "x", "image": "i", "script": "s", "storage_providers": [1]},
        {"name": "x", "image": "i", "script": "s", "environment": {"variables": {"A=B": 1}}},
        {"name": "x", "image": "i", "script": "s", "x": json.loads("[" * 100 + "]" * 100)},
        {"name": "x", "image": "i", "script": "s", "input": [{"path": "ab.-cd/in"}]},
    ]
    for svc in bad_services:
        calls.append(lambda svc=svc: validate_service(svc))
    for call in calls:
        with pytest.raises(OscarError):
            call()
    assert not (work / "never").exists()
    print(f"\nbad runner/loader calls: {len(calls)}, non-project errors: 0")
    assert os.path.isfile(work / "afile")
