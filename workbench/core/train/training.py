"""Training, fine-tuning and evaluation as headless jobs.

`train(...)` is a generator: it yields `Progress` with a payload per batch and per epoch
(losses, accuracy, learning rate, ETA) and returns a `TrainResult` whose variant is a child of
the input. Cancelling *stops* the run and still returns the best weights so far.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.devices import PRECISIONS, autocast_dtype, check_device
from workbench.core.errors import InvalidParameterError, WorkbenchError, first_line
from workbench.core.events import BatchDone, EpochDone
from workbench.core.job_scope import request_rng_state, request_seed
from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.model.variant import Variant, new_variant_id, set_mode
from workbench.core.params import check_values, local, param, param_specs, parse_values
from workbench.core.train.data import Dataset
from workbench.core.train.distributed import STRATEGIES

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")


class TrainError(WorkbenchError):
    """The variant cannot be trained (ONNX, packed int8, ...)."""


@dataclass
class TrainConfig:
    """Everything that defines a run; seeded and reproducible. Declared once: the Train
    tab's form, the CLI's flags and the validation all come from these fields."""

    epochs: int = param(10, help="passes over the training split", min=1, max=100_000)
    batch_size: int = param(64, help="samples per step", min=1, max=65_536)
    optimizer: str = param("adam", choices=OPTIMIZERS)
    lr: float = param(3e-3, help="learning rate", min=1e-8, max=10.0)
    momentum: float = param(0.9, help="SGD and RMSprop momentum", min=0.0, max=0.999)
    nesterov: bool = param(False, help="Nesterov momentum (SGD)")
    weight_decay: float = param(0.0, help="L2 penalty", min=0.0, max=1.0)
    schedule: str = param("cosine", help="learning-rate schedule", choices=SCHEDULES)
    step_size: int = param(5, help="epochs between decays (step schedule)", min=1, max=10_000)
    gamma: float = param(0.5, help="decay factor (step, exponential, plateau)", min=0.0,
                         max=1.0)
    warmup_epochs: int = param(0, help="linear warm-up", min=0, max=10_000)
    grad_clip: float = param(0.0, help="max gradient norm (0: off)", min=0.0, max=1e6)
    patience: int = param(0, help="early stopping patience (0: off)", min=0, max=10_000)
    monitor: str = param("val_accuracy", help="metric for early stopping and the best "
                         "checkpoint", choices=("val_accuracy", "val_loss"))
    keep_sparsity: bool = param(True, help="pruned zeros stay zero while fine-tuning")
    seed: int = param(0, help="random seed", min=0, max=2**31 - 1)
    precision: str = param("auto", help="mixed precision: auto (fp16 on CUDA, else fp32), "
                           "fp32, bf16 (CUDA, CPU) or fp16 (GPU)", choices=PRECISIONS)
    device: str = local("cpu")
    strategy: str = local("ddp")  # with several processes: DDP, or FSDP to shard the model
    checkpoint_dir: str | None = local(None)
    resume: bool = local(False)

    @classmethod
    def parse(cls, values: dict[str, Any] | None, **local_fields: Any) -> TrainConfig:
        """Build from form or CLI values (strings allowed) and validate."""
        config = parse_values(cls, values, "training", **local_fields)
        config.validate()
        return config

    def validate(self) -> None:
        check_values(self, "training")
        check_device(self.device)
        autocast_dtype(self.precision, self.device)
        if self.strategy not in STRATEGIES:
            raise InvalidParameterError(f"Unknown strategy '{self.strategy}': use ddp or fsdp.")

    def params(self) -> dict[str, Any]:
        """The declared fields only (what a recipe records; no device, no folders)."""
        return {spec.name: getattr(self, spec.name) for spec in param_specs(type(self))}


@dataclass
class EvalResult:
    loss: float
    accuracy: float | None
    top5: float | None = None
    confusion: list[list[int]] | None = None
    samples: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    variant: Variant
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped: bool = False
    early_stopped: bool = False
    test: EvalResult | None = None
    checkpoint: str | None = None


def trainable_model(variant: Variant) -> Any:
    """A float32 deep copy of a torch variant's model, ready to train."""
    import torch

    if variant.backend != "torch":
        raise TrainError(f"{variant.name} is an ONNX model; only torch variants can be trained "
                         "(ONNX models can be evaluated and used as teachers).")
    if isinstance(variant.model, torch.jit.ScriptModule):
        raise TrainError(f"{variant.name} is TorchScript, which Workbench does not train.")
    model = copy.deepcopy(variant.model)
    if any(getattr(m, "_packed_params", None) is not None for m in model.modules()) or any(
            "quantized" in type(m).__module__ for m in model.modules()):
        raise TrainError(f"{variant.name} holds packed int8 layers, which cannot be trained; "
                         "fine-tune its float parent and quantize again.")
    if not any(p.requires_grad for p in model.parameters()):
        raise TrainError(f"{variant.name} has no trainable parameters.")
    return model.float()


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)


