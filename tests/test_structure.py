"""The shape of the package: imports only go down (no cycle), and the docstring examples run."""
from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import kit

ROOT = Path(kit.__file__).parent


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the kit modules it imports}, read from the source (every import, lazy ones inside functions too)."""
    modules = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kit"):
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return {name: graph[name] for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_kit_modules():
    graph = module_graph()
    assert {"kit.train.loop", "kit.layout", "kit.cli.train"} <= set(graph)
    assert "kit.layout" in graph["kit.train.loop"]
    assert cycles(graph) == []


PACKAGES = ("kit.data", "kit.score", "kit.train", "kit.blend", "kit.kaggle", "kit.settings")


@pytest.mark.parametrize("name", ["kit.layout", "kit.errors", "kit.exports", "kit.settings.fields",
                                  "kit.settings.sections", "kit.settings.train", "kit.data", "kit.score"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_names_its_exports_and_each_resolves(name):
    package = importlib.import_module(name)
    assert package.__all__ and len(set(package.__all__)) == len(package.__all__)
    for export in package.__all__:
        value = getattr(package, export)
        assert getattr(value, "__module__", name).startswith(name) or not callable(value), export
    assert set(package.__all__) <= set(dir(package))


def test_importing_the_packages_loads_no_torch():
    code = f"import sys, {', '.join(PACKAGES)}, kit.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_the_readme_maps_every_command_to_its_module():
    from kit.cli import main

    readme = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    for name, command in main.commands.items():
        module, file = command.callback.__module__, name.replace("-", "_")  # `kit lr-find`: kit/cli/lr_find.py
        assert module == f"kit.cli.{file}", f"`kit {name}` is defined in {module}, not kit/cli/{file}.py"
        row = f"| `kit {name}` | `kit/cli/{file}.py` |"
        assert row in table, f"README 'Where things are': add a row starting {row}"
