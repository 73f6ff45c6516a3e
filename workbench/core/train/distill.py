"""Knowledge distillation, parameter transfer, and iterative prune-and-fine-tune."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.core import rank_probe
from workbench.core.errors import InvalidParameterError
from workbench.core.events import RoundDone, RoundStarted
from workbench.core.jobs import CancelledError, CancelToken, Job, Progress
from workbench.core.model.variant import Variant, set_mode
from workbench.core.train.data import Dataset
from workbench.core.train.training import TrainConfig, TrainResult, evaluate, train

log = logging.getLogger(__name__)


def teacher_logits(teacher: Variant, dataset: Dataset, split: str = "train",
                   device: str = "cpu") -> Any:
    """The teacher's outputs on a split (on the CPU), computed once and cached by the caller.

    Works for torch teachers (run in eval mode on `device`, every rank of a distributed run
    alike) and for ONNX teachers (run with ONNX Runtime).
    """
    import torch

    x, _ = dataset.part(split)
    if teacher.backend == "torch":
        # a copy on another device: the teacher variant itself never moves
        model = teacher.model if device == "cpu" else copy.deepcopy(teacher.model).to(device)
        set_mode(model, False)
        before = dict(model.named_buffers()) if rank_probe.enabled() else {}
        before = {k: v.clone() for k, v in before.items()}
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        with torch.no_grad():
            logits = torch.cat([model(x[i:i + 256].to(device, dtype)).float().cpu()
                                for i in range(0, len(x), 256)])
        if rank_probe.enabled():  # the multi-process tests: eval mode on every rank
            rank_probe.probe("teacher", training=any(m.training for m in model.modules()),
                             buffers_before=rank_probe.digest(before),
                             buffers_after=rank_probe.digest(dict(model.named_buffers())),
                             batchnorms=sum("BatchNorm" in type(m).__name__
                                            for m in model.modules()),
                             logits=rank_probe.digest({"logits": logits}))
        return logits
    from workbench.core.model.runtime import run_variant

    return torch.cat([torch.as_tensor(run_variant(teacher, (x[i:i + 256],))).float()
                      for i in range(0, len(x), 256)])


def transfer_parameters(teacher: Any, student: Any) -> list[str]:
    """Copy every teacher tensor whose name and shape match into the student; return names."""
    import torch

    own = student.state_dict()
    copied = []
    with torch.no_grad():
        for name, t in teacher.state_dict().items():
            if name in own and own[name].shape == t.shape and own[name].dtype == t.dtype:
                own[name].copy_(t)
                copied.append(name)
    return copied


def distill(teacher: Variant, student: Variant, dataset: Dataset, cfg: TrainConfig,
            temperature: float = 4.0, alpha: float = 0.7, transfer: bool = False,
            cancel: CancelToken | None = None) -> Job[TrainResult]:
    """Train `student` against the teacher's softened outputs (plus the labels)."""
    if temperature <= 0:
        raise InvalidParameterError("The temperature must be positive.")
    if not 0 <= alpha <= 1:
        raise InvalidParameterError("alpha must be between 0 and 1.")
    yield Progress(0.0, "Computing the teacher's outputs…")
    from workbench.core.train import distributed as dd

    device = dd.rank_device(cfg.device, dd.setup(cfg.device))  # this rank's GPU, if any
    logits = teacher_logits(teacher, dataset, "train", device)
    if dataset.task != "classification" or logits.ndim != 2:
        raise InvalidParameterError("Distillation needs a classification teacher and dataset.")
    if transfer:
        # a copy with the same id: the student variant itself is never changed
        student = dataclasses.replace(student, model=copy.deepcopy(student.model))
        copied = transfer_parameters(teacher.model, student.model) \
            if teacher.backend == "torch" else []
        yield Progress(0.0, f"Transferred {len(copied)} tensors from the teacher")
    # the student trains on a copy; train() never touches `student`
    result = yield from train(student, dataset, cfg, cancel, teacher_logits=logits,
                              temperature=temperature, alpha=alpha,
                              name=f"{student.name}·distilled")
    # the lineage names the teacher (its own lineage), so the recipe replays on its own
    step = result.variant.recipe[-1]
    named = {"pass": step["pass"], "params": {**step["params"], "transfer": transfer,
                                              "teacher": _lineage(teacher)}}
    result.variant = dataclasses.replace(result.variant,
                                         recipe=(*result.variant.recipe[:-1], named))
    return result


def _lineage(variant: Variant) -> dict[str, Any]:
    """A variant's source, load options (never trust) and steps, as a nested recipe."""
    load = {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in variant.metadata.get("load_options", {}).items()
            if v is not None and k != "trust"}
    return {"source": variant.source, "load": load, "steps": [dict(s) for s in variant.recipe]}


@dataclass
class PruneRound:
    round: int
    sparsity: float
    accuracy: float
    variant: Variant
    within_budget: bool


@dataclass
class PruneSchedule:
    baseline_accuracy: float
    rounds: list[PruneRound] = field(default_factory=list)

    def curve(self) -> list[tuple[float, float]]:
        """(sparsity, accuracy) points, starting at the dense baseline."""
        return [(0.0, self.baseline_accuracy)] + [(r.sparsity, r.accuracy) for r in self.rounds]


def prune_finetune(variant: Variant, dataset: Dataset, rounds: int = 4, step: float = 0.2,
                   cfg: TrainConfig | None = None, budget: float = 0.01,
                   cancel: CancelToken | None = None,
                   finetune: Callable[[Variant, str], Job[TrainResult]] | None = None
                   ) -> Job[PruneSchedule]:
    """Each round prunes a further `step` (global magnitude), fine-tunes and evaluates.

    Stops after the first round whose accuracy falls more than `budget` below the start.
    `finetune(pruned, name)` fine-tunes elsewhere (in launched processes, say); a round it
    gives up on when stopped (`CancelledError`) is dropped and the rounds before it kept.
    """
    from workbench.core.passes import PassContext, apply_pass
    from workbench.core.passes.registry import discover

    if rounds < 1 or not 0 < step < 1:
        raise InvalidParameterError("rounds must be ≥ 1 and step in (0, 1).")
    cfg = cfg or TrainConfig(epochs=2)
    cancel = cancel or CancelToken()
    base = evaluate(variant, dataset, "val", cfg.device).accuracy or 0.0
    schedule = PruneSchedule(base)
    prune = discover().get("prune.magnitude")
    current = variant
    for i in range(1, rounds + 1):
        if cancel.cancelled:  # stopped between rounds: keep the rounds already done
            if not schedule.rounds:
                cancel.check()
            break
        sparsity = min(step * i, 0.99)
        yield Progress((i - 1) / rounds, f"round {i}: pruning to {sparsity:.0%}",
                       RoundStarted(i, sparsity))
        pruned = apply_pass(prune, current, {"sparsity": sparsity, "scope": "global"},
                            PassContext(device=cfg.device))
        name = f"{variant.name}·sparse{int(sparsity * 100)}"
        try:
            tuned = yield from (train(pruned.variant, dataset, cfg, cancel, name=name)
                                if finetune is None else finetune(pruned.variant, name))
        except CancelledError:
            if not schedule.rounds:
                raise
            break
        acc = evaluate(tuned.variant, dataset, "val", cfg.device).accuracy or 0.0
        ok = base - acc <= budget
        schedule.rounds.append(PruneRound(i, sparsity, acc, tuned.variant, ok))
        yield Progress(i / rounds, f"round {i}: accuracy {acc:.3f}",
                       RoundDone(i, sparsity, acc, ok))
        current = tuned.variant
        if not ok or tuned.stopped:
            break
    return schedule
