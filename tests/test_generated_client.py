"""A partner's view: a Python client generated from the committed openapi/openapi.json with
openapi-python-client, used against a live server to report, add identifiers and evidence, and read
the case back as an analyst."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.apps import PROJECT_ROOT, running_service
from tests.support.synthetic import png


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory):
    """The client package, generated afresh from the committed document and importable."""
    out = tmp_path_factory.mktemp("generated")
    binaries = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(binaries / "openapi-python-client"),
            "generate",
            "--path",
            str(PROJECT_ROOT / "openapi" / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(out / "intake_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every operation and schema was understood
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("intake_client")
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name.split(".")[0] == "intake_client"]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("client-server")
    with running_service(f"sqlite:///{data / 'intake.db'}", data) as running:
        yield running


def test_a_generated_client_reports_adds_and_reads_back(generated_client, live):
    from intake_client import AuthenticatedClient
    from intake_client.api.cases import get_case, post_case
    from intake_client.api.evidence import list_evidence, post_evidence
    from intake_client.api.identifiers import post_identifiers
    from intake_client.models import CaseCreated, CaseSubmission, IdentifierInput, PostEvidenceBody, Problem
    from intake_client.types import File

    base, keys = live
    partner = AuthenticatedClient(base_url=base, token=keys.submitter)
    report = CaseSubmission.from_dict(
        {
            "reporter": {"relationship": "self"},
            "victim": {"age_band": "18_24"},
            "account": "Synthetic account sent by a generated client.",
            "identifiers": [{"type": "mtcn", "value": "123-456-7890"}],
        }
    )
    created = post_case.sync(client=partner, body=report, idempotency_key="generated-client-1")
    assert isinstance(created, CaseCreated), created
    again = post_case.sync(client=partner, body=report, idempotency_key="generated-client-1")
    assert again.reference == created.reference  # a retry is safe

    reporter = AuthenticatedClient(base_url=base, token=created.reporter_token)
    added = post_identifiers.sync(
        created.reference,
        client=reporter,
        body=[IdentifierInput.from_dict({"type": "skype_id", "value": "live:.cid.1a2b3c4d5e6f7a8b"})],
    )
    assert [item.type_ for item in added.identifiers] == ["skype_id"]
    image = File(payload=png(), file_name="screenshot.png", mime_type="image/png")
    uploaded = post_evidence.sync(created.reference, client=reporter, body=PostEvidenceBody(file=[image]))
    assert uploaded.evidence[0].content_type == "image/png"

    analyst = AuthenticatedClient(base_url=base, token=keys.analyst)
    case = get_case.sync(created.reference, client=analyst, x_access_reason="generated client test")
    assert case.reference == created.reference
    assert sorted(item.type_ for item in case.identifiers) == ["mtcn", "skype_id"]
    listed = list_evidence.sync(created.reference, client=analyst)
    assert [item.sha256 for item in listed.evidence] == [uploaded.evidence[0].sha256]

    mistyped = CaseSubmission.from_dict(
        {"reporter": {"relationship": "self", "email": "not-an-email"}, "account": "Synthetic account."}
    )
    refused = post_case.sync(client=partner, body=mistyped)
    assert isinstance(refused, Problem)  # errors arrive typed, naming the field
    assert refused.status == 422 and refused.errors[0].field == "reporter.email"
