"""The layers run one way (issue 14): ``controller.app`` -> ``sim`` -> ``controller.core`` ->
``hal`` -> ``firmware``. Every import in every module is checked, the ones inside functions
too, so a convenient upward import cannot creep in unseen. docs/architecture.md says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# layer -> the top-level packages (or subpackages) it may import from the project
ALLOWED = {
    "firmware": {"firmware"},
    "hal": {"hal", "firmware"},
    "controller.core": {"controller.core", "hal", "firmware"},
    "sim": {"sim", "controller.core", "hal", "firmware"},
    "controller.app": {"controller.app", "controller.core", "sim", "hal", "firmware"},
}
PROJECT = ("controller", "hal", "sim", "firmware")


def layer_of(module: str) -> str | None:
    """The most specific layer a dotted module name belongs to."""
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every project import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # "from sim import machine_shim": the names may be submodules
            found += [
                (node.lineno, f"{node.module}.{a.name}")
                for a in node.names
                if (ROOT / node.module.replace(".", "/") / f"{a.name}.py").exists()
            ]
    return [(line, m) for line, m in found if m.split(".")[0] in PROJECT]


def sources() -> list[Path]:
    out = []
    for top in PROJECT:
        out += [p for p in (ROOT / top).rglob("*.py") if "tests" not in p.relative_to(ROOT).parts]
    return sorted(out)


def test_every_module_belongs_to_a_layer() -> None:
    stray = [module_name(p) for p in sources() if layer_of(module_name(p)) is None]
    # controller/__init__.py and __main__.py (the `python -m controller` entry) are the
    # package's door
    assert set(stray) <= {"controller", "controller.__main__"}, stray


def test_imports_run_one_way() -> None:
    upward = []
    for path in sources():
        mod = module_name(path)
        layer = layer_of(mod)
        if layer is None:
            continue
        for line, imported in imports_of(path):
            target = layer_of(imported)
            if target is None or target not in ALLOWED[layer]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({layer}) imports {imported}")
    assert upward == []


def test_the_check_would_see_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import inside a function is found, and judged against its layer."""
    f = tmp_path / "x.py"
    f.write_text("def later():\n    from controller.app.cli import main\n    import sim.runner\n")
    assert [m for _, m in imports_of(f)] == ["controller.app.cli", "sim.runner"]
    assert "controller.app" not in ALLOWED["sim"] and "sim" not in ALLOWED["controller.core"]


@pytest.mark.parametrize("folder", ["controller"])
def test_controller_logic_never_reads_the_wall_clock(folder: str) -> None:
    """Time is injected: only controller/core/clock.py may touch time.* (DESIGN section 4),
    in the core and in the app alike (the service gets real time through the same clock, and
    the benchmark its stopwatch)."""
    offenders = []
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert len(paths) > 20  # the rule covers the modules, not an empty folder
    for path in paths:
        if path.relative_to(ROOT).as_posix() == "controller/core/clock.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
            ):
                offenders.append(f"{path.name}:{node.lineno} time.{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) else []
                )
                if "time" in names:
                    offenders.append(f"{path.name}:{node.lineno} imports time")
    assert offenders == []
