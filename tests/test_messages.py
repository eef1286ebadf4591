"""User-facing text never points at the repository's development scripts (scripts/lab, scripts/test, ...).

A user installed a wheel: they have no checkout, so a message naming `scripts/...` sends them nowhere.
Every string the server can emit (the package's string literals, the OpenAPI contract) and every file of
the Lab extension's source and settings schema is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "jupyter_condasvc"
DEV_SCRIPTS = "scripts/"


def _python_strings(path: Path):
    """Every string literal but the docstrings of functions and classes (read by developers only;
    a module's docstring can be a --help text, so it is checked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _frontend_files():
    for folder, patterns in (
        (REPO / "labextension" / "src", ("*.ts", "*.tsx")),
        (REPO / "labextension" / "schema", ("*.json",)),
    ):
        for pattern in patterns:
            for path in folder.rglob(pattern):
                if "__tests__" not in path.parts:
                    yield path


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_python_string_names_a_development_script(path):
    bad = [(line, text) for line, text in _python_strings(path) if DEV_SCRIPTS in text]
    assert not bad, f"{path.relative_to(REPO)} names a development script: {bad}"


def test_no_contract_or_frontend_text_names_a_development_script():
    files = [PACKAGE / "openapi.yaml", *_frontend_files()]
    assert len(files) > 3  # the frontend sources were found
    bad = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in files
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if DEV_SCRIPTS in line
    ]
    assert not bad, "\n".join(bad)


def test_the_check_would_catch_one(tmp_path):
    # the scanner itself sees a literal (f-strings included) that names one
    path = tmp_path / "probe.py"
    path.write_text('def f():\n    """See scripts/test."""\n    return f"run scripts/lab as {who}"\n', encoding="utf-8")
    assert [text for _, text in _python_strings(path) if DEV_SCRIPTS in text] == ["run scripts/lab as "]
