"""`workbench zoo`: the built-in models, their input shapes, and which ship trained weights."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli_output import print_json


def add_zoo_parser(sub: Any) -> None:
    """Register `workbench zoo` on the CLI's subparsers."""
    p = sub.add_parser("zoo", help="list the built-in models and which are trained")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_zoo)


def cmd_zoo(args: argparse.Namespace) -> int:
    """Print one line per zoo model (or a JSON list)."""
    from workbench.core.model.zoo import ZOO

    rows = []
    for entry in ZOO.values():
        weights = entry.trained()
        rows.append({
            "name": f"zoo:{entry.name}", "description": entry.description,
            "input_shape": list(entry.input_shape), "classes": entry.num_classes,
            "pretrained": entry.pretrained, "trained_on": weights.dataset if weights else None,
            "val_accuracy": weights.val_accuracy if weights else None,
            "test_accuracy": weights.test_accuracy if weights else None})
    if args.json:
        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r, entry in zip(rows, ZOO.values(), strict=True):
        weights = entry.trained()
        shape = "×".join(map(str, r["input_shape"]))
        state = f"trained: {weights.label()}" if weights else (
            "pretrained" if entry.pretrained else "untrained")
        print(f"{r['name']:<{width}}  {shape:<12} {state:<28} {r['description']}")
    print("Trained models load their weights by default; add ?trained=false for the "
          "untrained one (such as zoo:resnet-mini?trained=false).")
    return 0
