"""The Train tab's teacher field offers only the variants that fit the selected student."""

from __future__ import annotations

from typing import Any

from tests.conftest import open_and_wait


def test_the_teacher_field_offers_only_fitting_variants(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")  # 28×28 inputs: no teacher of a 32×32 model
    open_and_wait(qtbot, main_window, "zoo:resnet-mini")  # trained: the natural teacher
    open_and_wait(qtbot, main_window, "zoo:mlp", input_shape=(1, 1, 32, 32))
    open_and_wait(qtbot, main_window, "zoo:mobilenet-mini")  # the student, selected
    field = main_window.train_panel.teacher
    offered = [field.itemText(i) for i in range(field.count())]
    assert offered == ["zoo:resnet-mini", "zoo:mlp"]
    assert field.currentText() == "zoo:resnet-mini"
    lenet = next(e for e in main_window.workspace.entries() if e.name == "zoo:lenet5")
    main_window.workspace.select(lenet.id)  # nothing else takes 28×28 inputs
    assert field.count() == 0
    assert field.placeholderText()
