"""The Session's measuring use cases: benchmark, profile, sensitivity and compare.

A mixin of `Session`. Each result is recorded with its variant when the task commits, so
the Compare view, the project and the next selection see it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidParameterError
from workbench.core.jobs import CancelToken, Job, Progress

if TYPE_CHECKING:
    from workbench.core.measure.benchmark import BenchConfig, BenchResult
    from workbench.core.measure.compare import ComparisonRow
    from workbench.core.measure.profile import LayerProfile
    from workbench.core.measure.sensitivity import LayerSensitivity
    from workbench.core.session.session import Task
    from workbench.core.session.workspace import Entry

log = logging.getLogger(__name__)


class MeasureUseCases:
    """Benchmark, profile, sensitivity and compare; mixed into `Session`."""

    settings: Any
    workspace: Any

    def entry(self, variant_id: str | None = None) -> Entry:  # provided by Session
        raise NotImplementedError

    def benchmark(self, config: BenchConfig, variant_id: str | None = None
                  ) -> Task[BenchResult]:
        """Latency of a variant; the commit records the result and its batch-1 p50."""
        from workbench.core.measure.benchmark import benchmark
        from workbench.core.session.session import Task

        entry = self.entry(variant_id)
        variant = entry.analysis.variant
        config.validate()

        def job(token: CancelToken) -> Job[BenchResult]:
            return (yield from benchmark(variant, config, token))

        def commit(result: BenchResult) -> BenchResult:
            if entry.id in self.workspace:
                self.workspace.set_result(entry.id, "benchmark", result)
                if result.records:
                    first = min(result.records, key=lambda r: r.batch)
                    self.workspace.set_result(entry.id, "latency_ms", first.p50_ms)
            return result

        return Task(f"Benchmarking {variant.name}", job, commit, graceful=True)

    def profile(self, runtime: str = "auto", batch: int = 1, variant_id: str | None = None,
                device: str | None = None) -> Task[LayerProfile]:
        """Time every layer of a variant (for the heat map) on `device` (default: the
        settings'); the commit records it."""
        from workbench.core.devices import check_device
        from workbench.core.measure.profile import profile_layers
        from workbench.core.session.session import Task

        entry = self.entry(variant_id)
        variant = entry.analysis.variant
        if runtime not in ("auto", "ort", "torch") or batch < 1:
            raise InvalidParameterError("Profile with runtime auto, ort or torch, at a batch "
                                        "of at least 1.")
        device = check_device(device or self.settings.device)

        def job(token: CancelToken) -> Job[LayerProfile]:
            yield Progress(None, f"Profiling the layers of {variant.name}…")
            return profile_layers(variant, runtime, batch, device=device)

        return Task(f"Profiling {variant.name}", job,
                    lambda p: self._keep(entry.id, "profile", p))

    def sensitivity(self, method: str = "prune", ratio: float = 0.5,
                    dataset: str | None = None, variant_id: str | None = None,
                    device: str | None = None) -> Task[list[LayerSensitivity]]:
        """Score each prunable layer alone, most sensitive first, on `device` (default: the
        settings'); the commit records it."""
        from workbench.core.devices import check_device
        from workbench.core.measure.sensitivity import sensitivity
        from workbench.core.session.session import Task
        from workbench.core.train.data import load_dataset

        entry = self.entry(variant_id)
        variant = entry.analysis.variant
        if dataset and not variant.inputs:
            raise InvalidParameterError(f"{variant.name} has no declared input shape.")
        device = check_device(device or self.settings.device)

        def job(token: CancelToken) -> Job[list[LayerSensitivity]]:
            data = None
            if dataset:
                spec = variant.inputs[0]
                data = load_dataset(dataset, spec.shape, input_dtype=spec.dtype)
            return (yield from sensitivity(variant, data, method, ratio, cancel=token,
                                           device=device))

        return Task(f"Sensitivity of {variant.name}", job,
                    lambda rows: self._keep(entry.id, "sensitivity", rows))

    def compare(self, baseline_id: str | None = None) -> list[ComparisonRow]:
        """One row per variant: size, MACs, accuracy and latency against the baseline."""
        from workbench.core.measure.compare import compare_table

        if baseline_id is not None and baseline_id not in self.workspace:
            raise InvalidParameterError(f"No variant {baseline_id!r} in this session.")
        return compare_table(self.workspace.entries(), baseline=baseline_id)

    def _keep(self, variant_id: str, key: str, value: Any) -> Any:
        if variant_id in self.workspace:
            self.workspace.set_result(variant_id, key, value)
        return value
