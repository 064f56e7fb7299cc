"""Run the firmware's pure-module tests without pytest: on the MicroPython unix port
(``micropython firmware/tests/run.py`` from the repository root) or on CPython."""

import sys

if "" not in sys.path:
    sys.path.insert(0, "")
sys.path.insert(0, "firmware")  # flat imports, as on the board

MODULES = ("test_fw_protocol", "test_fw_board")


def main():
    failed = passed = 0
    sys.path.insert(0, "firmware/tests")
    for name in MODULES:
        module = __import__(name)
        for attr in sorted(dir(module)):
            if not attr.startswith("test_"):
                continue
            try:
                getattr(module, attr)()
                passed += 1
            except Exception as exc:  # report every failure, then fail
                failed += 1
                print("FAIL %s.%s: %s %s" % (name, attr, type(exc).__name__, exc))
    print("%d passed, %d failed on %s" % (passed, failed, sys.implementation.name))
    sys.exit(1 if failed else 0)


main()
