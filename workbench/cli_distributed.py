"""`--nproc N` on `workbench train`, `distill` and `run`: the same command, started N times
by torch's elastic launcher (`python -m torch.distributed.run`), never by a launcher of ours.

Started by `torchrun` (or by this), a command sees `WORLD_SIZE` and trains data-parallel;
rank 0 alone prints and writes files. `--max-restarts R` lets the elastic agent restart the
workers after a failure; they resume from the last checkpoint.
"""

from __future__ import annotations

import argparse
import subprocess
from typing import Any

from workbench.core.train.distributed import launch_command

__all__ = ["add_launch_options", "launch", "launch_command", "main_only", "needs_launch"]


def add_launch_options(p: argparse.ArgumentParser, strategy: bool = True) -> None:
    """The launch flags of a training command (`strategy`: with --strategy)."""
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train data-parallel in N processes on this machine (torch's elastic "
                   "launcher; under torchrun the world size comes from it)")
    p.add_argument("--max-restarts", type=int, default=0, metavar="R",
                   help="with --nproc: restart failed workers up to R times; they resume "
                   "from the last checkpoint")
    if strategy:
        p.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp",
                       help="with several processes: replicate the model (ddp) or shard "
                       "it (fsdp)")


def needs_launch(args: argparse.Namespace) -> bool:
    """True when the command asks for several processes and no launcher started it."""
    from workbench.core.train.distributed import context

    return int(getattr(args, "nproc", 1) or 1) > 1 and not context().enabled


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    """Run `workbench ARGV` under torch's elastic launcher; its exit code."""
    # without --checkpoint-dir every rank picks the same folder from the elastic run id
    cmd = launch_command(argv, args.nproc, args.max_restarts)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:  # the agent got the same Ctrl-C and stops its workers
        return 130


def main_only(show: Any) -> Any:
    """`show` on rank 0, a no-op on the other ranks (one progress display per run)."""
    from workbench.core.train.distributed import is_main_process

    return show if is_main_process() else (lambda step: None)
