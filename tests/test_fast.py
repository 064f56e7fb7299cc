"""`make fast` (controller/core/fastload.py): the compiled modules change nothing but speed,
and a build that no longer matches its sources is never used.

The comparison needs a build (`make fast`) and skips with a message without one: it is a
performance feature, the pure-Python modules are the reference and the default. The checks
of the stale-build guard need no build: they run on a folder made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.core import fastload

ROOT = Path(__file__).resolve().parent.parent

# A few scenarios that cover the session, the faults, the e-stop, the way back and the summary's
# corner cases (an int 0 for the time past horizontal), on the simulator and on gpio-mock.
SCENARIOS = [
    "first_session.toml",
    "estop.toml",
    "fault_sensor_stuck.toml",
    "way_back_supervised.toml",
    "stranded/stranded_6b_cooldown.toml",
]

PROBE = """
import json, sys
from controller.core import fastload
from sim.trace_digests import digests
print(json.dumps({"status": fastload.in_use(),
                  "digests": {b: digests(b, set(sys.argv[1:])) for b in ("sim", "gpio-mock")}}))
"""


def _no_build(why: str) -> None:
    """Skip, with the reason; in CI (``.ci/run`` sets INVTABLE_REQUIRE_FAST after `make
    fast`) a missing or unused build is a failure instead."""
    if os.environ.get("INVTABLE_REQUIRE_FAST"):
        pytest.fail(why)
    pytest.skip(why)


def _probe(pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != fastload.PURE_ENV}
    if pure:
        env[fastload.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *SCENARIOS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


def test_compiled_modules_write_the_same_traces_and_summaries() -> None:
    if not (fastload.FAST_DIR / fastload.MANIFEST).is_file():
        _no_build("no compiled build (run `make fast` to compare it with pure Python)")
    compiled = _probe(pure=False)
    if not compiled["status"]["compiled"]:
        _no_build(f"the compiled build is not used: {compiled['status']['reason']}")
    assert set(compiled["status"]["loaded"]) == set(fastload.COMPILED)
    pure = _probe(pure=True)
    assert pure["status"]["compiled"] is False and pure["status"]["loaded"] == []
    for backend in ("sim", "gpio-mock"):
        assert sorted(compiled["digests"][backend]) == sorted(SCENARIOS)
        assert compiled["digests"][backend] == pure["digests"][backend], backend


def _fake_build(folder: Path, sources: dict[str, str]) -> None:
    """A build folder with one (empty) extension file and a manifest over ``sources``."""
    suffix = fastload.importlib.machinery.EXTENSION_SUFFIXES[0]
    (folder / "sim").mkdir(parents=True)
    (folder / "sim" / f"physics{suffix}").write_bytes(b"")
    manifest = {"suffix": suffix, "modules": {"sim.physics": f"sim/physics{suffix}"}}
    manifest["sources"] = sources
    (folder / fastload.MANIFEST).write_text(json.dumps(manifest))


def test_a_build_of_these_sources_is_accepted(tmp_path: Path) -> None:
    src = "sim/physics.py"
    _fake_build(tmp_path, {src: fastload.source_hash(ROOT / src)})
    files, why = fastload._verify(tmp_path)
    assert why == "" and files is not None and set(files) == {"sim.physics"}


def test_a_changed_source_makes_the_whole_build_unused(tmp_path: Path) -> None:
    _fake_build(
        tmp_path,
        {
            "sim/physics.py": fastload.source_hash(ROOT / "sim/physics.py"),
            "controller/core/limits.py": "0" * 64,  # built from another version
        },
    )
    files, why = fastload._verify(tmp_path)
    assert files is None and "controller/core/limits.py changed" in why


def test_a_build_for_another_python_or_with_a_file_missing_is_unused(tmp_path: Path) -> None:
    src = "sim/physics.py"
    _fake_build(tmp_path, {src: fastload.source_hash(ROOT / src)})
    manifest = json.loads((tmp_path / fastload.MANIFEST).read_text())
    (tmp_path / fastload.MANIFEST).write_text(json.dumps({**manifest, "suffix": ".cpython-99.so"}))
    assert fastload._verify(tmp_path)[0] is None
    (tmp_path / fastload.MANIFEST).write_text(json.dumps(manifest))
    next(tmp_path.rglob("physics*")).unlink()
    files, why = fastload._verify(tmp_path)
    assert files is None and why.startswith("missing")


def test_a_stale_build_warns_and_runs_pure_python(tmp_path: Path) -> None:
    """In a fresh process: the warning on stderr, no compiled module, the run goes on."""
    _fake_build(tmp_path, {"sim/physics.py": "0" * 64})
    probe = (
        "import json\n"
        "from controller.core import fastload\n"
        "import sim.physics\n"
        "print(json.dumps([fastload.status['compiled'], sim.physics.__file__]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != fastload.PURE_ENV}
    env["INVTABLE_FAST_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    compiled, file = json.loads(done.stdout)
    assert compiled is False and file.endswith("sim/physics.py")
    assert "not using the compiled modules" in done.stderr
    assert "sim/physics.py changed since the build" in done.stderr


def _campaign(out: Path, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != fastload.PURE_ENV}
    if pure:
        env[fastload.PURE_ENV] = "1"
    # Not --quiet: the banner on stderr says which simulator ran.
    args = ["--runs", "8", "--seed", "11", "--jobs", "1", "--max-faults", "3"]
    return subprocess.run(
        [sys.executable, "-m", "controller", "campaign", "--out", str(out), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_a_campaign_gives_the_same_verdicts_compiled_and_pure(tmp_path: Path) -> None:
    """Random sessions with up to three faults each (the controller's rarer paths: faults,
    recoveries, the way back), their verdicts, shrunk failures and counts: the same bytes."""
    if not (fastload.FAST_DIR / fastload.MANIFEST).is_file():
        _no_build("no compiled build (run `make fast` to compare it with pure Python)")
    runs = {}
    for pure in (False, True):
        out = tmp_path / ("pure" if pure else "compiled")
        done = _campaign(out, pure)
        assert done.returncode in (0, 1), done.stderr
        assert "not using the compiled modules" not in done.stderr, done.stderr
        ran = "pure Python" if pure else "compiled modules (make fast)"
        assert f"simulator: {ran}" in done.stderr, done.stderr
        data = json.loads((out / "campaign.json").read_text())
        data.pop("wall_s")
        failures = {p.name: p.read_bytes() for p in sorted((out / "failures").glob("*.toml"))}
        runs[pure] = (data, failures)
    assert runs[False][0] == runs[True][0]
    assert runs[False][1] == runs[True][1]
