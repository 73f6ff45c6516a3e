"""The job scope: the one place that sets and restores process-wide state around a job."""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import workbench
from workbench.core.errors import CancelledError
from workbench.core.job_scope import (
    job_scope,
    quiet_stdout,
    release_memory,
    request_seed,
    request_threads,
)
from workbench.core.jobs import CancelToken, Progress, run_job
from workbench.core.model.zoo import build_zoo

OTHER = 2 if torch.get_num_threads() != 2 else 3


def _job(end: str, token: CancelToken | None = None) -> Iterator[Progress]:
    """A job that changes threads, grad mode, the global generator and the collector."""
    request_threads(OTHER)
    request_seed(7)
    torch.set_grad_enabled(False)  # a job that forgets to turn it back on
    gc.disable()
    yield Progress(0.5, "half way")
    if token is not None:
        token.check()
    if end == "error":
        raise ValueError("boom")
    return "done"


def _state() -> tuple[Any, ...]:
    return (torch.get_num_threads(), torch.is_grad_enabled(), gc.isenabled(),
            gc.get_threshold(), torch.get_rng_state())


@pytest.mark.parametrize("end", ["success", "error", "cancel"])
def test_the_scope_restores_process_state_however_the_job_ends(end: str) -> None:
    before = _state()
    seen: list[int] = []
    token = CancelToken()

    def progress(step: Progress) -> None:
        seen.append(torch.get_num_threads())
        if end == "cancel":
            token.cancel()

    if end == "success":
        assert run_job(_job(end), progress) == "done"
    else:
        with pytest.raises(CancelledError if end == "cancel" else ValueError):
            run_job(_job(end, token), progress)
    assert seen == [OTHER]  # the request held while the job ran
    after = _state()
    assert after[:4] == before[:4]
    assert torch.equal(after[4], before[4])


def test_an_abandoned_job_is_closed_inside_its_scope() -> None:
    before = torch.get_num_threads()
    closed_with: list[int] = []

    def job() -> Iterator[Progress]:
        request_threads(OTHER)
        try:
            while True:
                yield Progress(None)
        finally:
            closed_with.append(torch.get_num_threads())

    def stop(step: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(job(), stop)
    assert closed_with == [OTHER]  # its `finally` ran before the scope restored anything
    assert torch.get_num_threads() == before


def test_requests_outside_a_scope_are_refused() -> None:
    with pytest.raises(RuntimeError, match="job_scope"):
        request_threads(1)
    with pytest.raises(RuntimeError, match="job_scope"):
        request_seed(0)


def test_nested_scopes_restore_what_they_found() -> None:
    before = torch.get_num_threads()
    with job_scope(threads=OTHER):
        with job_scope():
            request_threads(1)
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == OTHER
    assert torch.get_num_threads() == before


def test_freezing_lasts_until_memory_is_released() -> None:
    release_memory()
    with job_scope(freeze_gc=True):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() > 0  # open models stay out of the collector's reach
    release_memory()
    assert gc.get_freeze_count() == 0


def test_seeded_draws_repeat_and_leave_the_global_generator_alone() -> None:
    before = torch.get_rng_state()
    draws = []
    for _ in range(2):
        with job_scope():
            request_seed(3)
            draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])
    assert torch.equal(torch.get_rng_state(), before)


def test_zoo_models_come_from_their_seed_not_the_global_generator() -> None:
    a = build_zoo("transformer-tiny", seed=1).model.state_dict()
    torch.rand(100)  # the global generator moves on
    b = build_zoo("transformer-tiny", seed=1).model.state_dict()
    c = build_zoo("transformer-tiny", seed=2).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])
    # layers are drawn one by one, not deep copies of one another
    assert not torch.equal(a["encoder.layers.0.linear1.weight"],
                           a["encoder.layers.1.linear1.weight"])


def test_quiet_stdout_drops_prints_only_inside_a_scope(capfd: pytest.CaptureFixture[str]
                                                       ) -> None:
    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    with quiet_stdout():
        say("library call")
    with job_scope(), quiet_stdout():
        say("python print")
        os.write(1, b"native write\n")
    say("after")
    out = capfd.readouterr().out
    assert "library call" in out
    assert "after" in out
    assert "python print" not in out
    assert "native write" not in out


# Only the job scope may touch these (the issue: jobs changed them from worker threads).
_FORBIDDEN = re.compile(
    r"(?<![\w.)])torch\.manual_seed\(|\bset_num_threads\(|\bset_rng_state\(|\bos\.dup2\("
    r"|\bredirect_stdout\b|\bredirect_stderr\b|\bgc\.(?:un)?freeze\(|\bnp\.random\.seed\("
    r"|(?<![\w.])random\.seed\(|\bfork_rng\(")
_ALLOWED = {"workbench/core/job_scope.py"}


def test_only_the_job_scope_touches_process_wide_state() -> None:
    root = Path(workbench.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _FORBIDDEN.search(line) and rel not in _ALLOWED:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
    # the scan itself must be able to fail
    assert _FORBIDDEN.search("    torch.manual_seed(cfg.seed)")
    assert _FORBIDDEN.search("torch.set_num_threads(4)")
    assert not _FORBIDDEN.search("gen = torch.Generator().manual_seed(seed)")
