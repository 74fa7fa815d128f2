"""DESIGN.md's layers: a module only imports layers below its own."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rootless"

# Lower layers first; a module may import its own layer and those listed before it.
ORDER = ["errors", "records", "_shim", "kernel", "runtime", "fs", "net", "store", "image", "build",
         "engine", "oci", "cli"]
SAME_RANK = {"fs": 3, "net": 3, "store": 3, "image": 3, "build": 3}


def rank(layer: str) -> int:
    if layer in SAME_RANK:
        return SAME_RANK[layer]
    return {"errors": 0, "records": 0, "_shim": 0, "__init__": 0, "kernel": 1, "runtime": 2,
            "engine": 4, "oci": 5, "cli": 6}[layer]


def imported_layers(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "rootless" and len(parts) > 1:
                yield parts[1]


def test_layers_only_import_downward():
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for layer in imported_layers(path):
            allowed = rank(layer) < rank(own) or layer == own
            if own in SAME_RANK and layer in SAME_RANK and layer != own:
                allowed = (own, layer) in {("image", "store"), ("build", "image"),
                                           ("build", "store"), ("fs", "store")}
            if own == "oci" and layer == "engine":
                allowed = False
            if not allowed:
                problems.append(f"{rel} imports rootless.{layer}")
    assert not problems, "\n".join(problems)


def test_runtime_never_imports_trio():
    for path in (SRC / "runtime").rglob("*.py"):
        assert "import trio" not in path.read_text(), path
