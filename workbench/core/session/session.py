"""The Session: every use case of Workbench, headless. The window and the CLI are its clients.

A use case that takes time returns a `Task`: a `job` that runs in a worker (it yields
`Progress`, honours a `CancelToken` and never touches the workspace) and a `commit` that
records its result on the caller's thread (the GUI thread, or the CLI's only one). Checks
that need no work (is a variant selected, are the parameters valid) run when the task is
made, so a bad request fails before any worker starts. Edits of the workspace go through
undoable commands; `Session.run` drives a task to the end for the CLI and tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workbench.core.devices import check_device
from workbench.core.errors import CancelledError, InvalidParameterError, WorkbenchError
from workbench.core.graph.analysis import Analysis, open_model
from workbench.core.jobs import CancelToken, Job, Progress, run_job
from workbench.core.session.commands import AddVariant, DeleteVariant, RenameVariant
from workbench.core.session.settings import Settings
from workbench.core.session.use_measure import MeasureUseCases
from workbench.core.session.use_recovery import RecoveryUseCases
from workbench.core.session.use_train import TrainingUseCases
from workbench.core.session.workspace import Entry, Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Task(Generic[T]):
    """A use case ready to run: `job(token)` in a worker, then `commit(result)`."""

    title: str
    job: Callable[[CancelToken], Job[Any]]
    commit: Callable[[Any], T]
    graceful: bool = False  # on cancel the job still returns what it has (training)
    # Progress from code that cannot yield (a pass's callback); the runner sets it.
    report: Callable[[Progress], None] = lambda step: None


class UndoHistory:
    """Undoable commands on the workspace, in order, with a position."""

    def __init__(self) -> None:
        self._done: list[Any] = []
        self._undone: list[Any] = []

    def push(self, command: Any) -> None:
        command.redo()
        self._done.append(command)
        self._undone.clear()

    def undo(self) -> bool:
        return self._move(self._done, self._undone, "undo")

    def redo(self) -> bool:
        return self._move(self._undone, self._done, "redo")

    @staticmethod
    def _move(source: list[Any], target: list[Any], action: str) -> bool:
        """Run the last command of `source` in the direction `action`; move it to `target`."""
        if not source:
            return False
        command = source.pop()
        getattr(command, action)()
        target.append(command)
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)


class Session(TrainingUseCases, MeasureUseCases, RecoveryUseCases):
    """Owns the workspace, its undo history and the settings, and every use case."""

    def __init__(self, settings: Settings | None = None,
                 push: Callable[[Any], None] | None = None,
                 remember_recent: bool = True) -> None:
        self.settings = settings or Settings()
        self.remember_recent = remember_recent  # File ▸ Open Recent; the CLI does not
        self.project: Any = None  # the Project this session autosaves to, if any
        self.workspace = Workspace()
        self.history = UndoHistory()
        self._run_dirs: dict[str, str] = {}  # variant id -> checkpoint folder of its last run
        # The GUI routes commands through its QUndoStack (which calls `redo`); headless
        # clients use the session's own history.
        self.push: Callable[[Any], None] = push or (lambda command: self.history.push(command))

    # helpers ------------------------------------------------------------------------------
    def entry(self, variant_id: str | None = None) -> Entry:
        """The entry `variant_id`, or the selected one; a sentence if there is none."""
        if variant_id is None:
            entry = self.workspace.selected
            if entry is None:
                raise InvalidParameterError("Open a model first.")
            return entry
        if variant_id not in self.workspace:
            raise InvalidParameterError(f"No variant {variant_id!r} in this session.")
        return self.workspace.get(variant_id)

    def run(self, task: Task[T], on_progress: Callable[[Progress], None] | None = None,
            cancel: CancelToken | None = None) -> T:
        """Run a task on this thread (the CLI, tests) and commit its result."""
        from workbench.core.memory_watch import watch

        if on_progress is not None:
            task.report = on_progress
        token = cancel or CancelToken()
        with watch(token, self.settings, task.title) as memory:
            try:
                result = run_job(task.job(token), on_progress)
            except CancelledError as exc:  # a cancel by the memory ceiling is an error
                raise memory.translate(exc) from None
        return task.commit(result)

    # use cases ----------------------------------------------------------------------------
    def open(self, source: str, *, preview: bool = False, **load_options: Any) -> Task[Entry]:
        """Load and analyse `source` (a path or zoo:NAME); the commit adds it.

        With `preview` (the window), a step hands the graph over (`GraphReady`), its view
        prepared so that the first paint only looks it up, and the job waits for it to be
        drawn before it takes the weight statistics.
        """
        options = {k: v for k, v in load_options.items() if v is not None}

        def job(token: CancelToken) -> Job[Analysis]:
            return (yield from open_model(source, token, preview=preview, **options))

        def commit(analysis: Analysis) -> Entry:
            if self.remember_recent:
                from pathlib import Path

                recent = source if source.startswith("zoo:") else str(Path(source).resolve())
                self.settings.add_recent(recent)
            return self._add(analysis)

        return Task(f"Opening {source}", job, commit)

    def apply(self, pass_name: str, values: dict[str, Any] | None = None,
              variant_id: str | None = None, *, device: str | None = None,
              time_limit_s: float | None = None) -> Task[Any]:
        """Run a pass on a variant; the commit adds the new variant with its report."""
        from workbench.core.passes import PassContext, apply_pass
        from workbench.core.passes.base import parse_params
        from workbench.core.passes.registry import discover

        source = self.entry(variant_id).analysis
        pass_obj = discover().get(pass_name)
        params = parse_params(type(pass_obj), values or {})
        device = check_device(device or self.settings.device)  # the pass gets it in its ctx
        limit = time_limit_s if time_limit_s is not None else (
            self.settings.pass_time_limit_s or None)

        def job(token: CancelToken) -> Job[Any]:
            yield Progress(0.05, f"Applying {pass_name}…")
            data = _pass_data(source.variant, getattr(params, "dataset", None))
            ctx = PassContext(device=device, cancel=token, time_limit_s=limit, data=data,
                              progress=lambda f, m: task.report(Progress(f, m)),
                              memory_limit=self.settings.max_memory_bytes or None)
            result = apply_pass(pass_obj, source, params, ctx)
            yield Progress(1.0, f"{pass_name} done")
            return result

        def commit(result: Any) -> Any:
            self._add(result.analysis, {"report": result.report})
            return result

        task: Task[Any] = Task(f"Applying {pass_name}", job, commit)
        return task

    def export(self, path: str, variant_id: str | None = None, fmt: str | None = None,
               opset: int = 18) -> Task[dict[str, Any]]:
        """Write a variant to `path` (ONNX, .pt2, TorchScript or safetensors)."""
        from workbench.core.fileio import check_target
        from workbench.core.model.export import export_format
        from workbench.core.model.export_isolated import export_isolated

        variant = self.entry(variant_id).analysis.variant
        if fmt is None:
            export_format(path)  # an unknown extension fails now, not after the work
        check_target(path)

        def job(token: CancelToken) -> Job[dict[str, Any]]:
            yield Progress(0.02, f"Exporting {variant.name}…")
            return export_isolated(variant, path, fmt, opset, token,
                                   lambda f, m: task.report(Progress(
                                       None if f is None else 0.02 + 0.96 * f, m)),
                                   self.settings.max_memory_bytes or None)

        task: Task[dict[str, Any]] = Task(f"Exporting {variant.name}", job,
                                          lambda written: written)
        return task

    def delete(self, variant_id: str | None = None) -> None:
        """Delete a variant and its descendants (undoable)."""
        self.push(DeleteVariant(self.workspace, self.entry(variant_id).id))

    def rename(self, name: str, variant_id: str | None = None) -> None:
        if not name.strip():
            raise InvalidParameterError("A variant name cannot be empty.")
        self.push(RenameVariant(self.workspace, self.entry(variant_id).id, name))

    def undo(self) -> bool:
        return self.history.undo()

    def redo(self) -> bool:
        return self.history.redo()

    def recipe(self, variant_id: str | None = None) -> Any:
        """The recipe that replays how a variant was made."""
        from workbench.core.session.recipe import Recipe

        return Recipe.of(self.entry(variant_id).analysis.variant)

    # projects -----------------------------------------------------------------------------
    def save_as_project(self, folder: str) -> Any:
        """Create a project in `folder` holding every variant; later changes autosave."""
        from workbench.core.session.project import Project

        project = Project.create(folder)
        try:
            project.attach(self)
        except Exception:
            project.close()
            raise
        self._set_project(project)
        self._remember_project(folder)
        return project

    def open_project(self, folder: str) -> Any:
        """Replace this session's variants with a project's, and autosave to it."""
        from workbench.core.session.project import Project

        project = Project.open(folder)
        try:
            self.clear()
            project.load_into(self)
            project.attach(self)
        except Exception:
            project.close()
            raise
        self._set_project(project)
        self._remember_project(folder)
        return project

    def new(self) -> None:
        """Start empty: no variants, no project (File ▸ New)."""
        self.clear()

    def clear(self) -> None:
        """Forget every variant and the undo history (not undoable), and any project."""
        self._set_project(None)
        for entry in reversed(self.workspace.entries()):
            self.workspace.remove(entry.id)
        self.history = UndoHistory()

    def _remember_project(self, folder: str) -> None:
        if self.remember_recent:
            from pathlib import Path

            self.settings.add_recent_project(str(Path(folder).resolve()))

    def _set_project(self, project: Any) -> None:
        if self.project is not None and self.project is not project:
            self.project.detach()
            self.project.close()
        self.project = project
        from workbench.core.model.artifact_cache import set_cache_dir

        set_cache_dir(project.folder / "cache" if project is not None else None)

    # internals ----------------------------------------------------------------------------
    def _add(self, analysis: Analysis, results: dict[str, Any] | None = None) -> Entry:
        results = {k: v for k, v in (results or {}).items() if v is not None}
        self.push(AddVariant(self.workspace, analysis, results or None))
        return self.workspace.get(analysis.variant.id)


__all__ = ["Session", "Task", "UndoHistory", "WorkbenchError"]


def _pass_data(variant: Any, spec: str | None) -> Any:
    """The dataset a pass names in its `dataset` parameter, shaped for the variant."""
    if not spec or not isinstance(spec, str):
        return None
    from workbench.core.train.data import load_dataset

    if not variant.inputs:
        raise InvalidParameterError(f"{variant.name} has no input shape to fit {spec} to.")
    first = variant.inputs[0]
    return load_dataset(spec, tuple(first.shape), input_dtype=first.dtype)
