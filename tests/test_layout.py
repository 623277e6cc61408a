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


# --- the server's shape: one face per domain, views that stay in their domain, no cycles ------

FACES = ("pages", "api", "forms", "socket")  # the only web modules a domain has (a face may be a package)
SERVER = ROOT / "server"


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def domains() -> list[Path]:
    """The domain packages: server/<name>/ with its models or its service."""
    return sorted(p for p in SERVER.iterdir() if p.is_dir() and ((p / "models.py").exists() or (p / "service.py").exists()))


def face_of(module: str) -> str | None:
    """``pages``/``api``/``forms``/``socket`` when ``module`` is (in) a domain's web face."""
    parts = module.split(".")
    return parts[2] if len(parts) >= 3 and parts[0] == "server" and parts[2] in FACES else None


def runtime_imports(path: Path, known: set[str]) -> set[str]:
    """Every module of ours that ``path`` imports when it runs: at module level or inside a
    function (a function-level import hides a cycle, it does not remove one). Only what is
    imported for type checkers alone (``if TYPE_CHECKING:``) is left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                found.add(target if target in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & known


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in [*SERVER.rglob("*.py"), *(ROOT / "media").rglob("*.py")]}
    return {name: runtime_imports(path, set(paths)) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import b\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("def later():\n    import a\n", encoding="utf-8")
    graph = {name: runtime_imports(tmp_path / f"{name}.py", {"a", "b"}) - {name} for name in ("a", "b")}
    assert cycles(graph) == [["a", "b"]]


def test_every_domain_speaks_http_only_through_its_faces() -> None:
    """Web modules are named pages/api/forms/socket in every domain; nothing else in a domain
    imports Starlette (Jinja stays allowed: the mail is composed from templates too)."""
    offenders = []
    for domain in domains():
        for path in domain.rglob("*.py"):
            name = module_name(path)
            if face_of(name) is None and any(m.split(".")[0] == "starlette" for m in imported_modules(path)):
                offenders.append(name)
    assert offenders == []


def test_a_view_never_imports_another_domains_view_and_nothing_else_imports_a_view() -> None:
    """Views share through ``server.edge`` and the services; only the app composes every domain's routes."""
    graph = import_graph()
    offenders = []
    for module, targets in graph.items():
        if module == "server.app":
            continue
        for target in targets:
            if face_of(target) is None or target.startswith(module + ".") or module.startswith(target + "."):
                continue
            same_domain = module.split(".")[:2] == target.split(".")[:2]
            if face_of(module) is None or not same_domain:
                offenders.append(f"{module} imports {target}")
    assert offenders == []


def test_the_face_rules_see_an_offender() -> None:
    assert face_of("server.records.pages") == "pages" and face_of("server.meetings.pages.agenda") == "pages"
    assert face_of("server.records.service") is None and face_of("server.edge") is None
