"""The suite's own rule: shared helpers live in tests/support/, and no test module imports another."""

from __future__ import annotations

import ast

from tests.support.apps import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"


def imported_test_modules(path) -> list[str]:
    """The modules under tests/ that `path` imports, other than tests.support."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            names = ["tests.<relative>"]
        found += [name for name in names if name.split(".")[0] == "tests" and not name.startswith("tests.support")]
    return found


def test_no_test_module_or_conftest_imports_another_test_module():
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path))
    }
    assert offenders == {}, "import shared helpers from tests.support; fixtures come from conftest.py by name"


def test_the_layout_check_sees_each_kind_of_forbidden_import(tmp_path):
    source = tmp_path / "test_example.py"
    source.write_text(
        "import tests.api.test_cases\nfrom tests.conftest import bearer\nfrom . import helpers\n"
        "from tests.support.http import bearer\nimport sqlalchemy\n"
    )
    assert imported_test_modules(source) == ["tests.api.test_cases", "tests.conftest", "tests.<relative>"]
