"""The layer rules, checked on every import in the package (lazy, function-local ones too).

    cli -> api -> pipelines -> runtime, jobs -> {graph, rl} -> agents -> {models, video,
    storage, evals} -> config, errors

Each part may import only the parts in its row of `ALLOWED` (and itself). A new edge is a
design decision: add it here, in review, with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vidra"

# vidra.phrases: caption/query phrase matching, pure text, shared by the store's ranking
# and the selector's tools so both read a query alike
BASE = {"vidra.errors", "vidra.config", "vidra.phrases"}
LEAVES = BASE | {"vidra.video", "vidra.storage", "vidra.ray_session"}
BELOW_GRAPH = LEAVES | {"vidra.models", "vidra.agents"}
BELOW_RUNTIME = BELOW_GRAPH | {"vidra.graph", "vidra.rl", "vidra.evals"}
ALLOWED: dict[str, set[str]] = {
    "vidra.errors": set(),
    "vidra.phrases": set(),
    "vidra.config": {"vidra.errors"},
    "vidra.ray_session": BASE,
    "vidra.video": BASE,
    "vidra.storage": BASE,
    "vidra.evals": BASE | {"vidra.video"},
    "vidra.models": BASE | {"vidra.video"},
    "vidra.agents": BASE | {"vidra.models", "vidra.video"},
    "vidra.graph": BELOW_GRAPH,  # no rl: rewards arrive through Deps
    "vidra.rl": BELOW_GRAPH,  # no graph
    "vidra.indexing": BELOW_GRAPH,  # the index builder: captioner (agents) + store + video
    "vidra.runtime": BELOW_RUNTIME | {"vidra.indexing"},
    "vidra.jobs": BELOW_RUNTIME | {"vidra.runtime", "vidra.indexing"},
    "vidra.pipelines": BELOW_RUNTIME | {"vidra.runtime", "vidra.jobs", "vidra.indexing"},
    "vidra.api": BELOW_RUNTIME | {"vidra.runtime", "vidra.jobs", "vidra.pipelines"},
    "vidra.cli": BELOW_RUNTIME
    | {"vidra.runtime", "vidra.jobs", "vidra.pipelines", "vidra.api", "vidra", "vidra.indexing"},
    "vidra": BASE | {"vidra.api", "vidra.video"},
    "vidra.__main__": {"vidra.cli"},
}


def _part(module: str) -> str:
    """The `ALLOWED` key a module belongs to (``vidra.graph.nodes`` -> ``vidra.graph``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else "vidra"


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _submodule(name: str) -> str:
    """``vidra.<name>`` when it is a module of the package, else ``vidra`` (an attribute)."""
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return f"vidra.{name}" if is_module else "vidra"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    module = _module(path)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("vidra")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = module.split(".")[: -node.level + (path.name == "__init__.py")]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("vidra"):
                if target == "vidra":  # `from vidra import jobs` names a part
                    out += [(node.lineno, _submodule(a.name)) for a in node.names]
                else:
                    out.append((node.lineno, target))
    return out


def violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _part(_module(path))
        allowed = ALLOWED[here] | {here}
        for line, target in _imports(path):
            there = _part(target)
            if there not in allowed:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports {target}")
    return bad


def test_every_part_of_the_package_has_a_row() -> None:
    parts = {_part(_module(p)) for p in PACKAGE.rglob("*.py")}
    assert parts <= set(ALLOWED), sorted(parts - set(ALLOWED))


def test_no_import_runs_upward_or_across_a_forbidden_edge() -> None:
    assert violations() == []


def test_the_scan_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """A check that could not fail would prove nothing: feed it a bad edge."""
    bad = PACKAGE / "graph" / "_layer_probe.py"
    bad.write_text("def f():\n    from vidra.rl import rewards\n    from ..api import Client\n")
    try:
        found = [v for v in violations() if "_layer_probe" in v]
    finally:
        bad.unlink()
    assert len(found) == 2 and "imports vidra.rl" in found[0] and "vidra.api" in found[1]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_no_part_may_import_the_facade_from_below(part: str) -> None:
    if part in ("vidra", "vidra.__main__", "vidra.cli", "vidra.api"):
        return
    assert "vidra.api" not in ALLOWED[part] and "vidra.cli" not in ALLOWED[part]


def test_the_allowed_edges_have_no_circle() -> None:
    """Parts form a DAG (a part's own modules may import each other)."""
    done: set[str] = set()

    def visit(part: str, path: tuple[str, ...]) -> None:
        assert part not in path, " -> ".join([*path, part])
        if part in done:
            return
        for dep in ALLOWED[part] - {part}:
            visit(dep, (*path, part))
        done.add(part)

    for part in ALLOWED:
        visit(part, ())
