"""A force website's own page, calling the API from the browser with a publishable key: the fetch
example of docs/integrating.md, run in Chromium, from the key's origin and from another one."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from devsupport.postgres import free_port
from tests.support.apps import running_service
from tests.support.cases import MINIMAL_CASE
from tests.support.database import create_key

pytestmark = [pytest.mark.browser]

# As in docs/integrating.md: multipart FormData with a file, a publishable key, an Idempotency-Key.
SEND_REPORT = """
async ([api, key, account]) => {
  const form = new FormData();
  form.append("reporter.relationship", "self");
  form.append("account", account);
  form.append("evidence", new Blob(["synthetic chat log\\n"], {type: "text/plain"}), "chat.txt");
  try {
    const response = await fetch(api + "/v1/cases", {
      method: "POST",
      headers: {"Authorization": "Bearer " + key, "Idempotency-Key": crypto.randomUUID()},
      body: form,
    });
    return {status: response.status, body: await response.json(), location: response.headers.get("Location")};
  } catch (error) {
    return {status: 0, error: String(error)};
  }
}
"""


def website(directory) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A stand-in for a force's web server: any page will do, it is the origin that counts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text("<!DOCTYPE html><title>Example force</title><h1>Report</h1>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_force_page_reports_through_cors_and_another_site_is_blocked(browser, tmp_path):
    own_site, own_origin = website(tmp_path / "own")
    other_site, other_origin = website(tmp_path / "other")
    database_url = f"sqlite:///{tmp_path / 'intake.db'}"
    try:
        with running_service(database_url, tmp_path, INTAKE_CORS_CACHE_SECONDS="0") as (api, _):
            key = create_key(database_url, "submitter", "example force website", origins=[own_origin])
            page = browser.new_page()

            page.goto(own_origin + "/index.html")
            sent = page.evaluate(SEND_REPORT, [api, key, MINIMAL_CASE["account"]])
            assert sent["status"] == 201, sent
            assert sent["body"]["reference"] and sent["location"].endswith(sent["body"]["reference"])
            assert sent["body"]["evidence"][0]["content_type"] == "text/plain"

            page.goto(other_origin + "/index.html")
            blocked = page.evaluate(SEND_REPORT, [api, key, MINIMAL_CASE["account"]])
            assert blocked["status"] == 0 and "Failed to fetch" in blocked["error"]  # the browser said no
            page.close()
    finally:
        own_site.shutdown()
        other_site.shutdown()
