"""The package's import graph has no cycle, counting imports inside functions too, and no library
module imports the notebook helpers (``ca2sis_lib.notebook`` serves the notebooks, not the library)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ca2sis_lib"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports, at module level or inside any function."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: climb level-1 packages from this module's package
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import ca2sis_lib.models.ca2sis as x` -> itself
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "ca2sis_lib.loading" in graph["ca2sis_lib.training.run"]  # imported inside a function
    assert "ca2sis_lib.models.ca2sis" in graph["ca2sis_lib.models.factory"]  # relative, module level


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_would_be_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_library_module_imports_the_notebook_helpers():
    importers = sorted(name for name, targets in import_graph().items() if "ca2sis_lib.notebook" in targets)
    assert importers == [], f"library modules importing ca2sis_lib.notebook: {importers}"


def test_the_generator_interface_imports_no_concrete_model():
    imported = import_graph()["ca2sis_lib.models.interface"]
    assert not imported & {"ca2sis_lib.models.ca2sis", "ca2sis_lib.models.sean", "ca2sis_lib.models.spade"}


def test_the_training_loop_reads_the_model_config_without_probing_it():
    """Every setting the loop reads is a field or method every family has: no getattr/hasattr on a config."""
    sources = [PACKAGE / "train.py", *(PACKAGE / "training").glob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr"):
                probed = ast.unparse(node.args[0])
                assert "config" not in probed and "mcfg" not in probed, f"{path.name}: {ast.unparse(node)}"
