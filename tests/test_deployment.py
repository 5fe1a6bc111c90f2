"""Deployment defaults: a signing secret shared by every process, proxies named by the operator, and a
public address that no Host header can change."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import upgrade_database
from service.configuration import settings_table
from service.deployment import DeploymentRefused
from service.settings import Settings
from tests.support.apps import PROJECT_ROOT
from tests.support.cases import MINIMAL_CASE
from tests.support.database import make_keys
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, NO_FILE, form_token

# A limit filled here must stay filled until the test expects it refused.
pytestmark = pytest.mark.usefixtures("one_rate_window")


GOOD_SECRET = "f3a9c1d27be84e0a9d5c6b71e2f08a4c"
PROXY = ("10.0.0.2", 50000)
HELLO_SHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "not set"),
        ("", "not set"),
        ("9f8e7d6c5b4a", "12 characters long"),
        ("change-me-four-change-me-four-change-me-four", "placeholder"),
        ("a" * 40, "placeholder"),
    ],
)
def test_the_service_refuses_to_start_without_a_sound_signing_secret(tmp_path, secret, problem):
    with pytest.raises(DeploymentRefused, match=f"INTAKE_LINK_SECRET.*{problem}"):
        create_app(Settings(data_dir=tmp_path, link_secret=secret))


def test_development_mode_makes_one_secret_and_keeps_it_for_every_worker(tmp_path):
    first = create_app(Settings(data_dir=tmp_path, link_secret=None, development=True))
    second = create_app(Settings(data_dir=tmp_path, link_secret=None, development=True))
    kept = tmp_path / "link-secret"
    assert first.state.link_secret == second.state.link_secret == kept.read_text().encode()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    for app in (first, second):
        app.state.engine.dispose()


def test_a_link_made_by_one_process_is_honoured_by_another(tmp_path):
    # Two apps stand for two workers: an upload token signed by one is accepted by the other.
    settings = Settings(data_dir=tmp_path, link_secret=GOOD_SECRET, rate_case_creation_per_key="off")
    upgrade_database(settings.resolved_database_url)
    keys = make_keys(settings.resolved_database_url)
    one, other = create_app(settings), create_app(settings)
    with TestClient(one) as first, TestClient(other) as second:
        case = first.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        ticket = first.post(
            f"/v1/cases/{case['reference']}/evidence/uploads",
            json={"filename": "note.txt", "size": 5, "sha256": HELLO_SHA256},
            headers=bearer(case["reporter_token"]),
        )
        assert ticket.status_code == 201, ticket.text
        put = second.put(ticket.json()["url"], content=b"hello", headers=ticket.json()["headers"])
        assert put.status_code == 204, put.text
    for app in (one, other):
        app.state.engine.dispose()


def test_intake_serve_says_in_one_line_why_it_will_not_start(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    environment |= {"INTAKE_DATA_DIR": str(tmp_path), "INTAKE_LINK_SECRET": "change-me-four"}
    intake = Path(sys.executable).parent / "intake"
    result = subprocess.run(
        [str(intake), "serve", "--port", "1"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("intake: refusing to start: INTAKE_LINK_SECRET")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "intake.db").exists()  # nothing touched before the refusal


def form_behind_proxy(tmp_path, **overrides):
    settings = Settings(
        data_dir=tmp_path, rate_case_creation_per_address="2/minute", trusted_proxies="10.0.0.0/8", **overrides
    )
    upgrade_database(settings.resolved_database_url)
    return create_app(settings)


def post_form(client: TestClient, headers: dict[str, str]):
    """As a browser without Sec-Fetch-Site posts it: the Origin is what tells our page from another site's."""
    page = client.get("/report", headers=headers)
    return page, client.post(
        "/report",
        data={"form_token": form_token(page.text), **MINIMAL},
        files=NO_FILE,
        headers=headers,
        follow_redirects=False,
    )


def test_behind_a_tls_proxy_a_report_from_the_form_is_accepted(tmp_path):
    # The browser's Origin is https://..., which the service sees over plain http from its proxy.
    app = form_behind_proxy(tmp_path)
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "reports.force.example",
        "X-Forwarded-For": "198.51.100.20",
        "Origin": "https://reports.force.example",
    }
    with TestClient(app, client=PROXY) as client:
        _, sent = post_form(client, forwarded)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].startswith("/report/sent/")
    app.state.engine.dispose()


