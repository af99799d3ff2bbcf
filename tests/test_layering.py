"""The package layering of docs/ARCHITECTURE.md holds: no package imports one above it, nor another's private name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "snnc"
#: Bottom to top; a module may import only from its own package or from one listed before it.
LAYERS = (
    "errors",
    "serial",
    "version",
    "fileio",
    "signals",
    "h5write",
    "outputs",
    "checkpoint",
    "zoo",
    "neurons",
    "data",
    "models",
    "energy",
    "export",
    "quant",
    "runtime",
    "train",
    "nas",
    "commands",
    "cli",
    "__main__",
    "__init__",
)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("snnc."):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("snnc.")]
    return found


def test_no_package_imports_a_package_above_it():
    rank = {name: i for i, name in enumerate(LAYERS)}
    up, private, unknown = [], [], set()
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own not in rank:
            unknown.add(own)
            continue
        for module, names in _imports(path):
            target = module.split(".")[1]
            if target not in rank:
                unknown.add(target)
            elif target != own and rank[target] > rank[own]:
                up.append(f"{rel} imports {module}")
            if target != own:
                private += [f"{rel} imports {module}.{n}" for n in names if n.startswith("_")]
    assert not unknown, f"packages missing from LAYERS (add them where they belong): {sorted(unknown)}"
    assert not up, up
    assert not private, private
