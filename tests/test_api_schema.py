"""Schemathesis against the OpenAPI schema served by a running app: no 5xx, no schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.e2e_support import chainlit_server

pytestmark = pytest.mark.chainlit


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
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, app_url: str) -> None:
    # The SSE body is not JSON; its status codes and headers are still checked.
    response = case.call(base_url=f"{app_url}/api")
    assert response.status_code < 500, response.text
    if case.path != "/chat/stream" and case.path != "/metrics":
        case.validate_response(response)
