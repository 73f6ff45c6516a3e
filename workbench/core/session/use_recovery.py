"""The Session's recovery use cases: record training runs in the project, resume one.

A mixin of `Session`. `_track` wraps a training Task so its run is recorded in the project
when the job starts and ended when its result is committed (or the job fails); a process
killed mid-run leaves the run `running`, which the next open reports as interrupted.
`resume_run` continues such a run from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from workbench.core.errors import CancelledError, WorkbenchError, first_line
from workbench.core.jobs import CancelToken, Job

if TYPE_CHECKING:
    from workbench.core.model.variant import Variant
    from workbench.core.session.runs import RunRecord
    from workbench.core.session.session import Task
    from workbench.core.session.workspace import Entry
    from workbench.core.train.training import TrainConfig

log = logging.getLogger(__name__)
_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "history", "best_score", "best_epoch")


class RecoveryError(WorkbenchError):
    """An interrupted training run cannot be resumed."""


class RecoveryUseCases:
    """Interrupted training runs and their resumption; mixed into `Session`."""

    project: Any
    workspace: Any
    settings: Any

    def train(self, dataset: str, config: TrainConfig, variant_id: str | None = None
              ) -> Task[Entry]:  # provided by TrainingUseCases
        raise NotImplementedError

    def distill(self, dataset: str, config: TrainConfig, teacher_id: str,
                temperature: float = 4.0, alpha: float = 0.7, transfer: bool = False,
                variant_id: str | None = None) -> Task[Entry]:  # provided by TrainingUseCases
        raise NotImplementedError

    def interrupted_runs(self) -> list[RunRecord]:
        """The project's training runs a crash cut short (none without a project)."""
        return self.project.interrupted_runs() if self.project is not None else []

    def resume_run(self, run_id: str | None = None) -> Task[Entry]:
        """Continue an interrupted run (the only one if `run_id` is None) from its last
        checkpoint; the commit adds the trained variant as a child of the run's source."""
        from workbench.core.session.runs import RESUMABLE_KINDS
        from workbench.core.train.training import TrainConfig

        if self.project is None:
            raise RecoveryError("Open a project first: only a project's training runs can be "
                                "resumed.")
        record = self._interrupted(run_id)
        if record.kind not in RESUMABLE_KINDS:
            raise RecoveryError(f"Run {record.id} is a prune-and-fine-tune, which cannot resume "
                                "from a checkpoint; start it again.")
        if record.variant_id not in self.workspace:
            raise RecoveryError(f"Variant {record.variant_id}, which run {record.id} trained, "
                                "is no longer in the project; the run cannot be resumed.")
        _check_checkpoint(record)
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        try:
            config = TrainConfig(**{k: v for k, v in record.config.items() if k in fields})
        except TypeError as exc:
            raise RecoveryError(f"The settings of run {record.id} are damaged: "
                                f"{first_line(exc)}.") from exc
        # the device is this machine's choice, not the one the run was started on
        config = dataclasses.replace(config, checkpoint_dir=str(record.checkpoint_dir),
                                     resume=True, device=self.settings.device)
        if record.kind == "train":
            return self.train(record.dataset, config, record.variant_id)
        options = record.options
        teacher = str(options.get("teacher_id", ""))
        if teacher not in self.workspace:
            raise RecoveryError(f"The teacher {teacher or '?'} of run {record.id} is no longer "
                                "in the project; the run cannot be resumed.")
        return self.distill(record.dataset, config, teacher,
                            float(options.get("temperature", 4.0)),
                            float(options.get("alpha", 0.7)), bool(options.get("transfer")),
                            variant_id=record.variant_id)

    def _interrupted(self, run_id: str | None) -> RunRecord:
        runs = self.project.interrupted_runs()
        if run_id is None:
            if len(runs) != 1:
                raise RecoveryError(
                    "The project has no interrupted training run." if not runs else
                    f"The project has {len(runs)} interrupted training runs; name the one to "
                    f"resume ({', '.join(r.id for r in runs)}).")
            return runs[0]
        for record in runs:
            if record.id == run_id:
                return record
        status = self.project.run(run_id).status  # a ProjectError if there is no such run
        raise RecoveryError(f"Run {run_id} is {status}, not interrupted; there is nothing to "
                            "resume.")

    def _track(self, task: Task[Any], kind: str, dataset: str, variant: Variant,
               config: TrainConfig, options: dict[str, Any] | None = None) -> Task[Any]:
        """`task`, recording its run in the project: `running` when its job starts, then
        `finished`/`stopped` when committed or `failed`/`stopped` when the job raises."""
        from workbench.core.train.distributed import is_main_process

        project = self.project
        if project is None or not config.checkpoint_dir or not is_main_process():
            return task  # rank 0 alone records a distributed run
        previous = project.run_in(config.checkpoint_dir) if config.resume else None
        run_ids: list[str] = []
        inner_job, inner_commit = task.job, task.commit

        def end(status: str) -> None:
            if run_ids:
                try:
                    project.end_run(run_ids.pop(), status)
                except Exception as exc:  # a closed or unwritable project: the run stays
                    log.warning("cannot record the end of a training run: %s", exc)

        def job(token: CancelToken) -> Job[Any]:
            try:
                run_ids.append(project.begin_run(
                    variant.id, kind, dataset, dataclasses.asdict(config),
                    config.checkpoint_dir or "", options,
                    previous.id if previous is not None else None))
            except Exception as exc:  # the training itself can still run
                log.warning("cannot record the training run: %s", exc)
                project.save_failed.emit(variant.id, str(exc))
            try:
                return (yield from inner_job(token))
            except CancelledError:
                end("stopped")
                raise
            except BaseException:
                end("failed")
                raise

        def commit(outcome: Any) -> Any:
            try:
                out = inner_commit(outcome)
            except BaseException:
                end("failed")
                raise
            result = outcome[1] if isinstance(outcome, tuple) and len(outcome) == 2 else None
            end("stopped" if getattr(result, "stopped", False) else "finished")
            return out

        return dataclasses.replace(task, job=job, commit=commit)


def _check_checkpoint(record: RunRecord) -> None:
    """A RecoveryError unless the run's last and best checkpoints load."""
    import torch

    folder = record.checkpoint_dir
    if not (folder / "last.pt").is_file():
        raise RecoveryError(f"Run {record.id} has no checkpoint to resume from (it ended "
                            "before its first epoch did); start it again.")
    try:
        state = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)
        missing = [k for k in _CHECKPOINT_KEYS if k not in state]
        if missing:
            raise KeyError(", ".join(missing))
        torch.load(folder / "best.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RecoveryError(f"The checkpoint of run {record.id} in {folder} is corrupt or "
                            f"incomplete ({first_line(exc)}); it cannot be resumed.") from exc


__all__ = ["RecoveryError", "RecoveryUseCases"]
