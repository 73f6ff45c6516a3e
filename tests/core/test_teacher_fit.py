"""A teacher must take the student's inputs and output as many classes; the Session refuses
one that does not, in a sentence."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.analysis import analyse
from workbench.core.jobs import run_job
from workbench.core.model.zoo import build_zoo
from workbench.core.session.session import Session
from workbench.core.train.teacher_fit import teacher_misfit
from workbench.core.train.training import TrainConfig


def _analysis(name: str, **options: Any) -> Any:
    return run_job(analyse(build_zoo(name, **options)))


def test_a_teacher_fits_by_inputs_and_classes() -> None:
    student = _analysis("mobilenet-mini")  # 1×32×32, 10 classes
    assert teacher_misfit(student, _analysis("resnet-mini")) is None
    assert teacher_misfit(student, _analysis("mlp", input_shape=(1, 1, 32, 32))) is None
    lenet = teacher_misfit(student, _analysis("lenet5"))
    assert lenet is not None
    assert "1×28×28 float32" in lenet
    assert "1×32×32" in lenet
    five = teacher_misfit(student, _analysis("resnet-mini", num_classes=5))
    assert five is not None
    assert "5 classes" in five
    assert "10 classes" in five
    batched = _analysis("resnet-mini", input_shape=(4, 1, 32, 32))  # the batch does not count
    assert teacher_misfit(student, batched) is None


def test_the_session_refuses_a_teacher_that_does_not_fit() -> None:
    session = Session(remember_recent=False)
    teacher = session.run(session.open("zoo:lenet5"))
    student = session.run(session.open("zoo:resnet-mini?trained=false"))
    with pytest.raises(InvalidParameterError, match="does not fit: zoo:lenet5 takes 1×28×28"):
        session.distill("digits", TrainConfig(epochs=1), teacher.id, variant_id=student.id)
