"""The app factory: `create_app(settings)` builds a complete service; tests build their own."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.engine import Engine

from service.alerts import AlertDeliverer
from service.api import (
    analysts,
    cases,
    clusters,
    corrections,
    docs,
    evidence,
    guidance,
    identifiers,
    images,
    ops,
    report_form,
    report_status,
    workflow,
)
from service.api.cors import AllowedOrigins, CorsMiddleware
from service.api.form_fields import FORM_FIELDS
from service.api.forwarded import ForwardedMiddleware, TrustedProxies
from service.api.middleware import Metrics, RequestContextMiddleware
from service.api.problems import PROBLEM_MEDIA_TYPE, FieldProblem, Problem, install_problem_handlers, problem_title
from service.api.ratelimit import RateLimits
from service.deployment import check_deployment
from service.domain.cases import CaseSubmission, IdentifierInput
from service.domain.evidence import ALLOWED_CONTENT_TYPES
from service.evidence_intake import EvidenceIntake
from service.reporting import Reporting
from service.settings import Settings
from service.storage.content import load_content
from service.storage.database import AsyncDatabase, create_database_engine
from service.storage.deployments import deployment_id
from service.storage.keys import LiveKeys
from service.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore, S3Settings
from service.storage.video_hashes import video_matching_state

log = logging.getLogger("intake")

API_VERSION = "1.0.0"
DESCRIPTION = """\
Where reports of sextortion land. Police force websites post their report forms here, partner
apps integrate through this document, and analysts read cases and link them.

