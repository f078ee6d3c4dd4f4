"""Imports run one way: no gmbench module imports one that imports it back, function-level imports included,
and ``import gmbench`` loads neither torch nor pandas nor matplotlib."""
import ast
import subprocess
import sys
from pathlib import Path

import gmbench

PACKAGE = Path(gmbench.__file__).parent


def _module_names() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The gmbench modules ``name`` imports anywhere in its file, with the packages that importing them runs."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in (t for t in targets if t.split(".")[0] == "gmbench"):
            while target not in modules:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # a.b.c runs a and a.b first
    return {m for m in found if m != name and not name.startswith(m + ".")}  # a module's own packages: loaded already


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_gmbench_module_imports_one_that_imports_it_back():
    modules = _module_names()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["gmbench.data"] >= {"gmbench.registry", "gmbench.dataset_spec"}  # the graph sees real imports
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail


def test_import_gmbench_loads_neither_torch_nor_pandas_nor_matplotlib():
    code = ("import sys, gmbench; print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules)); "
            "from gmbench.report.records import load_records; print(gmbench.load_records is load_records)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.split()
    assert out == ["[]", "True"]  # and load_records is still there, loaded on first use
