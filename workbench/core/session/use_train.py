"""The Session's training use cases: train, distill, prune-and-fine-tune, evaluate.

A mixin of `Session`: each method checks its request at once and returns a `Task` whose job
runs in a worker and whose commit adds the new variants (undoably) on the caller's thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidParameterError
from workbench.core.events import SamplesShown
from workbench.core.jobs import CancelToken, Job, Progress

if TYPE_CHECKING:
    from workbench.core.model.variant import Variant
    from workbench.core.session.session import Task
    from workbench.core.session.workspace import Entry
    from workbench.core.train.data import Dataset
    from workbench.core.train.training import EvalResult, TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FidelityResult:
    """An embedding model's agreement with its parent (it has no labels to score)."""

    cosine: float | None  # None: undefined (an all-zero, constant or non-finite output)
    report: dict[str, Any]


class TrainingUseCases:
    """Train, distill, prune-and-fine-tune and evaluate; mixed into `Session`."""

    settings: Any
    workspace: Any
    project: Any
    _run_dirs: dict[str, str]
    _track: Any  # RecoveryUseCases._track: records the run in the project

    def entry(self, variant_id: str | None = None) -> Entry:  # provided by Session
        raise NotImplementedError

    def _add(self, analysis: Any, results: dict[str, Any] | None = None) -> Entry:
        raise NotImplementedError

    # use cases ----------------------------------------------------------------------------
    def train(self, dataset: str, config: TrainConfig, variant_id: str | None = None
              ) -> Task[Entry]:
        """Train or fine-tune a variant on `dataset`; the commit adds the trained child."""
        from workbench.core.graph.analysis import analyse
        from workbench.core.session.session import Task
        from workbench.core.train.training import train

        variant = self._trainable(variant_id)
        config = self._with_run_dir(variant, config)

        def job(token: CancelToken) -> Job[Any]:
            data = yield from _load(dataset, variant, config.seed)
            result = yield from train(variant, data, config, token)
            # a stopped run keeps its best weights: the analysis after it is not cancelled
            return (yield from analyse(result.variant)), result

        return self._track(Task(f"Training {variant.name}", job, self._commit_trained,
                                graceful=True), "train", dataset, variant, config)

    def distill(self, dataset: str, config: TrainConfig, teacher_id: str,
                temperature: float = 4.0, alpha: float = 0.7, transfer: bool = False,
                variant_id: str | None = None) -> Task[Entry]:
        """Distill the teacher `teacher_id` into a variant; the commit adds the student."""
        from workbench.core.graph.analysis import analyse
        from workbench.core.session.session import Task
        from workbench.core.train.distill import distill
        from workbench.core.train.teacher_fit import teacher_misfit

        variant = self._trainable(variant_id)
        if teacher_id not in self.workspace:
            raise InvalidParameterError("Open or make a teacher variant first.")
        teacher = self.workspace.get(teacher_id).analysis.variant
        if teacher.id == variant.id:
            raise InvalidParameterError("A variant cannot be its own teacher.")
        misfit = teacher_misfit(self.entry(variant_id).analysis,
                                self.workspace.get(teacher_id).analysis)
        if misfit:
            raise InvalidParameterError(f"This teacher does not fit: {misfit}")
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise InvalidParameterError("The temperature must be positive and alpha in [0, 1].")
        config = self._with_run_dir(variant, config)

        def job(token: CancelToken) -> Job[Any]:
            data = yield from _load(dataset, variant, config.seed)
            result = yield from distill(teacher, variant, data, config, temperature, alpha,
                                        transfer=transfer, cancel=token)
            # a stopped run keeps its best weights: the analysis after it is not cancelled
            return (yield from analyse(result.variant)), result

        task = Task(f"Distilling {teacher.name} into {variant.name}", job,
                    self._commit_trained, graceful=True)
        return self._track(task, "distill", dataset, variant, config, {
            "teacher_id": teacher_id, "temperature": temperature, "alpha": alpha,
            "transfer": transfer})

    def prune_finetune(self, dataset: str, config: TrainConfig, rounds: int = 4,
                       step: float = 0.2, budget: float = 0.01,
                       variant_id: str | None = None) -> Task[list[Entry]]:
        """Prune a further `step` each round and fine-tune; one new variant per round."""
        from workbench.core.graph.analysis import analyse
        from workbench.core.session.session import Task
        from workbench.core.train.distill import prune_finetune

        variant = self._trainable(variant_id)
        if rounds < 1 or not 0 < step < 1 or not 0 <= budget <= 1:
            raise InvalidParameterError("rounds must be at least 1, the step in (0, 1) and "
                                        "the budget in [0, 1].")
        config = self._with_run_dir(variant, config)

        def job(token: CancelToken) -> Job[Any]:
            data = yield from _load(dataset, variant, config.seed)
            schedule = yield from prune_finetune(variant, data, rounds, step, config, budget,
                                                 token)
            outs = []
            for r in schedule.rounds:
                outs.append(((yield from analyse(r.variant)), r.accuracy))
            return outs

        def commit(outs: list[tuple[Any, float]]) -> list[Entry]:
            return [self._add(a, {"accuracy": acc}) for a, acc in outs]

        task = Task(f"Prune-and-fine-tune {variant.name}", job, commit, graceful=True)
        return self._track(task, "prune", dataset, variant, config, {
            "rounds": rounds, "step": step, "budget": budget})

    def evaluate(self, dataset: str, variant_id: str | None = None, seed: int = 0,
                 split: str = "test", device: str | None = None
                 ) -> Task[EvalResult | FidelityResult]:
        """Accuracy on `dataset`'s test split, on `device` (default: the settings'); for an
        embedding model (no labels), its fidelity against its parent. The commit records
        it."""
        from workbench.core.devices import check_device
        from workbench.core.session.session import Task
        from workbench.core.train.training import evaluate

        entry = self.entry(variant_id)
        variant = entry.analysis.variant
        parent = self.workspace.parent_of(entry.id)
        if variant.metadata.get("task") == "embedding":
            if parent is None:
                raise InvalidParameterError(
                    f"{entry.name} is an embedding model: its fidelity is measured against a "
                    "parent variant. Select an optimized child.")
            fidelity: Task[Any] = self.fidelity(parent.id, entry.id)
            return fidelity
        _input_spec(variant)
        if split not in ("train", "val", "test"):
            raise InvalidParameterError("Evaluate on the train, val or test split.")
        device = check_device(device or self.settings.device)

        def job(token: CancelToken) -> Job[Any]:
            yield Progress(None, f"Evaluating {variant.name} on {dataset}…")
            data = yield from _load(dataset, variant, seed, samples=False)
            token.check()
            return evaluate(variant, data, split, device)

        key = "accuracy" if split == "test" else f"{split}_accuracy"
        return Task(f"Evaluating {entry.name}", job,
                    lambda r: self._record(entry.id, key, r, r.accuracy))

    def fidelity(self, reference_id: str, variant_id: str | None = None, samples: int = 24
                 ) -> Task[FidelityResult]:
        """How closely a variant's outputs follow a reference's on real sample inputs
        (cosine, max and mean difference); the commit records the cosine."""
        from workbench.core.session.session import Task

        entry = self.entry(variant_id)
        reference = self.entry(reference_id)
        if not 1 <= samples <= 10_000:
            raise InvalidParameterError("Measure fidelity on 1 to 10,000 samples.")
        return Task(f"Measuring {entry.name}", _fidelity_job(reference.analysis.variant,
                                                            entry.analysis.variant, samples),
                    lambda r: self._record(entry.id, "fidelity", r, r.cosine))

    # internals ----------------------------------------------------------------------------
    def _trainable(self, variant_id: str | None) -> Variant:
        variant = self.entry(variant_id).analysis.variant
        _input_spec(variant)
        return variant

    def _with_run_dir(self, variant: Variant, config: TrainConfig) -> TrainConfig:
        """Checkpoints go to the project's runs folder (or the user's); `resume` picks up
        the variant's last run."""
        from workbench.core.session.settings import runs_dir

        config = replace(config, device=config.device or self.settings.device)
        config.validate()
        if config.checkpoint_dir:
            return config
        last = self._run_dirs.get(variant.id)
        if config.resume and last is not None:
            return replace(config, checkpoint_dir=last)
        root = Path(self.project.folder) / "runs" if self.project is not None else runs_dir()
        folder = str(root / f"{variant.id}-{time.strftime('%Y%m%d-%H%M%S')}")
        folder = _distributed_run_dir(self, root, config.device) or folder
        self._run_dirs[variant.id] = folder
        return replace(config, checkpoint_dir=folder, resume=False)

    def _commit_trained(self, outcome: tuple[Any, Any]) -> Entry:
        analysis, result = outcome
        accuracy = result.test.accuracy if result.test else None
        summary = {"best_epoch": result.best_epoch, "stopped": result.stopped,
                   "early_stopped": result.early_stopped,
                   "test_loss": result.test.loss if result.test else None}
        return self._add(analysis, {"accuracy": accuracy, "history": result.history,
                                    "training": summary})

    def _record(self, variant_id: str, key: str, result: Any, value: Any) -> Any:
        if variant_id in self.workspace and value is not None:
            self.workspace.set_result(variant_id, key, value)
        return result


