"""``invtable install-service``: the systemd unit, a dedicated user and the default config.

Writes ``/etc/systemd/system/invtable.service`` (ours: replaced on every install) and
``/etc/invtable/config.toml`` (the builder's: written only when absent, never replaced).
With ``--root DIR`` it writes under DIR and changes nothing else (for packaging and
tests); on the real root it also creates the ``invtable`` system user in the ``gpio`` and
``spi`` groups and enables the unit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import TextIO

USER = "invtable"
GROUPS = ("gpio", "spi")
UNIT_PATH = Path("etc/systemd/system/invtable.service")
CONFIG_PATH = Path("etc/invtable/config.toml")
WATCHDOG_S = 1  # the loop pings every 0.5 s; a loop stuck for 1 s is killed and restarted


def unit_text(executable: str) -> str:
    return f"""# Written by `invtable install-service`; replaced on every install.
[Unit]
Description=Inversion table controller
After=local-fs.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={executable} run --config /{CONFIG_PATH}
User={USER}
Group={USER}
SupplementaryGroups={" ".join(GROUPS)}
# The loop tells systemd it is alive; silence for this long means hung: kill and restart
# (the hardware dead-man has stopped the motor within 100 ms already).
WatchdogSec={WATCHDOG_S}s
Restart=on-failure
RestartSec=1s
# SIGTERM: the service stops the motor, opens the relay, engages the brake and exits.
KillSignal=SIGTERM
TimeoutStopSec=5s
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
StateDirectory=invtable

[Install]
WantedBy=multi-user.target
"""


def install(root: Path, executable: str, out: TextIO = sys.stdout) -> int:
    real = root.resolve() == Path("/")
    if real and os.geteuid() != 0:
        print(
            "invtable: error: install-service: needs root (run it with sudo), or use --root DIR "
            "to write the files elsewhere",
            file=sys.stderr,
        )
        return 2
    unit = root / UNIT_PATH
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(unit_text(executable))
    print(f"wrote {unit}", file=out)
    config = root / CONFIG_PATH
    if config.exists():
        print(f"kept {config} (already there; never replaced)", file=out)
    else:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            resources.files("controller.app").joinpath("default_config.toml").read_text()
        )
        print(
            f"wrote {config} (edit it, then: invtable config check {'/' + str(CONFIG_PATH)})",
            file=out,
        )
    steps = [
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--groups",
            ",".join(GROUPS),
            USER,
        ],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "invtable.service"],
    ]
    if not real:
        print("not the real root: skipped " + "; ".join(" ".join(s) for s in steps), file=out)
        return 0
    if subprocess.run(["id", USER], capture_output=True).returncode == 0:
        steps = steps[1:]
        print(f"user {USER} exists", file=out)
    for step in steps:
        print("$ " + " ".join(step), file=out)
        if subprocess.run(step).returncode != 0:
            print(f"invtable: error: install-service: `{' '.join(step)}` failed", file=sys.stderr)
            return 1
    print(
        "installed. Start it with: sudo systemctl start invtable; "
        "follow it with: journalctl -fu invtable",
        file=out,
    )
    return 0


def default_executable() -> str:
    beside = Path(sys.executable).parent / "invtable"
    return str(beside) if beside.exists() else (shutil.which("invtable") or str(beside))