def _scheduler(opt: Any, cfg: TrainConfig) -> Any:
    """An epoch-wise scheduler (None for `plateau`, which is stepped on the metric)."""
    from torch.optim import lr_scheduler as sched

    main_epochs = max(cfg.epochs - cfg.warmup_epochs, 1)
    if cfg.schedule == "step":
        main: Any = sched.StepLR(opt, step_size=max(cfg.step_size, 1), gamma=cfg.gamma)
    elif cfg.schedule == "exponential":
        main = sched.ExponentialLR(opt, gamma=cfg.gamma)
    elif cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=main_epochs)
    else:
        main = sched.ConstantLR(opt, factor=1.0, total_iters=0)
    if cfg.warmup_epochs > 0 and cfg.schedule != "plateau":
        warm = sched.LinearLR(opt, start_factor=0.1, total_iters=cfg.warmup_epochs)
        return sched.SequentialLR(opt, [warm, main], milestones=[cfg.warmup_epochs])
    return main


def evaluate_model(model: Any, dataset: Dataset, split: str = "test", device: str = "cpu",
                   batch_size: int = 256) -> EvalResult:
    """Loss, top-1/top-5 accuracy and the confusion matrix of a torch module."""
    import torch

    x, y = dataset.part(split)
    outs = []
    set_mode(model, False)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(x[i:i + batch_size].to(device, dtype)).float().cpu())
    logits = torch.cat(outs) if outs else torch.zeros(0)
    return _metrics(logits, y, dataset)


def _metrics(logits: Any, y: Any, dataset: Dataset) -> EvalResult:
    import torch
    import torch.nn.functional as F

    if dataset.task == "regression":
        loss = float(F.mse_loss(logits.reshape(-1), y.float()))
        return EvalResult(loss, None, samples=len(y))
    loss = float(F.cross_entropy(logits, y))
    pred = logits.argmax(1)
    k = min(5, logits.shape[1])
    top5 = float((logits.topk(k, 1).indices == y[:, None]).any(1).float().mean())
    n = dataset.num_classes
    conf = torch.zeros(n, n, dtype=torch.int64)
    conf.index_put_((y, pred.clamp(max=n - 1)), torch.ones_like(y), accumulate=True)
    return EvalResult(loss, float((pred == y).float().mean()), top5, conf.tolist(), len(y))


def evaluate_shard(model: Any, dataset: Dataset, split: str = "val", device: str = "cpu",
                   batch_size: int = 256) -> EvalResult:
    """`evaluate_model` over the whole split, each rank of a distributed run scoring its own
    share (every `world`-th sample) and the sums all-reduced; alone, the plain evaluation."""
    import torch
    import torch.nn.functional as F

    from workbench.core.train import distributed as dd

    ctx = dd.context()
    if not ctx.enabled:
        return evaluate_model(model, dataset, split, device, batch_size)
    x, y = dataset.part(split)
    x, y = x[ctx.rank::ctx.world_size], y[ctx.rank::ctx.world_size]
    set_mode(model, False)
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(x[i:i + batch_size].to(device)).float().cpu())
    logits = torch.cat(outs) if outs else torch.zeros(0, max(dataset.num_classes, 1))
    n = dataset.num_classes
    conf = torch.zeros(max(n, 1), max(n, 1), dtype=torch.float64)
    if dataset.task == "regression":
        sums = [float(F.mse_loss(logits.reshape(-1), y.float(), reduction="sum")), 0.0, 0.0]
    else:
        pred = logits.argmax(1)
        k = min(5, logits.shape[1])
        sums = [float(F.cross_entropy(logits, y, reduction="sum")) if len(y) else 0.0,
                float((pred == y).sum()),
                float((logits.topk(k, 1).indices == y[:, None]).any(1).sum())]
        conf.index_put_((y, pred.clamp(max=n - 1)), torch.ones(len(y), dtype=torch.float64),
                        accumulate=True)
    # on the run's device: NCCL reduces CUDA tensors only
    loss, right, top5, count = dd.all_sum([*sums, float(len(y))], device)
    conf = dd.all_sum_tensor(conf.to(device)).cpu()
    count = max(count, 1.0)
    if dataset.task == "regression":
        return EvalResult(loss / count, None, samples=int(count))
    return EvalResult(loss / count, right / count, top5 / count,
                      conf.to(torch.int64).tolist(), int(count))


