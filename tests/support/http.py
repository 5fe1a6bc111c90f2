"""What a caller sends and what a problem+json answer must hold."""

from __future__ import annotations

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response, status: int) -> dict:
    """The response is a problem+json document of `status`; gives back its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status
    return body
