"""A pass that fails in any way ends as one PassError and leaves its input unchanged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from workbench.core.errors import CancelledError, InvalidParameterError
from workbench.core.jobs import CancelToken
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes import Pass, PassContext, PassError, PassOutput, apply_pass, param
from workbench.core.passes.base import PassTimeoutError, fingerprint


class Misbehaves(Pass):
    """A plugin-like test pass that fails the way it is told to."""

    name = "test.misbehaves"
    title = "Misbehaves"

    @dataclass
    class Params:
        how: str = param("ok", choices=("ok", "raise", "none", "dict", "wrong_model",
                                        "onnx_claim", "unknown_backend", "sleep", "exit",
                                        "raise_and_mutate", "cooperative_sleep",
                                        "block"))
        seconds: float = param(2.0, min=0.0, max=60.0)

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> Any:
        how = params.how
        if how == "raise":
            raise RuntimeError("something broke\nwith a second line")
        if how == "raise_and_mutate":
            with torch.no_grad():
                next(variant.model.parameters()).zero_()
            raise ValueError("oops")
        if how == "none":
            return None
        if how == "dict":
            return {"model": self.clone_model(variant)}
        if how == "wrong_model":
            return PassOutput(model="not a model")
        if how == "onnx_claim":
            return PassOutput(model=self.clone_model(variant), backend="onnx")
        if how == "unknown_backend":
            return PassOutput(model=self.clone_model(variant), backend="tflite")
        if how == "sleep":
            time.sleep(params.seconds)
        if how == "cooperative_sleep":
            end = time.monotonic() + params.seconds
            while time.monotonic() < end:
                ctx.progress(0.5, "sleeping")
                ctx.cancel.check()
                time.sleep(0.01)
        if how == "block":  # until the test releases it: no clock decides anything
            RELEASE.wait(60)
            FINISHED.set()
        if how == "exit":
            raise SystemExit(3)
        return PassOutput(self.clone_model(variant))


RELEASE = threading.Event()
FINISHED = threading.Event()


class BadRequires(Misbehaves):
    name = "test.bad_requires"

    def requires(self, variant: Variant, params: Any) -> None:
        raise KeyError("no such layer")


class BadEnsures(Misbehaves):
    name = "test.bad_ensures"

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("raise", "test.misbehaves failed: RuntimeError: something broke"),
        ("none", "test.misbehaves returned NoneType instead of a PassOutput; "
                 "the result is discarded."),
        ("dict", "test.misbehaves returned dict instead of a PassOutput"),
        ("wrong_model", "test.misbehaves returned str where a torch nn.Module was expected; "
                        "the result is discarded."),
        ("onnx_claim", "returned Sequential where an onnx ModelProto was expected"),
        ("unknown_backend", "unknown backend 'tflite'"),
        ("exit", "test.misbehaves failed: SystemExit: 3"),
    ],
)
def test_a_failing_pass_gives_one_pass_error(how: str, message: str) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(PassError) as info:
        apply_pass(Misbehaves(), v, {"how": how})
    text = str(info.value)
    assert text.startswith("test.misbehaves ")
    assert message in text
    assert "\n" not in text
    assert fingerprint(v) == stamp


def test_a_well_behaved_run_still_works() -> None:
    v = build_zoo("mlp")
    result = apply_pass(Misbehaves(), v, {"how": "ok"}, PassContext(time_limit_s=600))
    assert result.variant.parent == v.id
    assert result.variant.backend == "torch"


@pytest.mark.parametrize("limit", [None, 600.0])
def test_a_pass_that_fails_after_changing_its_input_says_so(limit: float | None) -> None:
    v = build_zoo("mlp")
    with pytest.raises(PassError, match=r"failed: ValueError: oops, and it changed its input "
                                        r"variant, which may be damaged\.$"):
        apply_pass(Misbehaves(), v, {"how": "raise_and_mutate"},
                   PassContext(time_limit_s=limit))


@pytest.mark.parametrize(("cls", "message"), [
    (BadRequires, "test.bad_requires failed while checking its input: KeyError: 'no such "
                  "layer'"),
    (BadEnsures, "test.bad_ensures failed while checking its result: ZeroDivisionError: "
                 "division by zero"),
])
def test_requires_and_ensures_are_contained(cls: type[Pass], message: str) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(PassError) as info:
        apply_pass(cls(), v, {"how": "ok"})
    assert str(info.value) == message
    assert fingerprint(v) == stamp


@pytest.fixture
def blocked() -> Iterator[None]:
    """A pass in "block" mode waits until this fixture releases it, after the test."""
    RELEASE.clear()
    FINISHED.clear()
    yield
    RELEASE.set()


def test_a_slow_pass_is_abandoned_after_the_time_limit(blocked: None) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(PassError) as info:
        apply_pass(Misbehaves(), v, {"how": "block"}, PassContext(time_limit_s=0.5))
    assert not FINISHED.is_set()  # abandoned while the pass was still running
    assert isinstance(info.value, PassTimeoutError)
    assert str(info.value) == ("test.misbehaves took longer than 0.5 s; it was abandoned and "
                               "its result discarded.")
    assert fingerprint(v) == stamp


def test_an_abandoned_pass_is_asked_to_stop_and_muted() -> None:
    v = build_zoo("mlp")
    seen: list[str] = []
    # the limit only has to outlast the pass thread's start and fall well inside its 60 s
    ctx = PassContext(time_limit_s=2.0, progress=lambda f, m: seen.append(m))
    before = set(threading.enumerate())
    with pytest.raises(PassError, match=r"took longer than 2 s"):
        apply_pass(Misbehaves(), v, {"how": "cooperative_sleep", "seconds": 60.0}, ctx)
    heard = len(seen)
    assert heard > 0
    assert not ctx.cancel.cancelled  # the caller's token is left alone
    for t in set(threading.enumerate()) - before:  # the pass checks its token: it ends
        t.join(50)  # it checks its token every 10 ms; its own end is 60 s away
        assert not t.is_alive()
    assert len(seen) == heard  # nothing reported after the pass was abandoned


def test_cancelling_a_limited_pass_is_prompt(blocked: None) -> None:
    v = build_zoo("mlp")
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    with pytest.raises(CancelledError):
        apply_pass(Misbehaves(), v, {"how": "block"},
                   PassContext(cancel=token, time_limit_s=600))
    assert not FINISHED.is_set()  # the cancel ended the wait, not the pass or its limit


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf"), "soon"])
def test_a_bad_time_limit_is_refused(limit: Any) -> None:
    with pytest.raises(InvalidParameterError, match="time limit must be a positive number"):
        apply_pass(Misbehaves(), build_zoo("mlp"), {}, PassContext(time_limit_s=limit))
