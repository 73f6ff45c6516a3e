"""`--device` for every command that computes: one argument, one check, one help text."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.core.errors import InvalidParameterError

DEVICE_HELP = "cpu, cuda, cuda:N or mps"


def device_name(text: str) -> str:
    """argparse type: a device torch can use here (`devices.check_device`'s sentence if not,
    which the parser prints as one line)."""
    from workbench.core.devices import check_device

    try:
        return check_device(text.strip())
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_option(p: argparse.ArgumentParser) -> None:
    """`--device DEVICE` (default cpu), checked when the command line is parsed."""
    p.add_argument("--device", type=device_name, default="cpu", metavar="DEVICE",
                   help=f"{DEVICE_HELP} (default cpu)")


def use_device(session: Any, args: argparse.Namespace) -> Any:
    """Every job of this command's `session` runs on `--device` (for this run only: the
    saved settings are not changed)."""
    session.settings.device = args.device
    return session