def _distributed_run_dir(owner: Any, root: Path, device: str) -> str | None:
    """Under a multi-process launch, the same folder on every rank and after a restart (the
    elastic run id and the how-manyth training of this session), so a restarted worker
    resumes from rank 0's checkpoints; None in a single process."""
    from workbench.core.train import distributed as dd

    if not dd.context().enabled:
        return None
    count = getattr(owner, "_distributed_runs", 0) + 1
    owner._distributed_runs = count
    dd.setup(device)
    run = dd.run_id() or dd.agree(time.strftime("%Y%m%d-%H%M%S"))
    return str(root / f"distributed-{run}-{count}")


def _input_spec(variant: Variant) -> Any:
    if not variant.inputs:
        raise InvalidParameterError(f"{variant.name} has no declared input shape.")
    return variant.inputs[0]


def _load(dataset: str, variant: Variant, seed: int, samples: bool = True) -> Job[Dataset]:
    """Load `dataset` shaped for the variant's input; show a grid of samples."""
    from workbench.core.train.data import load_dataset

    spec = _input_spec(variant)
    yield Progress(0.0, f"Loading {dataset}…")
    data = load_dataset(dataset, spec.shape, seed=seed, input_dtype=spec.dtype)
    if samples:
        x, y = data.samples(16)
        images = (x.reshape(len(x), -1, *x.shape[-2:]).mean(1).numpy() if x.ndim >= 3
                  else x.reshape(len(x), 1, -1).numpy())
        labels = [data.class_names[int(i)] if data.class_names else f"{float(i):.2f}"
                  for i in y]
        yield Progress(0.0, "Dataset ready", SamplesShown(images, labels))
    return data


def _fidelity_job(parent: Variant, child: Variant, samples: int = 24) -> Any:
    from workbench.core.model.fidelity import fidelity_report

    def job(token: CancelToken) -> Job[FidelityResult]:
        yield Progress(None, f"Measuring {child.name} against {parent.name}…")
        report, warnings = fidelity_report(parent, child, samples=samples, per_layer=False)
        if "cosine" not in report:
            raise InvalidParameterError(
                f"Fidelity could not be measured: {report.get('error')}")
        cosine = report["cosine"]
        return FidelityResult(None if cosine is None else float(cosine),
                              {**report, "warnings": warnings})

    return job
