"""The OpenAPI document checked against the live edge by schemathesis.

Requests generated from the document (valid and invalid ones) go through Envoy to the
service; every answer must have a documented status, content type and body, and none is
a 5xx. Edits and variations are left out: their multipart bodies are covered by
tests/e2e/test_edits.py, and generated multipart images are nearly all refused as
non-images. `make fuzz` runs more examples (OPENAPI_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.render import OPENAPI
from stack.local import LocalStack

EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "8"))

schema = schemathesis.openapi.from_path(str(OPENAPI)).exclude(
    path_regex=r"^/v1/images/(edits|variations)$"
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_edge_answers_as_documented(case: schemathesis.Case[Any], stack: LocalStack) -> None:
    case.call_and_validate(
        base_url=stack.envoy.url,
        headers={"Authorization": "Bearer test-key"},
        timeout=30,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
