"""The layout the client fixed, and the one-way import rule between layers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_MEDIA = ("server", "starlette", "sqlmodel", "sqlalchemy", "jinja2", "alembic")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_top_level_layout_is_as_the_client_fixed_it() -> None:
    for name in ("server", "web", "media", "migrations", "tests", "docs", "bench"):
        assert (ROOT / name).is_dir(), name
    for name in ("pyproject.toml", "Dockerfile", "README.md", "Makefile", "CHANGELOG.md", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_media_never_imports_the_web_side() -> None:
    files = list((ROOT / "media").rglob("*.py"))
    assert files
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN_IN_MEDIA
    }
    assert not offenders


def test_the_import_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from server.units import service\nimport starlette.routing\n", encoding="utf-8")
    assert {"server.units", "starlette.routing"} <= imported_modules(sample)


def test_services_and_models_do_not_import_the_web_framework() -> None:
    """Views parse and respond; services and models know nothing of HTTP."""
    layers = [*ROOT.glob("server/*/service.py"), *ROOT.glob("server/*/models.py"), ROOT / "server/units/csvimport.py"]
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in layers
        for module in imported_modules(path)
        if module.split(".")[0] in ("starlette", "jinja2")
    }
    assert not offenders
