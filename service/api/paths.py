"""Which documented path an address falls under, and what methods it takes, read from the OpenAPI document.

FastAPI keeps included routers nested, so Starlette's 405 names only the first route that matched;
the document knows every operation at a path.
"""

from __future__ import annotations

import re

from fastapi import FastAPI


def documented_path(app: FastAPI, path: str) -> tuple[str, frozenset[str]] | None:
    """The path template an address matches, and its methods (HEAD wherever GET is)."""
    for pattern, template, methods in _patterns(app):
        if pattern.fullmatch(path):
            return template, methods
    return None


def _patterns(app: FastAPI) -> tuple[tuple[re.Pattern[str], str, frozenset[str]], ...]:
    if getattr(app.state, "path_patterns", None) is None:
        app.state.path_patterns = _compile(app)
    return app.state.path_patterns


def _compile(app: FastAPI) -> tuple[tuple[re.Pattern[str], str, frozenset[str]], ...]:
    compiled = []
    for template, operations in app.openapi()["paths"].items():
        pieces = re.split(r"(\{[^}/]+\})", template)
        pattern = "".join("[^/]+" if piece.startswith("{") else re.escape(piece) for piece in pieces)
        methods = {method.upper() for method in operations}
        if "GET" in methods:
            methods.add("HEAD")
        compiled.append((re.compile(pattern), template, frozenset(methods)))
    # Literal paths before templated ones: /v1/cases/export is not the case called "export".
    return tuple(sorted(compiled, key=lambda entry: entry[1].count("{")))
