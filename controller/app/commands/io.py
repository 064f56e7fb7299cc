"""``invtable io``: bring-up on the Pi, every input live and one output pulsed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from controller.app.commands.common import config_option, fail_input, gpio_problem
from controller.app.iotool import PULSABLE, REFUSED
from controller.core.config import load_config
from controller.core.errors import InputError, Problem

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    io = sub.add_parser(
        "io", help="bring-up on the Pi: show every input live; pulse one output with the relay open"
    )
    config_option(io, "the config file with the pin map, [hardware.gpio] (default: the built-in)")
    io.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    io.add_argument(
        "--pulse",
        metavar="OUTPUT",
        help="pulse one output at 1 Hz: " + ", ".join(PULSABLE) + " (the supply relay stays open)",
    )
    io.set_defaults(handler=run_io)


def run_io(args: argparse.Namespace) -> int:
    from controller.app.iotool import run_io as run_io_tool

    problems = []
    config = None
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    if args.pulse in REFUSED:
        problems.append(Problem("command line", "--pulse", f"{args.pulse}: {REFUSED[args.pulse]}"))
    elif args.pulse is not None and args.pulse not in PULSABLE:
        problems.append(
            Problem(
                "command line",
                "--pulse",
                f"unknown output {args.pulse!r} (pulsable: {', '.join(PULSABLE)})",
            )
        )
    if args.duration < 0:
        problems.append(Problem("command line", "--duration", "must be >= 0"))
    if problems:
        return fail_input(problems)
    assert config is not None
    problem = gpio_problem(args.config)
    if problem:
        return fail_input([problem])
    from gpiozero.exc import PinPWMUnsupported

    from hal.gpio.backend import GpioTable

    try:
        hw = GpioTable(config.hardware.gpio)
    except PinPWMUnsupported:
        return fail_input(
            [
                Problem(
                    "GPIOZERO_PIN_FACTORY",
                    "hardware.gpio.motor_pwm",
                    "this pin factory cannot do PWM (the motor drive needs it); on a Pi use "
                    "lgpio; for mock pins set GPIOZERO_MOCK_PIN_CLASS=mockpwmpin",
                )
            ]
        )
    with hw:
        return run_io_tool(hw, duration=args.duration, pulse=args.pulse)
