"""What the schemathesis runs check of every answer (tests/integration/test_http_schemathesis.py,
the stateless run; test_http_stateful.py, the run that follows the document's links): no server
error, and no status, content type or body the served document does not declare."""

from __future__ import annotations

from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
