"""CLI flags generated from declared parameters (`workbench.core.params.param`).

`TrainConfig` and `BenchConfig` declare each setting once; the flags here, the GUI forms
and the validation all come from that declaration, so defaults cannot drift apart.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from workbench.core.params import ParamSpec

log = logging.getLogger(__name__)


def add_param_flags(parser: argparse.ArgumentParser, specs: list[ParamSpec],
                    aliases: Mapping[str, str] | None = None) -> None:
    """One `--flag` per spec (underscores become dashes; `aliases` adds older names).

    Every flag defaults to None, so only what the user typed reaches `parse`, and the
    declared default applies otherwise.
    """
    aliases = aliases or {}
    for spec in specs:
        names = [f"--{spec.name.replace('_', '-')}"]
        if spec.name in aliases:
            names.append(aliases[spec.name])
        default = ", ".join(map(str, spec.default)) if isinstance(spec.default, list) else (
            "unset" if spec.default is None else spec.default)
        help_text = f"{spec.help} (default: {default})" if spec.help else f"default: {default}"
        if spec.type == "bool":
            parser.add_argument(*names, dest=spec.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
            continue
        kind: Any = {"int": int, "float": float}.get(spec.type, str)
        parser.add_argument(*names, dest=spec.name, type=kind, default=None,
                            choices=list(spec.choices) if spec.choices else None,
                            metavar="1,8,32" if spec.type == "list" else None, help=help_text)


def given(args: argparse.Namespace, specs: list[ParamSpec]) -> dict[str, Any]:
    """The declared settings the user typed on the command line."""
    return {s.name: getattr(args, s.name) for s in specs
            if getattr(args, s.name, None) is not None}
