"""The room page's scripts are plain ES modules loaded by the browser with no build step: every
import must name an existing file by its relative path (with ``.js``) and a name that file
exports, no module grows past a few hundred lines, and the room's modules import one way only
(entry → features → state), with no cycle."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
JS = ROOT / "web" / "static" / "js"
ENTRY = JS / "room.js"
TEMPLATE = ROOT / "web" / "templates" / "rooms" / "room.html"
MAX_LINES = 400

# The module specifier of `import … from "x"`, `import "x"`, `export … from "x"` and `import("x")`.
STATIC_IMPORT = re.compile(
    r"(?:^|[;\n])\s*(?:import|export)\b([^;\"'`]*?)\bfrom\s*([\"'])(.+?)\2|(?:^|[;\n])\s*import\s*([\"'])(.+?)\4", re.S
)
DYNAMIC_IMPORT = re.compile(r"\bimport\s*\(\s*([\"'])(.+?)\1\s*\)")
NAMED = re.compile(r"\{([^}]*)\}")
EXPORTED_DECLARATION = re.compile(r"^\s*export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([\w$]+)", re.M)
EXPORT_LIST = re.compile(r"^\s*export\s*\{([^}]*)\}", re.M)


def code_of(source: str) -> str:
    """The source without comments (strings kept), so that commented-out imports do not count."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in "\"'`":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            out.append(source[i : j + 1])
            i = j + 1
        elif source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(specifier, imported names) for each import in ``path``; names are empty for `* as x`,
    side-effect and dynamic imports."""
    code = code_of(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for match in STATIC_IMPORT.finditer(code):
        if match.group(3) is not None:
            clause = match.group(1)
            named = NAMED.search(clause)
            names = [part.strip().split(" as ")[0].strip() for part in named.group(1).split(",")] if named else []
            found.append((match.group(3), [name for name in names if name and name != "default"]))
        else:
            found.append((match.group(5), []))
    found.extend((match.group(2), []) for match in DYNAMIC_IMPORT.finditer(code))
    return found


def exports_of(path: Path) -> set[str]:
    code = code_of(path.read_text(encoding="utf-8"))
    names = set(EXPORTED_DECLARATION.findall(code))
    for listed in EXPORT_LIST.findall(code):
        names.update(part.strip().split(" as ")[-1].strip() for part in listed.split(",") if part.strip())
    return names


def graph(folder: Path) -> tuple[dict[Path, list[Path]], list[str]]:
    """The import graph of every module under ``folder``, and what is wrong with its imports."""
    edges: dict[Path, list[Path]] = {}
    problems: list[str] = []
    for path in sorted(folder.rglob("*.js")):
        edges[path] = []
        for specifier, names in imports_of(path):
            where = f"{path.relative_to(folder)}: {specifier!r}"
            if not specifier.startswith(("./", "../")):
                problems.append(f"{where} is not a relative path (no bundler resolves package names)")
                continue
            if not specifier.endswith(".js"):
                problems.append(f"{where} lacks the .js extension the browser needs")
                continue
            target = (path.parent / specifier).resolve()
            if not target.is_file():
                problems.append(f"{where} does not exist")
                continue
            missing = sorted(set(names) - exports_of(target))
            if missing:
                problems.append(f"{where} does not export {missing}")
            edges[path].append(target)
    return edges, problems


def cycle_in(edges: dict[Path, list[Path]]) -> list[Path]:
    """One import cycle (its modules in order, the first repeated at the end), or []."""
    done: set[Path] = set()
    stack: list[Path] = []

    def visit(node: Path) -> list[Path]:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return []
        stack.append(node)
        for target in edges.get(node, []):
            if found := visit(target):
                return found
        stack.pop()
        done.add(node)
        return []

    for node in edges:
        if found := visit(node):
            return found
    return []


def reachable(edges: dict[Path, list[Path]], start: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [start.resolve()]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, []))
    return seen


def names(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(JS)) for path in paths]


def test_the_room_template_loads_an_existing_module() -> None:
    sources = re.findall(r'<script type="module" src="/static/js/([^"]+)"', TEMPLATE.read_text(encoding="utf-8"))
    assert sources == [ENTRY.name]
    assert ENTRY.is_file()


def test_every_import_names_an_existing_module_and_export() -> None:
    edges, problems = graph(JS)
    assert {ENTRY.resolve(), *(path.resolve() for path in (JS / "room").glob("*.js"))} <= set(edges)
    assert len(edges[ENTRY.resolve()]) > 3, "the entry wires the room's modules"
    assert not problems


def test_the_room_modules_import_without_a_cycle() -> None:
    edges, _ = graph(JS)
    cycle = cycle_in(edges)
    assert not cycle, " → ".join(names(cycle))


def test_every_room_module_is_used_by_the_page() -> None:
    edges, _ = graph(JS)
    unused = sorted(set((JS / "room").glob("*.js")) - reachable(edges, ENTRY))
    assert not unused, f"modules no import reaches from {ENTRY.name}: {names(unused)}"


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(JS)): n
        for path in JS.rglob("*.js")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_the_checks_see_a_missing_module_a_missing_export_and_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "room").mkdir()
    (tmp_path / "main.js").write_text(
        '// import { gone } from "./room/commented.js";\nimport { a } from "./room/a.js";\nimport * as b from "./room/b.js";\n',
        encoding="utf-8",
    )
    (tmp_path / "room" / "a.js").write_text('import { b, nope } from "./b.js";\nexport function a() {}\n', encoding="utf-8")
    (tmp_path / "room" / "b.js").write_text(
        'import "./missing.js";\nimport { a } from "./a.js";\nimport x from "lodash";\nexport const b = 1;\n', encoding="utf-8"
    )
    edges, problems = graph(tmp_path)
    assert sorted(problems) == [
        "room/a.js: './b.js' does not export ['nope']",
        "room/b.js: './missing.js' does not exist",
        "room/b.js: 'lodash' is not a relative path (no bundler resolves package names)",
    ]
    cycle = cycle_in(edges)
    assert [path.name for path in cycle] in (["a.js", "b.js", "a.js"], ["b.js", "a.js", "b.js"])
    (tmp_path / "room" / "b.js").write_text("export const b = 1;\n", encoding="utf-8")
    assert cycle_in(graph(tmp_path)[0]) == []
