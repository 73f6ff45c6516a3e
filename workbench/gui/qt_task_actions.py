"""The window's use cases: each asks the Session for a task and runs it in a worker.

One guard for all of them (`_launch`): nothing starts while a job runs, a bad request is a
message before any work, and the panel that started the job is told when it ends. The
orchestration itself lives in `workbench.core.session`; here is only what to show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.session.use_train import FidelityResult

log = logging.getLogger(__name__)


class QtTaskActions:
    """Mixed into `QtMainWindow`: apply, train, evaluate, benchmark, profile, export."""

    session: Any
    jobs: Any
    workspace: Any
    settings: Any

    def _error(self, message: str) -> None:  # provided by the window
        raise NotImplementedError

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _launch(self, make: Callable[[], Any], on_done: Callable[[Any], None],
                what: str, panel: Any = None,
                on_failed: Callable[[str], None] | None = None) -> Any:
        """Run `make()`'s task unless busy or refused; returns the worker (or None)."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return None
        try:
            task = make()
        except WorkbenchError as exc:
            self._error(str(exc))
            if on_failed is not None:
                on_failed(str(exc))
            return None

        def done(result: Any) -> None:
            if panel is not None:
                panel.set_running(False)
            on_done(result)

        def failed(exc: BaseException) -> None:
            if panel is not None:
                panel.set_running(False)
            message = str(exc) if isinstance(exc, WorkbenchError) else (
                f"{what} failed: {type(exc).__name__}: {exc}")
            self._error(message)
            if on_failed is not None:
                on_failed(message)

        if panel is not None:
            panel.set_running(True)
        return self.jobs.run_task(task, done, failed)

    # passes -------------------------------------------------------------------------------
    def apply_pass(self, pass_name: str, values: dict[str, Any]) -> Any:
        """Apply a pass to the selected variant in a worker; returns the worker."""
        def done(result: Any) -> None:
            self._panel_call("passes", "show_report", result.report)
            self._status(f"{pass_name}: new variant {result.variant.name}")
            self.pass_applied.emit(result.variant.id)

        return self._launch(lambda: self.session.apply(pass_name, values), done, pass_name,
                            on_failed=self.pass_failed.emit)

    # training -----------------------------------------------------------------------------
    def start_training(self, options: dict[str, Any]) -> Any:
        """Train, distill or prune-and-fine-tune the selected variant."""
        from workbench.core.train.training import TrainConfig

        def make() -> Any:
            config = TrainConfig.parse(options["config"], device=self.settings.device,
                                       resume=bool(options.get("resume")))
            data, mode = options["dataset"], options["mode"]
            if int(options.get("processes") or 1) > 1:
                from workbench.core.session.launched_jobs import launched_task

                return launched_task(self.session, mode, data, config, options)
            if mode == "distill":
                return self.session.distill(data, config, options.get("teacher") or "",
                                            options["temperature"], options["alpha"],
                                            bool(options.get("transfer")))
            if mode == "prune":
                return self.session.prune_finetune(data, config, options["rounds"],
                                                   options["step"], options["budget"])
            return self.session.train(data, config)

        def done(result: Any) -> None:
            entries = result if isinstance(result, list) else [result]
            how = "stopped early" if self.jobs.cancelling else "finished"
            names = ", ".join(e.name for e in entries)
            self._status(f"Training {how}: {len(entries)} new variant(s): {names}.")
            self.training_finished.emit([e.id for e in entries])

        return self._launch(make, done, "Training", self.train_panel)

    def evaluate_selected(self, dataset: str) -> Any:
        """Accuracy on `dataset` (for an embedding model, fidelity against its parent)."""
        entry = self.workspace.selected

        def done(result: Any) -> None:
            name = entry.name if entry is not None else "variant"
            if isinstance(result, FidelityResult):
                cos = "undefined" if result.cosine is None else f"{result.cosine:.4f}"
                self._status(f"{name}: cosine {cos} against its parent")
            else:
                acc = "n/a" if result.accuracy is None else f"{result.accuracy:.4f}"
                self._status(f"{name}: accuracy {acc}, loss {result.loss:.4f}")

        return self._launch(lambda: self.session.evaluate(dataset), done, "Evaluation")

    # measuring ----------------------------------------------------------------------------
    def start_benchmark(self, options: dict[str, Any]) -> Any:
        """Benchmark the selected variant; results are stored with it."""
        from workbench.core.measure.benchmark import BenchConfig

        entry = self.workspace.selected

        def make() -> Any:
            return self.session.benchmark(BenchConfig.parse(options,
                                                            device=self.settings.device))

        panel = self.benchmark_panel
        panel.reset()
        panel.subject = entry.name if entry is not None else None

        def done(result: Any) -> None:
            if self.workspace.selected is entry:
                panel.show_notes(list(getattr(result, "notes", []) or []))
            if entry is not None and self.workspace.selected is not entry:
                name = entry.name
                self._status(f"Benchmark of {name} done; select {name} to see it.")
            self.benchmark_finished.emit(entry.id if entry is not None else "")

        return self._launch(make, done, "Benchmark", panel)

    def start_profile(self, options: dict[str, Any]) -> Any:
        entry = self.workspace.selected

        def done(profile: Any) -> None:
            if entry is not None and self.workspace.selected is not entry:
                # the heat map and table belong to the profiled variant, not the one on show
                self._status(f"Profile of {entry.name} ready; select it to see the heat map.")
                return
            self.benchmark_panel.show_profile(profile)
            self._show_heat(profile)
            self._status("Profile ready: the Graph tab shows a heat map.")

        return self._launch(lambda: self.session.profile(options.get("runtime", "auto"),
                                                         options.get("batch", 1)),
                            done, "Profile", self.benchmark_panel)

    def start_sensitivity(self, options: dict[str, Any]) -> Any:
        entry = self.workspace.selected

        def done(rows: Any) -> None:
            if entry is not None and self.workspace.selected is not entry:
                self._status(f"Sensitivity of {entry.name} ready; select it to see it.")
                return
            self.benchmark_panel.show_sensitivity(rows)

        return self._launch(
            lambda: self.session.sensitivity(options["method"], options["ratio"],
                                             options.get("data") or None),
            done, "Sensitivity analysis", self.benchmark_panel)

    # export -------------------------------------------------------------------------------
    def export_to(self, path: str, opset: int = 18, fmt: str | None = None) -> Any:
        """Export the selected variant in a worker (ONNX conversion can take a while); the
        status bar then says what was written, where, and how big it is."""
        from workbench.gui.format import human_bytes

        entry = self.workspace.selected

        def done(written: dict[str, Any]) -> None:
            what = {"onnx": "ONNX", "pt2": ".pt2", "torchscript": "TorchScript",
                    "safetensors": "safetensors"}.get(written.get("format", ""), "")
            if written.get("opset"):
                what += f" opset {written['opset']}"
            made = written.get("export")
            if made:  # a torch model exported: by which exporter, and how long it took
                what += (f", {made['exporter']} exporter, " + ("cached" if made["cached"]
                                                               else f"{made['seconds']:.1f} s"))
            name = entry.name if entry is not None else "the variant"
            self._status(f"Exported {name} to {written['output']} "
                         f"({what}, {human_bytes(written.get('bytes', 0))}).")

        return self._launch(lambda: self.session.export(path, fmt=fmt, opset=opset), done,
                            "Export")
