"""Public guidance reads per second, next to a bare FastAPI GET measured in the same run.

A force website or app polls the advice with If-None-Match; the answer is then a 304 with no body.

    .venv/bin/python bench/guidance.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import tempfile

import httpx
from _harness import Target, load, load_options, print_table, require_wrk, wrk_settings

from devsupport.servers import UNLIMITED_ENVIRONMENT, start_uvicorn


def main(argv: list[str] | None = None) -> list[Target]:
    args = load_options(argv)
    require_wrk()

    with tempfile.TemporaryDirectory() as data:
        environment = {"INTAKE_DATA_DIR": data, "INTAKE_LOG_LEVEL": "WARNING", **UNLIMITED_ENVIRONMENT}
        echo, echo_base = start_uvicorn("bench.echo_app:app", {})
        intake, intake_base = start_uvicorn("service.app:create_app", environment, factory=True)
        try:
            etag = httpx.get(intake_base + "/v1/guidance").headers["etag"]
            common = wrk_settings(args)
            baseline = load("bare FastAPI GET", echo_base + "/hello", **common)
            full = load("GET /v1/guidance (200, whole body)", intake_base + "/v1/guidance", **common)
            conditional = load(
                "GET /v1/guidance, If-None-Match (304)",
                intake_base + "/v1/guidance",
                headers={"If-None-Match": etag},
                expected_status=304,
                **common,
            )
        finally:
            for process in (echo, intake):
                process.terminate()
                process.wait()

    print(f"wrk, {args.connections} connections, {args.seconds}s each, one uvicorn worker per server")
    print_table([baseline, full, conditional])
    print(f"ratio with ETag (304) to bare GET: {conditional.per_second / baseline.per_second:.2f} (target >= 0.8)")
    print(f"ratio of a full read (200) to bare GET: {full.per_second / baseline.per_second:.2f}")
    return [
        Target("guidance", "GET with ETag (304) ÷ bare GET", conditional.per_second / baseline.per_second, 0.8),
        Target("guidance", "(GET, whole body ÷ bare GET)", full.per_second / baseline.per_second, 0.8),
    ]


if __name__ == "__main__":
    main()
