"""The interactive API reference at /docs: Swagger UI from a Python package (fastapi-offline), served by the
service itself, so the page works offline and loads no code from a third party."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

_STATIC = Path(__file__).resolve().parent.parent / "static"
# Swagger UI 5 (OpenAPI 3.1, which FastAPI writes), as the fastapi-offline package ships it.
_SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
# Only these files are served: the package's folder holds others (ReDoc, a favicon).
_ASSETS = {
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "docs.js": (_STATIC / "docs.js", "text/javascript; charset=utf-8"),
}
# Swagger UI's icons are data: images in its stylesheet; "Try it out" calls this same origin.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs.js"></script>
</body>
</html>
"""


_PAGE_BYTES = _PAGE.format(title="Sextortion case intake").encode()
_ASSET_BYTES = {name: (path.read_bytes(), media_type) for name, (path, media_type) in _ASSETS.items()}


@router.get("/docs")
def api_reference() -> Response:
    return HTMLResponse(_PAGE_BYTES, headers={"content-security-policy": DOCS_POLICY, "cache-control": "no-cache"})


@router.get("/docs/assets/{name}")
def api_reference_asset(name: str) -> Response:
    if name not in _ASSET_BYTES:
        raise HTTPException(status_code=404)
    content, media_type = _ASSET_BYTES[name]
    return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=86400"})