def evaluate(variant: Variant, dataset: Dataset, split: str = "test",
             device: str = "cpu") -> EvalResult:
    """Evaluate any variant: torch in eager mode on `device` (a copy goes there; the variant
    stays on the CPU), ONNX with ONNX Runtime on the CPU."""
    from workbench.core.devices import job_device, on_device

    device = job_device(device)
    if variant.backend == "torch":
        return evaluate_model(on_device(variant.model, device), dataset, split, device)
    import torch

    from workbench.core.model.runtime import run_variant

    x, y = dataset.part(split)
    outs = [torch.as_tensor(run_variant(variant, (x[i:i + 256],)))
            for i in range(0, len(x), 256)]
    return _metrics(torch.cat(outs).float(), y, dataset)


def _check_fits(model: Any, dataset: Dataset, device: str = "cpu") -> None:
    """Fail early, with a clear message, when the model's output does not fit the labels."""
    import torch

    with torch.no_grad():
        out = set_mode(model, False)(dataset.x[:2].to(device))
    if dataset.task == "classification" and (out.ndim != 2 or out.shape[1] <
                                             dataset.num_classes):
        raise TrainError(f"The model outputs {tuple(out.shape)} but {dataset.name} has "
                         f"{dataset.num_classes} classes.")


@dataclass
class _RunState:
    """What a checkpoint carries from one epoch to the next."""

    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, Any] = field(default_factory=dict)
    saved: dict[str, Any] | None = None  # the resumed checkpoint (optimizer, scheduler)


