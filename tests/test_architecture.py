"""The shape of the code, checked: no import cycles, no long functions without a stated reason, and
web routes that call services instead of querying the database themselves.

These tests read the source with :mod:`ast`; they import nothing from the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("frontline", "flows", "models")
MAX_FUNCTION_LINES = 80
LONG_REASON = "Long because"  # a function over the limit says why in its docstring, starting with this


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> modules of the project it imports, counting imports inside functions too (a lazy import
    hides a cycle from Python at import time, not from the reader)."""
    modules = modules or _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names
                ]
            for target in targets:
                owner = _owner(target, modules)
                if owner and owner != name:
                    graph[name].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (each list imports itself round the loop): " + "; ".join(map(str, found))


def test_the_cycle_check_finds_a_cycle():
    """The checker itself: a two-module loop and a three-module loop are found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def long_functions() -> list[tuple[str, int, str | None]]:
    """(``path:line name``, length, stated reason or None) for every function over the limit."""
    out = []
    for _name, path in sorted(_modules().items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    doc = ast.get_docstring(node) or ""
                    reason = doc[doc.index(LONG_REASON) :].split("\n\n")[0] if LONG_REASON in doc else None
                    where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                    out.append((where, length, reason))
    return out


def test_long_functions_state_why():
    """No function over ~80 lines without a reason ("Long because ...") in its docstring. The list with
    the reasons is printed (``pytest -s``) so a reviewer sees every exception in one place."""
    found = long_functions()
    for where, length, reason in found:
        print(f"{where}: {length} lines: {reason}")
    unexplained = [f"{where} ({length} lines)" for where, length, reason in found if reason is None]
    assert not unexplained, "functions over the line limit without a stated reason: " + ", ".join(unexplained)


QUERY_CALLS = {"exec", "execute", "scalars", "scalar", "get", "query"}


def test_web_routes_do_not_query_the_database():
    """``frontline/web`` holds routes: they parse the request, call a service and render. A ``select``
    or a session query in a route is a sign that logic lives in the wrong layer."""
    offenders = []
    for path in sorted((ROOT / "frontline" / "web").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in {"sqlmodel", "sqlalchemy"}:
                names = {alias.name for alias in node.names}
                if names & {"select", "func", "text", "update", "delete", "insert"}:
                    offenders.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} imports {sorted(names)} from {node.module}"
                    )
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_CALLS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"session", "s", "db", "conn"}
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.value.id}.{node.func.attr}(...)")
    assert not offenders, "queries in web routes (move them to a service):\n" + "\n".join(offenders)


DB_NAMES = {"session_scope", "web_session", "session", "db"}  # a session opened, used or injected


def async_functions_with_a_session() -> list[str]:
    """``async def`` functions in ``frontline/web`` that open, use or are given a database session."""
    found = []
    for path in sorted((ROOT / "frontline" / "web").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.AsyncFunctionDef):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                names |= {a.arg for a in node.args.args + node.args.kwonlyargs}
                if names & DB_NAMES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({sorted(names & DB_NAMES)})")
    return found


def test_web_database_work_runs_off_the_event_loop():
    """Database work in an ``async def`` route or dependency runs in the event loop: while it waits (for
    the planning lock up to 15 s, for SQLite's write lock, for PostgreSQL) every other request of the
    server waits too. Routes that touch the database are plain ``def`` (FastAPI's thread pool), an async
    dependency reads the body; async code hands database work to ``asyncio.to_thread``."""
    offenders = async_functions_with_a_session()
    assert not offenders, "database work in the event loop:\n" + "\n".join(offenders)


def test_every_flow_ends_crashed_when_stopped():
    """Every Prefect flow runs its function through ``flows.common.crash_when_stopped`` (a stop that lands
    inside Prefect's task bookkeeping still ends the run Crashed, so it can be retried), and keeps its
    parameters' signature for Prefect's validation."""
    import importlib
    import inspect

    from prefect import Flow

    flows = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        module = importlib.import_module(f"flows.{path.stem}")
        flows += [f for f in vars(module).values() if isinstance(f, Flow) and f.__module__ == module.__name__]
    assert len(flows) >= 10, [f.name for f in flows]
    unguarded = [f.name for f in flows if not getattr(f.fn, "crash_when_stopped", False)]
    assert unguarded == [], f"flows without @crash_when_stopped under @flow: {unguarded}"
    for f in flows:
        assert inspect.signature(f.fn) == inspect.signature(inspect.unwrap(f.fn), eval_str=True), f.name
