"""Schemathesis against the embedded cluster: every implemented endpoint of the OSCAR v4.1.2
spec (tests/reference/oscar-api-v4.1.2.yaml) gets generated requests, valid and invalid
(bodies, paths, queries, headers); no answer is a 5xx and every answer matches the spec.

A cluster of its own (the requests create and delete services at random). ``make test``
sends a bounded number of requests per operation; ``make fuzz`` (``FUZZ_API_EXAMPLES``,
default 1,300 there) sends over 20,000 in all. The totals are printed (``-s``).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from oscar_spec import SPEC_PATH
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from oscar_elyra.local import LocalCluster

#: the operations the embedded cluster implements (the others answer 404 by design)
IMPLEMENTED = {
    ("GET", "/health"),
    ("GET", "/system/info"),
    ("GET", "/system/config"),
    ("GET", "/system/status"),
    ("GET", "/system/services"),
    ("POST", "/system/services"),
    ("PUT", "/system/services"),
    ("GET", "/system/services/{serviceName}"),
    ("DELETE", "/system/services/{serviceName}"),
    ("GET", "/system/logs/{serviceName}"),
    ("DELETE", "/system/logs/{serviceName}"),
    ("GET", "/system/logs/{serviceName}/{jobName}"),
    ("DELETE", "/system/logs/{serviceName}/{jobName}"),
    ("POST", "/run/{serviceName}"),
    ("POST", "/job/{serviceName}"),
    ("GET", "/system/services/{serviceName}/deployment"),
    ("GET", "/system/services/{serviceName}/deployment/logs"),
    ("GET", "/system/buckets"),
    ("POST", "/system/buckets"),
    ("PUT", "/system/buckets"),
    ("GET", "/system/buckets/{bucket}"),
    ("DELETE", "/system/buckets/{bucket}"),
    ("POST", "/system/buckets/{bucket}/presign"),
}
EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "15"))


def _operations():
    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in IMPLEMENTED:
            ops.append(op)
    return ops


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("fuzz-cluster")) as cluster:
        cluster.deploy_examples()
        yield cluster


def test_every_implemented_operation_is_fuzzed():
    assert {(op.method.upper(), op.path) for op in OPERATIONS} == IMPLEMENTED


@pytest.fixture(scope="module")
def fuzz_session(fuzz_cluster):
    """(endpoint, Basic-auth session, cowsay's token)."""
    with requests.Session() as session:
        session.auth = (fuzz_cluster.user, fuzz_cluster.password)
        url = f"{fuzz_cluster.endpoint}/system/services/cowsay"
        token = session.get(url, timeout=30).json()["token"]
        yield fuzz_cluster.endpoint, session, token


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_server_error_and_answers_match_the_spec(fuzz_session, op):
    endpoint, session, token = fuzz_session
    statuses: Counter = Counter()
    failures: list[str] = []
    _fuzz(op, endpoint, session, token, statuses, failures)
    total = sum(statuses.values())
    print(
        f"\n{op.method.upper()} {op.path}: API requests: {total}, "
        f"by class: {dict(sorted(statuses.items()))}, 5xx: {statuses.get(5, 0)}, "
        f"spec mismatches: {len(failures)}"
    )
    assert statuses.get(5, 0) == 0 and not failures, "\n".join(failures[:10])
    assert total >= 1  # (an operation without parameters has one distinct request)


def _fuzz(op, endpoint: str, session, token: str, statuses: Counter, failures: list) -> None:
    """Send ``EXAMPLES`` generated requests (valid and invalid) to one operation."""
    cases = st.one_of(
        op.as_strategy(generation_mode=GenerationMode.POSITIVE),
        op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    invoke = op.path.startswith(("/run", "/job"))
    headers = {"Authorization": f"Bearer {token}"} if invoke else {}
    where = f"{op.method.upper()} {op.path}"

    @settings(max_examples=EXAMPLES)
    @given(case=cases)
    def one(case):
        response = case.call(base_url=endpoint, session=session, headers=headers, timeout=60)
        statuses[response.status_code // 100] += 1
        try:
            # a 204 has no body by definition (the spec still names a schema for some)
            checks = [not_a_server_error]
            if response.status_code != 204:
                checks.append(response_schema_conformance)
            case.validate_response(response, checks=checks)
        except Exception as exc:  # noqa: BLE001 - collected, reported by the caller
            failures.append(f"{where}: {str(exc)[:300]}")

    one()
