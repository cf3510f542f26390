"""The package's layers: every module imports only modules of its own layer or below, nothing
closes a circle, and a function-local import of the package is only for an optional extra."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; a module's layer is the one whose longest prefix names it (docs/ARCHITECTURE.md draws these)
LAYERS = [
    ("ganforge.core",),
    ("ganforge.config",),
    ("ganforge.data", "ganforge.checkpoint"),
    ("ganforge.nets", "ganforge.losses"),
    ("ganforge.generator",),
    ("ganforge.metrics", "ganforge.recipes", "ganforge.explore", "ganforge.onnx_export"),
    ("ganforge.engine",),
    ("ganforge.report",),
    ("ganforge.validate", "ganforge.autoconfig"),
    ("ganforge.training",),
    ("ganforge.api",),
    ("ganforge.cli", "ganforge.serve"),
    ("ganforge", "ganforge.__main__"),  # the package's face: nothing inside imports it
]
# function-local imports of the package: each an optional extra that must not load at import
OPTIONAL = {("ganforge.api", "ganforge.onnx_export"), ("ganforge.cli.serve", "ganforge.serve.app"),
            ("ganforge.engine.run", "ganforge.engine.tensorboard")}


def modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for f in (src / "ganforge").rglob("*.py"):
        rel = f.relative_to(src).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return out


def imports(mods: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """(importer, imported, at the top level) for every import of the package itself."""
    found = []
    for name, f in mods.items():
        tree = ast.parse(f.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (f.name == "__init__.py")]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t in mods and t != name:
                    found.append((name, t, id(node) in top))
    return found


def layer(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and to docs/ARCHITECTURE.md)"
    return best[0]


def upward(found) -> list[str]:
    return [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})" for a, b, _ in found if layer(b) > layer(a)]


def circles(found) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for a, b, _ in found:
        graph.setdefault(a, set()).add(b)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_upward_and_nothing_closes_a_circle():
    found = imports(modules())
    assert upward(found) == []
    assert circles(found) == []


def test_function_local_imports_of_the_package_are_optional_extras_only():
    local = {(a, b) for a, b, top in imports(modules()) if not top}
    assert local <= OPTIONAL, local - OPTIONAL


def test_the_check_fails_on_a_deliberate_upward_import(tmp_path):
    """The same check on a copy of the package with one upward import added (data -> api)."""
    import shutil

    shutil.copytree(SRC / "ganforge", tmp_path / "ganforge")
    victim = tmp_path / "ganforge" / "data" / "toy.py"
    victim.write_text("from ganforge import api  # upward\n" + victim.read_text())
    found = imports(modules(tmp_path))
    assert upward(found) == ["ganforge.data.toy (layer 2) imports ganforge.api (layer 10)"]
    assert any("ganforge.data.toy" in c for c in circles(found))  # api imports data: a circle too
