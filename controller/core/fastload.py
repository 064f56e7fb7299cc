"""Opt-in compiled modules (``make fast``): the simulator's hot modules built with mypyc, used
only when they were built from exactly the sources in this tree.

Pure Python is the default and the Pi's path. ``make fast`` compiles the modules listed in
``COMPILED`` into a separate folder (``build/fast``, never next to the sources, so Python's own
import system can never pick a compiled module up by itself) with a manifest: the SHA-256 of
every source the build read (the compiled modules and every project module they import, whose
constants mypyc may have folded in). ``install()``, called by ``controller/__init__.py`` and
``sim/__init__.py`` before any of those modules can be imported, puts a finder in front of the
import system for the compiled modules only if every one of those sources still has its
recorded hash; one changed file and the whole build is ignored, with a warning (the modules
call each other natively, so a partial use is not safe). ``INVTABLE_PURE=1`` forces pure
Python. Compiled or not, the behaviour is the same: ``python -m sim.trace_digests --check``
and ``tests/test_fast.py`` compare the bytes of the traces.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

# The folder that holds the packages (controller, hal, sim): the repository in a checkout.
ROOT = Path(__file__).resolve().parent.parent.parent
# Where `make fast` builds and `install` looks; INVTABLE_FAST_DIR names another folder.
FAST_DIR = Path(os.environ.get("INVTABLE_FAST_DIR") or ROOT / "build" / "fast")
MANIFEST = "manifest.json"
PURE_ENV = "INVTABLE_PURE"

# The per-tick modules of the simulator, controller and monitor that mypyc compiles (chosen by
# measurement, docs/performance.md "Third pass" and "Fourth pass"). The controller is one of
# them; `transitions`' model, which takes the triggers it adds at run time, is the plain
# object in controller/core/fsm_model.py, never compiled. Nothing of firmware/ (plain
# MicroPython).
COMPILED = (
    "controller.core.brake_test",
    "controller.core.clock",
    "controller.core.duty",
    "controller.core.limits",
    "controller.core.machine",
    "controller.core.motion",
    "controller.core.motor_loop",
    "controller.core.monitor",
    "controller.core.profile",
    "controller.core.session",
    "sim.physics",
    "sim.table",
    "sim.checks",
    "sim.trace",
    "sim.runner",
    "sim.world",
)

# Why the compiled modules are used or not: "compiled" or the reason for pure Python.
status: dict[str, Any] = {"compiled": False, "reason": "not installed yet"}


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Finder:
    """Finds the compiled modules of a verified build (and mypyc's shared library module)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _verify(folder: Path) -> tuple[dict[str, Path] | None, str]:
    """(module -> extension file, "") for a build that matches the sources, else (None, why)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        if manifest["suffix"] != suffix:
            return None, f"built for {manifest['suffix']!r}, this Python loads {suffix!r}"
        for rel, digest in manifest["sources"].items():
            if not (ROOT / rel).is_file() or source_hash(ROOT / rel) != digest:
                return None, f"{rel} changed since the build"
        files = {name: folder / rel for name, rel in manifest["modules"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable manifest ({exc})"
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        return None, f"missing {missing[0]}"
    return files, ""


def install(folder: Path = FAST_DIR) -> None:
    """Use the compiled modules if ``folder`` holds a build of exactly these sources. Called once
    per process (later calls do nothing); silent when there is no build."""
    if status["reason"] != "not installed yet":
        return
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        status["reason"] = f"{PURE_ENV} is set"
        return
    if not (folder / MANIFEST).is_file():
        status["reason"] = "not built (`make fast` builds them)"
        return
    files, why = _verify(folder)
    imported = [m for m in COMPILED if m in sys.modules]
    if files is not None and imported:
        files, why = None, f"{imported[0]} was imported before the check"
    if files is None:
        status["reason"] = f"stale build in {folder}: {why}"
        warnings.warn(
            f"invtable: not using the compiled modules in {folder} ({why}); running pure "
            "Python. Run `make fast` to rebuild them, or delete the folder.",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    sys.meta_path.insert(0, _Finder(files))  # type: ignore[arg-type]
    status.update(compiled=True, reason=f"compiled modules from {folder}")


def in_use() -> dict[str, Any]:
    """For reports (``invtable bench``): whether the compiled modules are used, and which."""
    loaded = [
        m for m in COMPILED if m in sys.modules and not str(sys.modules[m].__file__).endswith(".py")
    ]
    return {"compiled": status["compiled"], "reason": status["reason"], "loaded": loaded}
