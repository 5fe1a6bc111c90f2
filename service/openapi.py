"""Print the OpenAPI document the app serves (`make openapi` commits it)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from service.app import create_app
from service.settings import Settings


def openapi_document() -> str:
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(Settings(data_dir=Path(scratch), database_url=None, development=True))
        document = app.openapi()
        app.state.engine.dispose()
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(openapi_document(), end="")
