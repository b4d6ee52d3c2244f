"""Schemathesis against the borrower API on 127.0.0.1, from the committed OpenAPI document.

Generated requests for every operation (valid and invalid paths, queries and bodies); none may answer a 5xx, and
every response must match the schema the document declares for it. `make test` sends 25 per operation (300 in all
over 12 operations, sized for the suite's time budget); `make fuzz` sends 200 per operation (2,400).
"""

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.flow.conftest import unique

pytestmark = pytest.mark.flow
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES_PER_OPERATION", "25"))


def test_generated_requests_find_no_server_error_and_no_schema_break(cloud, platform):
    borrower = platform.borrower(app_user=True)
    platform.status(unique("L"), borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    headers = {"Authorization": f"Bearer {cloud.api.issue_token(borrower['borrower_id'])}"}
    schema = schemathesis.openapi.from_path(DOCUMENT)
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case):
            nonlocal sent
            response = case.call(base_url=cloud.api.url, headers=headers, timeout=30)
            sent += 1
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        exercise()
    cloud.wait_idle()
    assert sent >= 5 * PER_OPERATION, f"only {sent} generated requests"