Errors are RFC 9457 problem details (`application/problem+json`); validation problems name every
bad field in `errors`. Authenticate with `Authorization: Bearer <token>`: an API key made with
`intake keys create`, or the reporter token returned when a case is created.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        log.info(json.dumps({"event": "video_matching", "state": video_matching_state(settings)}))
        settle_garbage_collector()
        serving = app.state.async_database.serve_from_this_loop()
        delivery = asyncio.create_task(app.state.alerts.run()) if app.state.alerts else None
        yield
        if delivery:
            delivery.cancel()
            app.state.alerts.client.close()
        if serving:
            await app.state.async_database.stop_serving()
        app.state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry off: its spans would carry raw paths and queries (case references,
        # signed evidence links), and with no provider set it still asked for one on every request (~4%
        # of a report's CPU). The service's metrics are /metrics; its access log names route templates.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # /docs is served from a pinned package by service/api/docs.py, never from a CDN.
        docs_url=None,
        redoc_url=None,
        # Operation ids are the route functions' names, so generated clients read `post_case`, `find_cases`.
        generate_unique_id_function=lambda route: route.name,
        title="Sextortion case intake",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "guidance", "description": "Public advice and helplines."},
            {"name": "cases", "description": "Reporting a case and reading it."},
            {"name": "identifiers", "description": "Offender identifiers, normalised to link cases."},
            {"name": "evidence", "description": "Files kept as evidence: streamed, hashed, typed by their bytes."},
            {"name": "images", "description": "Finding an image across cases by its perceptual hash, unseen."},
            {"name": "clusters", "description": "Offender networks: cases linked by identifiers or images."},
            {"name": "analysts", "description": "Finding cases, and the audit log."},
            {"name": "workflow", "description": "Working a case: status, assignment and notes."},
            {"name": "ops", "description": "Health, readiness and metrics."},
        ],
    )
    app.state.settings = settings
    app.state.link_secret = check_deployment(settings)  # first: an unsafe deployment serves nothing
    app.state.engine = create_database_engine(
        settings.resolved_database_url, settings.database_pool_size, settings.database_max_overflow
    )
    app.state.async_database = AsyncDatabase(
        settings.resolved_database_url, settings.database_pool_size, settings.database_max_overflow
    )
    app.state.live_keys = LiveKeys(app.state.async_database, settings.key_cache_seconds)
    app.state.objects = object_store(settings, app.state.engine)
    app.state.alerts = AlertDeliverer(settings, app.state.engine) if settings.webhook_url else None
    app.state.reporting = Reporting(app.state.async_database, settings, app.state.alerts)
    app.state.evidence_intake = EvidenceIntake(settings, app.state.objects, alerts=app.state.alerts is not None)
    app.state.content = load_content(settings.content_dir)
    if settings.form_police_force is not None:
        # Every form report would go to a force no analyst is scoped to: refuse to start instead.
        app.state.content.police_forces.check(settings.form_police_force)
    app.state.guidance_cache = {}
    app.state.metrics = Metrics()
    app.state.rate_limits = RateLimits.from_settings(settings)
    install_problem_handlers(app)
    # Reporting a case first: the hottest route, matched before the others are scanned (tens of
    # microseconds a request). Then analysts: its /v1/cases/export must match before /v1/cases/{reference}.
    app.include_router(cases.reporting_router)
    routers = (guidance, analysts, cases, identifiers, evidence, images, clusters, corrections, workflow, ops)
    for module in (*routers, report_form, report_status, docs):
        app.include_router(module.router)
    app.state.cors = AllowedOrigins(app.state.engine, settings.cors_cache_seconds)
    app.add_middleware(CorsMiddleware, origins=app.state.cors)
    app.add_middleware(
        RequestContextMiddleware, metrics=app.state.metrics, max_headers=settings.http_max_headers
    )  # ids and headers on all
    # Outermost: everything inside sees the client and the address it asked for, as a trusted proxy tells them.
    app.add_middleware(
        ForwardedMiddleware, trusted=TrustedProxies(settings.trusted_proxies), public_url=settings.public_url
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# Requests in flight hold a few hundred objects each, none of them in reference cycles (the collector
# finds nothing to free under load). At Python's default of 700 new objects, every few requests started
# a collection that found them all alive and moved them on to the older generations, whose collections
# then walked the whole heap (about 200,000 objects of modules, models and routes): about 0.3 ms of
# CPU per case at 32 connections.
YOUNG_GENERATION_THRESHOLD = 10_000
_garbage_collector_settled = False


def settle_garbage_collector() -> None:
    """Once per process, when the app starts serving: what was built so far is kept for the process's
    life, so the collector stops walking it (gc.freeze); young collections start at a higher count."""
    global _garbage_collector_settled
    if _garbage_collector_settled:
        return
    _garbage_collector_settled = True
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def app_from_environment() -> FastAPI:
    """What each `intake serve` worker runs: settings from its environment, logging as the server's."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def object_store(settings: Settings, engine: Engine) -> ObjectStore:
    """The evidence store as this deployment sees it: only under the prefix of the deployment id its
    database keeps, read when the store is first used (not here: the database may not be up yet)."""

    def this_deployment() -> str:
        return deployment_id(engine)

    if settings.evidence_store == "local":
        return LocalObjectStore(settings.resolved_evidence_dir, this_deployment)
    store = S3ObjectStore(
        S3Settings(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            server_side_encryption=settings.s3_server_side_encryption,
            kms_key_id=settings.s3_kms_key_id,
            part_bytes=settings.s3_part_bytes,
            parts_in_flight=settings.s3_parts_in_flight,
        ),
        this_deployment,
    )
    if settings.s3_create_bucket:
        store.ensure_bucket()
    return store


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    settings: Settings = app.state.settings
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (CaseSubmission, IdentifierInput):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    components["CaseForm"] = case_form_schema()
    components["CaseFormWithFiles"] = case_form_schema(max_files=settings.evidence_max_files)
    for model in (Problem, FieldProblem):
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    schema["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key or a reporter token."}
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (path.startswith("/v1/") and not path.startswith(_PUBLIC_PATHS)) or path == "/metrics":
                # A signed link is its own credential: it works without (and ignores) a bearer token.
                operation["security"] = [] if path.startswith(_SIGNED_LINK_PATHS) else [{"bearer": []}]
            _document_problems(path, method, operation)
            _document_limits(operation, settings)
    components["UploadRequest"]["properties"]["size"]["maximum"] = settings.evidence_max_bytes
    # Not in problems: they may quote what the client sent, e.g. the name of a field we don't know.
    _text_has_no_nul([schema["paths"], *(v for k, v in components.items() if k not in ("Problem", "FieldProblem"))])
    app.openapi_schema = schema
    return schema


_PUBLIC_PATHS = ("/v1/guidance", "/v1/support-services", "/v1/police-forces")
_SIGNED_LINK_PATHS = ("/v1/evidence-links/", "/v1/evidence-uploads/")
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}


def _statuses_in_front_of(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """What the body parser, authentication, routing and the database may answer for this operation."""
    statuses: set[int] = set()
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation or method in ("post", "put"):
        statuses |= {400, 413, 415}
    security = operation.get("security")
    if security:
        statuses |= {401, 403}
    elif security == []:
        statuses.add(403)  # a signed link that is wrong or out of date
    if "{" in path:
        statuses.add(404)
    if path.startswith("/v1/"):
        statuses.add(503)
    return statuses


def _document_problems(path: str, method: str, operation: dict[str, Any]) -> None:
    """Every error an operation can answer with, as problem+json, including those no router raises itself.

    FastAPI documents only what a route declares; the body parser, authentication, the database and
    the rate limiter can answer any operation they sit in front of, and clients must be told so.
    """
    responses = operation["responses"]
    for status in _statuses_in_front_of(path, method, operation):
        responses.setdefault(str(status), {})
    for status, response in responses.items():
        if int(status) >= 400 and not (path == "/readyz" and status == "503"):  # readyz answers with its checks
            response["description"] = problem_title(int(status))
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        if status in ("429", "503") and path.startswith("/v1/"):
            response["headers"] = _RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


# Python's str.strip() whitespace, which is not quite ECMAScript's \s, and NUL.
_STRIPPED = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = f"^[^\\u0000]*[^{_STRIPPED}\\u0000][^\\u0000]*$"


def _text_has_no_nul(node: Any) -> None:
    """Say in every free-text schema what the service enforces (domain.cases.Strict): no NUL character,
    and where text is required, something besides the whitespace that is trimmed off."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"format", "enum", "pattern", "const"} & node.keys():
            node["pattern"] = NOT_BLANK if node.get("minLength", 0) >= 1 else NO_NUL
        for value in node.values():
            _text_has_no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _text_has_no_nul(value)


def _document_limits(operation: dict[str, Any], settings: Settings) -> None:
    """What this deployment's settings allow, written where a client (and a fuzzer) will read it."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"] == "If-Match":
            # Without it the answer is 428: the header is optional only in FastAPI's signature.
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "maxLength": 100, "examples": ['"v3"']}
    multipart = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
    files = multipart.get("schema", {}).get("properties", {}).get("file")
    if files is not None:
        files.update(minItems=1, maxItems=settings.evidence_max_files)
        multipart["encoding"] = {"file": {"contentType": EVIDENCE_CONTENT_TYPES}}


EVIDENCE_CONTENT_TYPES = ", ".join(sorted(ALLOWED_CONTENT_TYPES))


def case_form_schema(max_files: int | None = None) -> dict[str, Any]:
    """The flat form fields that map onto CaseSubmission (service.api.form_fields), each with its own
    field's schema from the model; with files for multipart."""
    model = CaseSubmission.model_json_schema(ref_template="#/$defs/{model}")
    definitions = model.get("$defs", {})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in FORM_FIELDS:
        node = _form_value(model["properties"][field.path[0]], definitions)
        needed = field.path[0] in model.get("required", [])
        if len(field.path) == 2:  # a field of a nested object, or of an item of a list of them
            in_list = node.get("type") == "array"
            inner = _resolved(node["items"] if in_list else node, definitions)
            node = _form_value(inner["properties"][field.path[1]], definitions)
            needed = needed and not in_list and field.path[1] in inner.get("required", [])
        if field.named_by is not None:
            kind = field.named_by[1]
            described = (
                f"Identifiers of type {kind}; repeat the field."
                if field.name == kind
                else (f"The {field.field} of each `{kind}`, in the same order.")
            )
            node = _repeated_form_value({"type": "array", "items": node, "description": described})
        elif field.repeated:
            node = _repeated_form_value(node)
        properties[field.name] = node
        if needed:
            required.append(field.name)
    if max_files is not None:
        properties["evidence"] = {
            "type": "array",
            "items": {"type": "string", "format": "binary", "minLength": 1},
            "maxItems": max_files,
            "description": "Evidence files, typed by their bytes: " + EVIDENCE_CONTENT_TYPES + ".",
        }
    for name, schema in properties.items():
        if name not in required and "anyOf" not in schema and not _takes_empty_text(schema):
            # A browser sends every field of a form, filled in or not: empty means not given.
            properties[name] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
    return {
        "title": "CaseFormWithFiles" if max_files is not None else "CaseForm",
        "type": "object",
        "description": "The case as form fields: dotted names for nested fields, repeated names for lists. "
        "An empty field is the same as one left out.",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _repeated_form_value(array: dict[str, Any]) -> dict[str, Any]:
    """A field a form repeats once per value. Sent once, it is one value on the wire, the same bytes as
    a list of one, so the schema takes either; an empty field is the same as one left out."""
    item = {key: value for key, value in array["items"].items() if key != "description"}
    many = {key: value for key, value in array.items() if key != "description"}
    options = [item, many] if _takes_empty_text(item) else [item, many, {"type": "string", "maxLength": 0}]
    description = array.get("description", array["items"].get("description"))
    return {"anyOf": options, "description": description} if description else {"anyOf": options}


def _takes_empty_text(schema: dict[str, Any]) -> bool:
    # Free text already takes an empty field; spelling that out again as an alternative only makes
    # fuzzers read a number sent as form text ("12") as a schema violation.
    constrained = ("enum", "format", "minLength", "minimum", "maximum")
    plain_pattern = schema.get("pattern") in (None, NO_NUL)
    return schema.get("type") == "string" and plain_pattern and not any(schema.get(key) for key in constrained)


def _resolved(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return definitions[ref.rsplit("/", 1)[-1]] if ref else node


_FORM_KEYWORDS = ("type", "enum", "format", "minimum", "maximum", "minLength", "maxLength", "pattern", "items")


def _form_value(field: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A field as a form sends it: not null (an empty field is), text where JSON also takes a number."""
    node = _resolved(field, definitions)
    options = [_resolved(option, definitions) for option in node.get("anyOf", [])]
    options = [option for option in options if option.get("type") != "null"]
    if options:
        text = [option for option in options if option.get("type") == "string"]
        chosen = _form_value((text or options)[0], definitions)
        description = field.get("description", node.get("description"))
        return {**chosen, "description": description} if description else chosen
    if "properties" in node or node.get("type") == "array" and "$ref" in node.get("items", {}):
        return node  # an object or list of objects: flattened by the caller
    shaped = {key: node[key] for key in _FORM_KEYWORDS if key in node}
    if "items" in shaped:
        shaped["items"] = _form_value(shaped["items"], definitions)
    if "description" in field or "description" in node:
        shaped["description"] = field.get("description", node.get("description"))
    return shaped


# Libraries that, below WARNING, log request URLs, headers, signing material or SQL parameters.
_TALKATIVE_LIBRARIES = (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "sqlalchemy",
    "alembic",
    "httpx",
    "httpcore",
    "multipart",
    "python_multipart",
    "asyncio",
    "uvicorn.access",
)


def configure_logging(level: str = "INFO") -> None:
    """Our own JSON lines at `level`; other libraries only from WARNING, whatever `level` says."""
    logging.basicConfig(level=level, format="%(message)s")
    for name in _TALKATIVE_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.getLevelName(level.upper()), logging.WARNING))
