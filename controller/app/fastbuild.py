"""``make fast``: compile the simulator's hot modules with mypyc into ``build/fast``.

``python -m controller.app.fastbuild [--out DIR]`` compiles ``fastload.COMPILED`` (gcc and the
venv's mypy, which ships mypyc) into a fresh folder and writes its manifest last: the modules'
extension files and the SHA-256 of every source the build depends on (the compiled modules
and, transitively, every project module they import). ``controller.core.fastload`` uses the
build only while all those hashes still match. Optional: nothing else needs it, the Pi never
runs it, and the pure-Python modules stay the reference.
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from controller.core import fastload

PROJECT = ("controller", "hal", "sim", "firmware")


def source_of(module: str) -> Path | None:
    """The project source file of a dotted module name (a package's ``__init__.py``)."""
    base = fastload.ROOT / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def dependencies(modules: tuple[str, ...]) -> list[Path]:
    """Every project source the modules import, transitively (their packages' ``__init__``
    included): mypyc may fold their constants and types into the compiled code."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and its parent packages
            mod = ".".join(parts[:i])
            path = source_of(mod)
            if mod in seen or path is None:
                continue
            seen[mod] = path
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.split(".")[0] in PROJECT]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    if node.module.split(".")[0] in PROJECT:
                        todo.append(node.module)
                        todo += [f"{node.module}.{a.name}" for a in node.names]
    return sorted(set(seen.values()))


SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
out, files = sys.argv[1], sys.argv[2:]
setup(
    name="invtable_fast",
    ext_modules=mypycify(files, opt_level="3"),
    script_args=["build_ext", "--build-lib", out + "/lib", "--build-temp", out + "/tmp"],
)
"""


def build(out: Path) -> int:
    files = [source_of(m) for m in fastload.COMPILED]
    sources = dependencies(fastload.COMPILED)
    hashes = {str(p.relative_to(fastload.ROOT)): fastload.source_hash(p) for p in sources}
    with tempfile.TemporaryDirectory(prefix="invtable-fast-") as tmp:
        # Run in an empty folder: setuptools would otherwise read the project's pyproject.toml.
        done = subprocess.run(
            [sys.executable, "-c", SETUP, tmp, *[str(f) for f in files]],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if done.returncode != 0:
            print(done.stdout[-4000:], file=sys.stderr)
            print(
                "fastbuild: mypyc failed; nothing installed (pure Python is used)", file=sys.stderr
            )
            return 1
        lib = Path(tmp) / "lib"
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        modules = {
            str(p.relative_to(lib))[: -len(suffix)].replace("/", "."): str(p.relative_to(lib))
            for p in lib.rglob("*" + suffix)
        }
        if any(m not in modules for m in fastload.COMPILED):
            print(
                f"fastbuild: expected {fastload.COMPILED}, built {sorted(modules)}", file=sys.stderr
            )
            return 1
        # Replace the old build whole; the manifest goes in last, so an interrupted build is
        # never used (no manifest, no compiled modules).
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(lib, out)
    manifest = {"suffix": suffix, "modules": modules, "sources": hashes}
    (out / (fastload.MANIFEST + ".tmp")).write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(out / (fastload.MANIFEST + ".tmp"), out / fastload.MANIFEST)
    print(f"compiled {len(fastload.COMPILED)} modules into {out} ({len(hashes)} sources hashed)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m controller.app.fastbuild", description=__doc__)
    ap.add_argument("--out", type=Path, default=fastload.FAST_DIR)
    return build(ap.parse_args(argv).out)


if __name__ == "__main__":
    sys.exit(main())