def train(variant: Variant, dataset: Dataset, cfg: TrainConfig,
          cancel: CancelToken | None = None, teacher_logits: Any = None,
          temperature: float = 4.0, alpha: float = 0.0, name: str | None = None
          ) -> Job[TrainResult]:
    """Train (or fine-tune, or distill into) a copy of `variant` on `dataset`.

    With `teacher_logits` (one row per training sample, in split order) and `alpha > 0` the
    loss is α·T²·KL(softmax(s/T) ‖ softmax(t/T)) + (1−α)·CE.

    Launched with several processes (`WORLD_SIZE` > 1), each rank trains a shard of every
    batch (`batch_size` is the global batch) under DDP or FSDP; metrics are summed over the
    ranks and rank 0 alone writes the checkpoints. A restarted worker resumes from them.
    """
    import torch
    from torch.utils.data import DistributedSampler

    from workbench.core.devices import autocast_dtype, device_type, needs_scaler
    from workbench.core.train import distributed as dd

    cfg.validate()
    cancel = cancel or CancelToken()
    ctx = dd.setup(cfg.device)
    device = dd.rank_device(cfg.device, ctx)
    fsdp = ctx.enabled and cfg.strategy == "fsdp"
    request_seed(cfg.seed)  # for dropout, the one draw that cannot take a torch.Generator
    plain = trainable_model(variant).to(device)
    _check_fits(plain, dataset, device)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    resume = cfg.resume or (ctx.enabled and dd.restart_count() > 0)
    run = _resume(ckpt_dir, plain, device) if resume and ckpt_dir is not None and (
        ckpt_dir / "last.pt").exists() else _RunState()
    masks = dd.broadcast_masks(_sparsity_masks(plain) if cfg.keep_sparsity else {})
    eval_model = copy.deepcopy(plain) if fsdp else plain
    model = dd.wrap(plain, ctx, cfg.strategy, device)
    masks = dd.shard_masks(plain, masks, cfg.strategy)
    opt = _optimizer(model, cfg)
    scheduler = None if cfg.schedule == "plateau" else _scheduler(opt, cfg)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max" if cfg.monitor == "val_accuracy" else "min", factor=cfg.gamma,
        patience=max(cfg.patience // 2, 1)) if cfg.schedule == "plateau" else None)
    if run.saved is not None:
        _resume_optimizer(run.saved, model, opt, scheduler, ctx, cfg.strategy, ckpt_dir)
    if not run.best_state:
        run.best_state = dd.full_state(model, ctx, cfg.strategy)
    amp_dtype = autocast_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler(device_type(device)) if needs_scaler(
        cfg.precision, device) else None
    x_train, y_train = dataset.part("train")
    # a DistributedSampler of one replica draws the same order as a single process would
    indices: Any = range(len(x_train))
    sampler: Any = DistributedSampler(indices, num_replicas=ctx.world_size, rank=ctx.rank,
                                      shuffle=True, seed=cfg.seed * 100_003)
    local_batch = max(1, cfg.batch_size // ctx.world_size)
    steps = math.ceil(sampler.num_samples / local_batch)
    stopped = early = False
    t0 = time.perf_counter()
    bad_epochs = 0
    for epoch in range(run.start_epoch, cfg.epochs):
        set_mode(model, True)
        # one generator per epoch, so a resumed run sees the same batches as a straight one
        sampler.set_epoch(epoch)
        order = torch.as_tensor(list(sampler), dtype=torch.int64)
        total_loss = correct = seen = 0.0
        for step in range(steps):
            cancel.wait_while_paused()
            if dd.any_rank(cancel.cancelled, device):
                stopped = True
                break
            idx = order[step * local_batch:(step + 1) * local_batch]
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device_type(device), dtype=amp_dtype,
                                enabled=amp_dtype is not None):
                out = model(xb)
                loss = _loss(out, yb, dataset, teacher_logits, idx, temperature, alpha,
                             device)
            _backward_step(model, opt, scaler, loss, cfg.grad_clip)
            _apply_masks(plain, masks)
            total_loss += loss.item() * len(idx)
            seen += len(idx)
            if dataset.task == "classification":
                correct += float((out.argmax(1) == yb).sum())
            done = (epoch - run.start_epoch) * steps + step + 1
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * ((cfg.epochs - run.start_epoch) * steps - done)
            yield Progress((epoch + (step + 1) / steps) / cfg.epochs,
                           f"epoch {epoch + 1}/{cfg.epochs} · batch {step + 1}/{steps}",
                           BatchDone(epoch, step, steps, loss.item(), eta,
                                     opt.param_groups[0]["lr"]))
        total_loss, correct, seen = dd.all_sum([total_loss, correct, seen], device)
        if stopped and seen == 0:
            break
        state = dd.full_state(model, ctx, cfg.strategy) if fsdp else None
        if state is not None:
            eval_model.load_state_dict(state)
        elif ctx.enabled:
            dd.broadcast_buffers(eval_model)  # BatchNorm statistics differ by shard
        val = evaluate_shard(eval_model, dataset, "val", device)
        _probe_epoch(epoch + 1, val, masks, state if state is not None else
                     eval_model.state_dict())
        lr = opt.param_groups[0]["lr"]
        record = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1),
                  "train_accuracy": correct / max(seen, 1) if dataset.task ==
                  "classification" else None,
                  "val_loss": val.loss, "val_accuracy": val.accuracy, "lr": lr,
                  "seconds": time.perf_counter() - t0}
        run.history.append(record)
        if ctx.is_main:
            dd.record_epoch(record)
        score = (val.accuracy if cfg.monitor == "val_accuracy" and val.accuracy is not None
                 else -val.loss)
        if score > run.best_score:
            run.best_score, run.best_epoch = score, epoch + 1
            run.best_state = state if state is not None else copy.deepcopy(
                eval_model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        if scheduler is not None:
            scheduler.step()
        elif plateau is not None:
            plateau.step(score if cfg.monitor == "val_accuracy" else val.loss)
        if ckpt_dir is not None:
            optim = dd.optimizer_state(model, opt, ctx, cfg.strategy)
            if ctx.is_main:
                _checkpoint(ckpt_dir, state if state is not None else eval_model.state_dict(),
                            optim, scheduler, epoch, run)
        yield Progress((epoch + 1) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs} done",
                       EpochDone.of(record))
        if stopped:
            break
        if cfg.patience and bad_epochs >= cfg.patience:
            early = True
            break
    eval_model.load_state_dict(run.best_state)
    model = set_mode(eval_model, False).cpu()
    test = evaluate_model(model, dataset, "test")
    step_info = {"pass": "train", "params": {**asdict(cfg), "dataset": dataset.name,
                                             "alpha": alpha, "temperature": temperature}}
    new = Variant(
        name=name or f"{variant.name}·trained", backend="torch", model=model,
        format=variant.format, inputs=variant.inputs, source=variant.source,
        parent=variant.id, recipe=(*variant.recipe, step_info),
        metadata={**variant.metadata, "num_classes": dataset.num_classes or
                  variant.metadata.get("num_classes")}, id=new_variant_id())
    return TrainResult(new, run.history, run.best_epoch, stopped, early, test,
                       str(ckpt_dir / "best.pt") if ckpt_dir else None)


