"""The shape of the code, checked like behaviour: the import rules of docs/architecture.md (import-linter contracts in
pyproject.toml), the size of the wiring, and modules that stay small enough to read or say why they are not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONG_MODULE = 400
WHY_LONG = "Why it is long:"


def test_import_contracts_hold() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which disables every logger that
    # exists already (feeds.ingest, feeds.core.config, ...), and later tests in this worker would see no records.
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_service_is_wiring_only() -> None:
    lines = (ROOT / "service.py").read_text(encoding="utf-8").count("\n")
    assert lines < 200, f"service.py has {lines} lines: logic belongs to the side that owns it"


def _modules() -> list[Path]:
    return sorted(p for folder in ("feeds", "newsletter") for p in (ROOT / folder).rglob("*.py")
                  if "migrations" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= LONG_MODULE:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert WHY_LONG in docstring, (f"{path.relative_to(ROOT)} has {text.count(chr(10))} lines: split it, or say in its "
                                   f"docstring ('{WHY_LONG} …') why one module is the right size")


def test_the_module_table_names_every_module() -> None:
    """docs/architecture.md is where a newcomer looks a module up: each one is in its tables."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in _modules()
               if p.name != "__init__.py" and p.parent.name != "alembic" and f"{p.name}" not in doc]
    assert missing == [], f"add these to docs/architecture.md: {missing}"
