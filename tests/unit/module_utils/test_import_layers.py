"""module_utils is layered: core files at the top of the folder, then the packages in the order below. A file
may import its own layer's files and lower layers, never a higher one, and no chain of imports (lazy ones in
functions included) may come back to where it started."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
PACKAGE = "ansible_collections.o365.smtp_oauth.plugins.module_utils"

# Lowest first. A name is a core file (without .py) or a package folder.
LAYERS = [
    ("_errors", "_retry", "_parallel", "_requirements"),
    ("_clouds", "_http"),
    ("_auth",),
    ("_smtp", "_entra"),
    ("_exchange",),
    ("_module",),
]
LAYER_OF = dict((name, level) for level, names in enumerate(LAYERS) for name in names)


def module_files():
    for folder, _dirs, files in os.walk(MODULE_UTILS):
        for name in files:
            if name.endswith(".py") and name != "__init__.py":
                path = os.path.join(folder, name)
                yield os.path.relpath(path, MODULE_UTILS)[:-3].replace(os.sep, "."), path


def imports_of(path):
    """Every module_utils module this file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            base = node.module[len(PACKAGE):].lstrip(".")
            if base:
                found.add(base)
            else:  # from ...module_utils import _errors
                found.update(alias.name for alias in node.names)
            if base and "." not in base and os.path.isdir(os.path.join(MODULE_UTILS, base)):
                found.discard(base)  # from ...module_utils._auth import options
                found.update(base + "." + alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name[len(PACKAGE) + 1:] for a in node.names if a.name.startswith(PACKAGE + "."))
    return found


GRAPH = dict((name, imports_of(path)) for name, path in module_files())


def test_every_file_has_a_layer():
    assert GRAPH
    missing = sorted(name for name in GRAPH if name.split(".")[0] not in LAYER_OF)
    assert missing == [], "add these to LAYERS: %s" % missing


def test_no_file_imports_a_higher_layer():
    upward = []
    for name, imported in sorted(GRAPH.items()):
        for other in sorted(imported):
            assert other in GRAPH, "%s imports %s, which does not exist" % (name, other)
            if LAYER_OF[other.split(".")[0]] > LAYER_OF[name.split(".")[0]]:
                upward.append("%s -> %s" % (name, other))
    assert upward == []


def test_no_import_cycle():
    state, stack, cycles = {}, [], []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for other in sorted(GRAPH[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other)
        stack.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert cycles == []
