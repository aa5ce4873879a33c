"""Schemathesis against the OpenAPI schema served by a running app (offline mode).

Every operation gets generated requests, valid and invalid; all of schemathesis's default checks
run on each response: no 5xx, status codes, content types and headers as documented, bodies
conforming to the documented schema, valid data accepted and invalid data rejected. The SSE
endpoint's body is a stream of events, not JSON: everything but its body schema is checked.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e_support import chainlit_server

pytestmark = pytest.mark.chainlit
# Examples per operation (plus schemathesis's own coverage cases): 100 -> ~450 requests, ~8 s.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "100"))
CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "100000"}) as url:
        yield url


@pytest.fixture(scope="module")
def served_schema(app_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{app_url}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, app_url: str) -> None:
    response = case.call(base_url=f"{app_url}/api")
    CALLS[f"{case.method} {case.path}"] += 1
    assert response.status_code < 500, response.text
    excluded = [response_schema_conformance] if case.path == "/chat/stream" else []
    case.validate_response(response, excluded_checks=excluded)


def test_schemathesis_exercised_every_operation() -> None:
    if not CALLS:
        pytest.skip("run together with test_api_conforms_to_its_schema (it counts its calls)")
    operations = {"GET /health", "POST /chat", "POST /chat/stream", "GET /faq/{entry_id}"}
    assert operations <= set(CALLS), CALLS
    assert all(CALLS[op] >= 20 for op in operations), CALLS
    print(f"schemathesis: {sum(CALLS.values())} requests: {dict(CALLS)}")