def _probe_epoch(epoch: int, val: EvalResult, masks: dict[str, Any],
                 weights: dict[str, Any]) -> None:
    """Record this rank's masks and weights after an epoch (for the multi-process tests)."""
    from workbench.core import rank_probe

    if not rank_probe.enabled():
        return
    local_masks = {k: m.to_local() if hasattr(m, "to_local") else m for k, m in masks.items()}
    zeros = {k: v == 0 for k, v in weights.items() if v.ndim >= 2 and v.is_floating_point()}
    rank_probe.probe("epoch", epoch=epoch, val_samples=val.samples,
                     masks=rank_probe.digest(local_masks), mask_names=sorted(masks),
                     zeros=rank_probe.digest(zeros), weights=rank_probe.digest(weights))


def _backward_step(model: Any, opt: Any, scaler: Any, loss: Any, grad_clip: float) -> None:
    import torch

    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()


def _resume(ckpt_dir: Path, model: Any, device: str) -> _RunState:
    """Load `last.pt` into `model`; the run's history, best weights and RNG state."""
    import torch

    try:
        state = torch.load(ckpt_dir / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        best_state = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=True)
        request_rng_state(state["rng"])
        return _RunState(list(state["history"]), int(state["epoch"]) + 1,
                         float(state["best_score"]), int(state["best_epoch"]), best_state,
                         state)
    except Exception as exc:  # truncated, tampered, keyless or from another model
        raise _resume_error(ckpt_dir, exc) from exc


def _resume_optimizer(saved: dict[str, Any], model: Any, opt: Any, scheduler: Any, ctx: Any,
                      strategy: str, ckpt_dir: Path | None) -> None:
    from workbench.core.train import distributed as dd

    try:
        dd.load_optimizer_state(model, opt, saved["optimizer"], ctx, strategy)
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
    except Exception as exc:
        raise _resume_error(ckpt_dir, exc) from exc


def _resume_error(ckpt_dir: Path | None, exc: Exception) -> TrainError:
    return TrainError(f"The checkpoint in {ckpt_dir} cannot be resumed (corrupt, incomplete "
                      f"or from another model): {first_line(exc)}")


def _loss(out: Any, y: Any, dataset: Dataset, teacher_logits: Any, idx: Any,
          temperature: float, alpha: float, device: str) -> Any:
    import torch.nn.functional as F

    if dataset.task == "regression":
        return F.mse_loss(out.reshape(-1), y.float())
    ce = F.cross_entropy(out, y)
    if teacher_logits is None or alpha <= 0:
        return ce
    t = teacher_logits[idx].to(device)
    kl = F.kl_div(F.log_softmax(out / temperature, 1), F.softmax(t / temperature, 1),
                  reduction="batchmean")
    return alpha * temperature * temperature * kl + (1 - alpha) * ce


def _sparsity_masks(model: Any) -> dict[str, Any]:
    """Masks of the weights that are already mostly zero (pruned), to keep them zero."""
    masks = {}
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            mask = p.detach() != 0
            if float(mask.float().mean()) < 0.9:
                masks[name] = mask
    return masks


def _apply_masks(model: Any, masks: dict[str, Any]) -> None:
    import torch

    if not masks:
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in masks.items():
            params[name].mul_(m)


def _checkpoint(folder: Path, model_state: dict[str, Any], optim: dict[str, Any],
                scheduler: Any, epoch: int, run: _RunState) -> None:
    import torch

    from workbench.core.fileio import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    state = {"model": model_state, "optimizer": optim,
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "epoch": epoch, "history": run.history, "best_score": run.best_score,
             "best_epoch": run.best_epoch, "rng": torch.get_rng_state()}
    with atomic_path(folder / "last.pt") as tmp:
        torch.save(state, tmp)
    with atomic_path(folder / "best.pt") as tmp:
        torch.save(run.best_state, tmp)


def train_param_specs() -> list[Any]:
    """The training settings as ParamSpecs, for generated forms and CLI flags."""
    return param_specs(TrainConfig)
