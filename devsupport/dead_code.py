"""The dead-code half of `make lint`: what vulture finds that nothing uses, less what frameworks use by name.

Reported: functions, methods, properties, classes, imports, unreachable code, and fields of plain
dataclasses. Not reported: fields of Pydantic and SQLModel models and members of enums, which are read
by name when a request is parsed or a response, row or template is written (vulture can't see that).
A name used only where vulture can't look goes in USED_BY_NAME below, with where it is used.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import vulture

PATHS = ["service", "devsupport", "bench", "tests"]
USED_BY_NAME = {
    "ordered": "FormErrors.ordered, read by service/templates/report.html",
    "widget": "Question.widget, read by service/templates/_form_macros.html",
    "section_intro": "Question.section_intro, read by service/templates/_form_macros.html",
    "input_type": "Question.input_type, read by service/templates/_form_macros.html",
    "autocomplete": "Question.autocomplete, read by service/templates/_form_macros.html",
    "empty_choice": "Question.empty_choice, read by service/templates/_form_macros.html",
    "process_bind_param": "SQLAlchemy's TypeDecorator calls it",
    "process_result_value": "SQLAlchemy's TypeDecorator calls it",
    "do_POST": "http.server calls it",
    "log_message": "http.server calls it",
    "app_from_environment": "uvicorn imports it by name for each worker (service/cli.py, _serve)",
    "get_tracer": "OpenTelemetry's TracerProvider API, called by FastAPI (tests/api/test_errors_and_ops.py)",
    "test_*": "pytest collects them",
}
# Routes, handlers, fixtures and validators are called by the framework that registers them.
CALLED_BY_FRAMEWORK = [
    "@router.*",
    "@app.*",
    "@*.exception_handler",
    "@*.middleware",
    "@pytest.fixture",
    "@field_validator",
    "@model_validator",
]
ALWAYS_REPORTED = {"function", "method", "property", "class", "import", "unreachable_code"}


@cache
def dataclass_lines(path: Path) -> frozenset[int]:
    """The lines of `path` that lie in the body of a @dataclass."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        decorated = isinstance(node, ast.ClassDef) and any(
            "dataclass" in ast.unparse(decorator) for decorator in node.decorator_list
        )
        if decorated:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def main() -> int:
    finder = vulture.Vulture(ignore_names=list(USED_BY_NAME), ignore_decorators=CALLED_BY_FRAMEWORK)
    finder.scavenge(PATHS)
    unused = [
        item
        for item in finder.get_unused_code(min_confidence=60)
        if item.typ in ALWAYS_REPORTED
        or (item.typ in ("variable", "attribute") and item.first_lineno in dataclass_lines(Path(item.filename)))
    ]
    for item in unused:
        print(item.get_report())
    if unused:
        print(f"{len(unused)} unused: remove it, or if something uses it by name, say where in devsupport/dead_code.py")
    return 1 if unused else 0


if __name__ == "__main__":
    sys.exit(main())