def test_victims_behind_a_proxy_are_told_apart_and_strangers_cannot_pose_as_a_proxy(tmp_path):
    app = form_behind_proxy(tmp_path)
    statuses = []
    with TestClient(app, client=PROXY) as via_proxy:
        for visitor in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            statuses.append(post_form(via_proxy, {"X-Forwarded-For": visitor})[1].status_code)
    with TestClient(app, client=("203.0.113.50", 50000)) as stranger:
        # Not a trusted proxy: its X-Forwarded-For is ignored, so inventing addresses does not dodge the limit.
        for invented in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            statuses.append(post_form(stranger, {"X-Forwarded-For": invented})[1].status_code)
    app.state.engine.dispose()
    assert statuses == [303, 303, 303, 303, 303, 429]


def test_a_configured_public_url_outranks_any_host_header(tmp_path):
    settings = Settings(
        data_dir=tmp_path, link_secret=GOOD_SECRET, public_url="https://reports.force.example", **_UNLIMITED
    )
    upgrade_database(settings.resolved_database_url)
    keys = make_keys(settings.resolved_database_url)
    app = create_app(settings)
    with TestClient(app) as client:
        case = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        ticket = client.post(
            f"/v1/cases/{case['reference']}/evidence/uploads",
            json={"filename": "note.txt", "size": 5, "sha256": HELLO_SHA256},
            headers={**bearer(case["reporter_token"]), "Host": "attacker.example"},
        )
        # A form post whose Origin is the made-up host is another site's post.
        _, forged = post_form(client, {"Host": "attacker.example", "Origin": "http://attacker.example"})
    app.state.engine.dispose()
    assert ticket.json()["url"].startswith("https://reports.force.example/")
    assert forged.status_code == 403


@pytest.mark.parametrize("value", ["reports.force.example", "https://reports.force.example/path", "ftp://x"])
def test_a_public_url_that_is_not_a_scheme_and_host_is_refused(tmp_path, value):
    with pytest.raises(DeploymentRefused, match="INTAKE_PUBLIC_URL"):
        create_app(Settings(data_dir=tmp_path, public_url=value))


_UNLIMITED = {"rate_case_creation_per_key": "off", "rate_case_creation_per_address": "off"}


def test_compose_requires_every_secret_and_names_its_proxies():
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert ":-change" not in compose and "change-me" not in compose
    api = yaml.safe_load(compose)["services"]["api"]["environment"]
    for name in ("INTAKE_LINK_SECRET", "INTAKE_PUBLIC_URL"):
        assert re.fullmatch(r"\$\{" + name + r":\?.+\}", api[name]), api[name]
    assert api["INTAKE_TRUSTED_PROXIES"]
    assert api["INTAKE_RATE_LIMIT_STORAGE_URL"].startswith("redis://")
    maintenance = yaml.safe_load(compose)["services"]["maintenance"]
    assert maintenance["command"][:3] == ["intake", "maintenance", "--every"]
    assert maintenance["environment"] == api


def test_bad_settings_are_named_one_line_each_with_an_example(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    environment |= {
        "INTAKE_DATA_DIR": str(tmp_path),
        "INTAKE_RETENTION_PERIOD": "6years",
        "INTAKE_RATE_GUIDANCE_PER_ADDRESS": "lots",
    }
    intake = Path(sys.executable).parent / "intake"
    result = subprocess.run([str(intake), "keys", "list"], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-2].startswith("INTAKE_RETENTION_PERIOD='6years': ") and "For example: " in lines[-2]
    assert lines[-1].startswith("INTAKE_RATE_GUIDANCE_PER_ADDRESS='lots': a rate looks like 30/minute")
    assert "Traceback" not in result.stderr and "retention_period" not in result.stderr


def test_the_settings_table_in_docs_is_the_one_the_code_makes():
    committed = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    assert committed == settings_table(), "a setting changed: run `make openapi`, which writes docs/settings.md"
