"""The committed OpenAPI document is exactly what the app serves."""

from __future__ import annotations

import json

from service.openapi import openapi_document
from tests.support.apps import PROJECT_ROOT


def test_committed_openapi_matches_the_served_document(client):
    committed = json.loads((PROJECT_ROOT / "openapi" / "openapi.json").read_text())
    assert committed == client.get("/openapi.json").json(), "run `make openapi` and commit the result"
    assert committed == json.loads(openapi_document())


def test_every_operation_has_a_summary_tags_and_documented_errors(client):
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("tags"), (method, path)
            if path.startswith("/v1/"):
                problems = [status for status in operation["responses"] if status.startswith(("4", "5"))]
                assert problems, (method, path)
