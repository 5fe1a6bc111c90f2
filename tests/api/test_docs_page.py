"""/docs serves Swagger UI from the service itself: no third-party code, a strict policy, offline."""

from __future__ import annotations

import re

import pytest

from tests.support.http import assert_problem


def test_the_reference_page_loads_only_this_services_own_assets_under_a_strict_policy(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "http" not in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources == ["/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/docs.js"]
    assert "<script>" not in page.text  # no inline script for the policy to have to allow


@pytest.mark.parametrize(
    ("name", "media_type", "marker"),
    [
        ("swagger-ui.css", "text/css", b".swagger-ui"),
        ("swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("docs.js", "text/javascript", b'url: "/openapi.json"'),
    ],
)
def test_each_asset_is_served_with_its_type(client, name, media_type, marker):
    asset = client.get(f"/docs/assets/{name}")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith(media_type)
    assert marker in asset.content


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js.map", "redoc.standalone.js", "..%2Fdocs.py", "report.css"])
def test_nothing_else_in_the_package_or_static_folder_is_served(client, name):
    assert_problem(client.get(f"/docs/assets/{name}"), 404)


def test_redoc_from_a_cdn_is_gone(client):
    assert_problem(client.get("/redoc"), 404)
