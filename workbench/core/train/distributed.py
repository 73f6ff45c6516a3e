"""Data-parallel training under `torch.distributed`, detected from the launcher's environment.

`torchrun` (or `workbench train --nproc N`, which starts torch's elastic launcher) sets
`WORLD_SIZE`, `RANK` and `LOCAL_RANK`; with a world of more than one process, training joins
the process group (gloo on the CPU, NCCL on CUDA) and wraps the model in
`DistributedDataParallel` or, as an option, shards it with FSDP (`fully_shard`). Everything
here is a no-op in a single process.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InvalidParameterError

STRATEGIES = ("ddp", "fsdp")
METRICS_ENV = "WORKBENCH_METRICS"  # a launched run's epochs, for the window to tail


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run: its rank among `world_size` processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> DistContext:
    """The launcher's view of this process (a single process when nothing launched it)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return DistContext(int(os.environ.get("RANK", "0") or 0), world,
                       int(os.environ.get("LOCAL_RANK", "0") or 0))


def is_main_process() -> bool:
    """True unless this is a rank other than 0 of a distributed run (rank 0 writes files)."""
    return context().is_main


def restart_count() -> int:
    """How many times the elastic agent restarted the workers (0 on a first start)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def run_id() -> str | None:
    """The elastic run's id, the same for every rank and across restarts (None outside one)."""
    value = os.environ.get("TORCHELASTIC_RUN_ID")
    return value if value and value != "none" else None


def setup(device: str) -> DistContext:
    """Join the process group when launched with several processes; return the context."""
    ctx = context()
    if not ctx.enabled:
        return ctx
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        # the elastic agent's store outlives a restart: the keys of the killed attempt (its
        # workers' addresses) would be read again, so every attempt gets its own prefix
        store, rank, world = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"workbench/attempt_{restart_count()}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world)
        atexit.register(_close)
    return ctx


def _close() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str, ctx: DistContext) -> str:
    """This rank's device: `cuda` becomes `cuda:LOCAL_RANK` when distributed."""
    if ctx.enabled and device in ("cuda", "cuda:0") and ctx.world_size > 1:
        import torch

        device = f"cuda:{ctx.local_rank}"
        torch.cuda.set_device(ctx.local_rank)
    return device


def wrap(model: Any, ctx: DistContext, strategy: str, device: str) -> Any:
    """`model` wrapped for data parallelism (DDP) or sharded in place (FSDP)."""
    if not ctx.enabled:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        return fully_shard(model)
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
    return DistributedDataParallel(model, device_ids=ids)


def all_sum(values: list[float], device: str = "cpu") -> list[float]:
    """Element-wise sums of `values` over every rank (the values themselves alone)."""
    if not context().enabled:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def all_sum_tensor(t: Any) -> Any:
    """`t` summed over every rank, in place (returned)."""
    if context().enabled:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def any_rank(flag: bool, device: str = "cpu") -> bool:
    """True on every rank when `flag` is true on any (a stop agreed by all)."""
    if not context().enabled:
        return flag
    return all_sum([1.0 if flag else 0.0], device)[0] > 0


def broadcast_masks(masks: dict[str, Any]) -> dict[str, Any]:
    """Rank 0's masks on every rank (pruned weights must be zero in every replica)."""
    if not context().enabled:
        return masks
    import torch
    import torch.distributed as dist

    out = {}
    for name, mask in sorted(masks.items()):
        t = mask.to(torch.uint8)
        dist.broadcast(t, 0)
        out[name] = t.bool()
    return out


def broadcast_buffers(module: Any) -> None:
    """Rank 0's buffers (BatchNorm statistics) in `module` on every rank: each rank's last
    training step updated them from its own shard, so every replica evaluates one model."""
    if not context().enabled:
        return
    import torch.distributed as dist

    for buf in module.buffers():
        dist.broadcast(buf.data, 0)


def agree(value: Any) -> Any:
    """Rank 0's `value` (any picklable object) on every rank."""
    if not context().enabled:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, 0)
    return box[0]


def full_state(model: Any, ctx: DistContext, strategy: str) -> dict[str, Any]:
    """The whole model's state on every rank (a collective under FSDP), on the CPU."""
    if ctx.enabled and strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # without cpu_offload every rank gets the whole state (with it, rank 0 alone)
        state: dict[str, Any] = get_model_state_dict(
            model, options=StateDictOptions(full_state_dict=True))
        return {k: v.detach().cpu().clone() for k, v in state.items()}
    inner = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}


def optimizer_state(model: Any, opt: Any, ctx: DistContext, strategy: str) -> dict[str, Any]:
    """The optimizer's whole state (a collective under FSDP)."""
    if ctx.enabled and strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        state: dict[str, Any] = get_optimizer_state_dict(
            model, opt, options=StateDictOptions(full_state_dict=True))
        return state
    result: dict[str, Any] = opt.state_dict()
    return result


def load_optimizer_state(model: Any, opt: Any, state: dict[str, Any], ctx: DistContext,
                         strategy: str) -> None:
    """Load an optimizer state written by `optimizer_state`."""
    if ctx.enabled and strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(model, opt, state,
                                 options=StateDictOptions(full_state_dict=True))
        return
    opt.load_state_dict(state)


def shard_masks(model: Any, masks: dict[str, Any], strategy: str) -> dict[str, Any]:
    """Masks laid out like the parameters they apply to (DTensor shards under FSDP)."""
    if not masks or strategy != "fsdp" or not context().enabled:
        return masks
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = dict(model.named_parameters())
    out = {}
    for name, mask in masks.items():
        p = params.get(name)
        if isinstance(p, DTensor):
            out[name] = distribute_tensor(mask.to(p.dtype), p.device_mesh, p.placements)
        elif p is not None:
            out[name] = mask
    return out


def launch_command(argv: list[str], nproc: int, max_restarts: int = 0) -> list[str]:
    """The `torch.distributed.run` command line that runs `workbench ARGV` in `nproc`
    processes on this machine (the workers see WORLD_SIZE and do not launch again)."""
    if nproc < 1 or max_restarts < 0:
        raise InvalidParameterError("--nproc must be at least 1 and --max-restarts at least 0.")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts),
            "-m", "workbench", *_without_launch_flags(argv)]


def _without_launch_flags(argv: list[str]) -> list[str]:
    """`argv` less --nproc and --max-restarts (the launcher's, which its parser would take)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in ("--nproc", "--max-restarts"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def record_epoch(record: dict[str, Any]) -> None:
    """On rank 0 of a launched run, append an epoch's record for the window to tail."""
    path = os.environ.get(METRICS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
