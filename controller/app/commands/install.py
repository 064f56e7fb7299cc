"""``invtable install-service``: the systemd unit, the service user and the default config."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    install = sub.add_parser(
        "install-service",
        help="install the systemd unit, the invtable user and /etc/invtable/config.toml",
    )
    install.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="write under this folder instead of / (changes nothing else)",
    )
    install.set_defaults(handler=install_service)


def install_service(args: argparse.Namespace) -> int:
    from controller.app.install import default_executable, install

    return install(args.root, default_executable())
