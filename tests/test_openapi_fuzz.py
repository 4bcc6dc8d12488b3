"""Every operation fuzzed from the service's own OpenAPI schema against a real server.

Schemathesis generates requests from the published schema (a bounded number per operation,
derandomized: the same cases every run) and runs all its checks on each answer: no 5xx,
status codes, content types, headers and bodies as the schema documents them.

A schema-valid request may still be refused for what a schema cannot express: a collection
or document that does not exist (404), a name that is taken (409), a model name not
registered in this process, a chunk budget beyond the model's window, too few calibration
samples (422), or a request over the key's rate (429: the fuzzer sends ingests faster than
the default 20 a second). Those are the answers that count as accepting valid data, besides
2xx.

The server is secured (an admin key exists) and every case carries that key, so that the
authentication checks see a request without a key refused with 401.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from retrieval.config import Settings
from tests.conftest import LIVE_TIMEOUT_S, live_post

EXAMPLES_PER_OPERATION = 25

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2XX", "404", "409", "422", "429"]},
        }
    }
)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)


@pytest.fixture
def admin_headers(live_url: str) -> dict[str, str]:
    """The first key of a service that was open: from now on it needs one."""
    created = live_post(f"{live_url}/keys", json={"name": "fuzz", "scopes": ["admin"]})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_outside_its_schema(
    case: schemathesis.Case, live_url: str, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=live_url, headers=admin_headers, timeout=LIVE_TIMEOUT_S)
