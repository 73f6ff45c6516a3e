"""Heavy jobs in a child process: the memory ceiling, cancel, progress, results as files."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.child_job import can_isolate
from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken, Progress
from workbench.core.memory_budget import (
    MemoryLimitError,
    default_limit,
    effective_limit,
    machine_memory,
    parse_memory,
)
from workbench.core.passes import registry
from workbench.core.passes.base import (
    Pass,
    PassContext,
    PassError,
    PassOutput,
    apply_pass,
    fingerprint,
    param,
)
from workbench.core.session.session import Session
from workbench.core.session.settings import Settings

pytestmark = pytest.mark.skipif(not can_isolate(), reason="heavy jobs run in a forked child "
                                "on Linux only")
_MB = 1 << 20


class GreedyPass(Pass):
    """A test pass that allocates (and touches) memory in steps of 16 MB, up to `cap_mb`."""

    name = "test.greedy"
    title = "Allocate on purpose"
    isolated = True

    @dataclass
    class Params:
        cap_mb: int = param(1024, min=16, max=1536)

    def run(self, variant: Any, params: Any, ctx: PassContext) -> PassOutput:
        hoard = []
        for i in range(params.cap_mb // 16):
            hoard.append(torch.ones(16 * _MB // 4))
            ctx.progress(i / (params.cap_mb // 16), f"holding {16 * (i + 1)} MB")
        return PassOutput(self.clone_model(variant), details={"held_mb": 16 * len(hoard)})


class StuckPass(Pass):
    """A test pass that never ends and never looks at its cancel token."""

    name = "test.stuck"
    title = "Never ends"
    isolated = True

    def run(self, variant: Any, params: Any, ctx: PassContext) -> PassOutput:
        ctx.progress(0.1, f"stuck in {os.getpid()}")
        while True:
            time.sleep(0.01)


@pytest.fixture
def with_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = [*registry.discover().plugins,
               registry.PluginInfo("test_greedy", "tests", GreedyPass),
               registry.PluginInfo("test_stuck", "tests", StuckPass)]
    monkeypatch.setattr(registry, "_cache", registry.Registry(plugins))


def _session(tmp_path: Path, ceiling: int = 0) -> Session:
    settings = Settings(tmp_path / "settings.json")
    settings.max_memory_bytes = ceiling
    session = Session(settings, remember_recent=False)
    session.run(session.open("zoo:mlp"))
    return session


def test_a_job_past_the_ceiling_is_stopped_and_changes_nothing(
        tmp_path: Path, with_test_passes: None) -> None:
    session = _session(tmp_path, ceiling=256 * _MB)
    before = [e.id for e in session.workspace.entries()]
    stamp = fingerprint(session.entry().analysis.variant)
    steps: list[Progress] = []
    with pytest.raises(MemoryLimitError) as caught:
        session.run(session.apply("test.greedy", {"cap_mb": 1536}), steps.append)
    err = caught.value
    assert err.limit == 256 * _MB
    assert err.peak > err.limit
    text = str(err)
    assert text.startswith("test.greedy on zoo:mlp was stopped: it used ")
    assert "past the memory ceiling of 256 MB. Nothing was changed." in text
    assert "ignore list" in text
    assert "machine with more memory" in text
    assert any(s.message.startswith("holding ") for s in steps)  # it did run, in a child
    assert not any(s.message == "holding 1536 MB" for s in steps)  # and was stopped early
    assert [e.id for e in session.workspace.entries()] == before
    assert fingerprint(session.entry().analysis.variant) == stamp


def test_a_job_within_the_ceiling_brings_its_result_back(tmp_path: Path,
                                                          with_test_passes: None) -> None:
    session = _session(tmp_path, ceiling=1 << 30)
    result = session.run(session.apply("test.greedy", {"cap_mb": 64}))
    assert result.report.details["held_mb"] == 64
    assert result.report.details["peak_memory"].endswith("MB")
    assert len(session.workspace.entries()) == 2


def test_cancel_kills_a_job_that_never_checks_its_token(with_test_passes: None) -> None:
    from workbench.core.model.zoo import build_zoo

    token = CancelToken()
    seen: list[str] = []

    def progress(fraction: float | None, message: str) -> None:
        seen.append(message)
        if message.startswith("stuck in "):
            token.cancel()  # the child is running: cancel now

    ctx = PassContext(cancel=token, progress=progress)
    with pytest.raises(CancelledError):
        apply_pass(StuckPass(), build_zoo("mlp"), {}, ctx)
    pid = int(next(m for m in seen if m.startswith("stuck in ")).split()[-1])
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)


def test_structured_pruning_reports_its_steps_and_brings_the_model_back() -> None:
    from workbench.core.model.zoo import build_zoo

    steps: list[str] = []
    variant = build_zoo("resnet-mini")  # residual adds and BatchNorm: real groups
    result = apply_pass(registry.discover().get("prune.structured"), variant, {"ratio": 0.5},
                        PassContext(progress=lambda f, m: steps.append(m)))
    assert "Dependency graph: tracing the model…" in steps
    assert any(m.startswith("Dependency graph: linking ") for m in steps)
    assert any(m.startswith("Pruned channel group 1 of at most ") for m in steps)
    assert result.report.after["parameters"] < result.report.before["parameters"]
    model = result.variant.model
    model.eval()
    variant.model.eval()
    with torch.no_grad():
        assert model(*variant.example_inputs()).shape == \
            variant.model(*variant.example_inputs()).shape
    assert any(p.requires_grad for p in model.parameters())


def test_cancel_of_a_structured_prune_during_the_graph_build() -> None:
    from workbench.core.model.zoo import build_zoo

    token = CancelToken()

    def progress(fraction: float | None, message: str) -> None:
        if message.startswith("Dependency graph: linking"):
            token.cancel()

    with pytest.raises(CancelledError):
        apply_pass(registry.discover().get("prune.structured"), build_zoo("lenet5"),
                   {"ratio": 0.5}, PassContext(cancel=token, progress=progress))


def test_a_failure_in_the_child_reads_as_in_process() -> None:
    from workbench.core.model.zoo import build_zoo

    class BrokenPass(Pass):
        name = "test.broken"
        isolated = True

        def run(self, variant: Any, params: Any, ctx: PassContext) -> PassOutput:
            raise ValueError("channel 7 is missing")

    with pytest.raises(PassError, match=r"^test\.broken failed: ValueError: channel 7 is "
                                        r"missing$"):
        apply_pass(BrokenPass(), build_zoo("lenet5"), {})


def test_memory_sizes_and_the_default() -> None:
    assert parse_memory("10G") == 10 << 30
    assert parse_memory("512M") == 512 << 20
    assert parse_memory("1.5GB") == int(1.5 * (1 << 30))
    if machine_memory():
        assert parse_memory("50%") == machine_memory() // 2
        assert default_limit() == int(machine_memory() * 0.6)
    assert effective_limit(0) == default_limit()
    assert effective_limit(123 << 20) == 123 << 20
    for bad in ("ten gigs", "0", "1K", "120%"):
        with pytest.raises(Exception, match="memory"):
            parse_memory(bad)


def test_the_ceiling_setting_is_saved(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "s.json")
    assert settings.max_memory_bytes == 0
    settings.set_max_memory(10 << 30)
    assert Settings(tmp_path / "s.json").max_memory_bytes == 10 << 30



def test_an_in_process_job_past_the_ceiling_is_stopped_at_its_next_check(
        tmp_path: Path) -> None:
    """Jobs that stay in this process are watched too: the watch cancels the job's token,
    and the run reports the ceiling rather than a cancel."""
    from workbench.core.jobs import Job
    from workbench.core.session.session import Task

    settings = Settings(tmp_path / "settings.json")
    settings.max_memory_bytes = 128 * _MB
    session = Session(settings, remember_recent=False)
    held: list[torch.Tensor] = []

    def job(token: CancelToken) -> Job[int]:
        for _ in range(3000):  # bounded: a watch that never trips fails, never hangs
            token.check()
            if len(held) < 64:  # up to 1 GB
                held.append(torch.ones(16 * _MB // 4))
            else:
                time.sleep(0.01)
            yield Progress(None, f"holding {16 * len(held)} MB")
        return len(held)

    with pytest.raises(MemoryLimitError, match=r"^Hoarding was stopped: it used .* past the "
                                               r"memory ceiling of 128 MB"):
        session.run(Task("Hoarding", job, lambda n: n))
    assert 8 <= len(held) < 3000
