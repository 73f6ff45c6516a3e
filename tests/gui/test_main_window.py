"""The main window: open a model, select a node, see the inspector and the histogram follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.conftest import open_and_wait


def _click_node(qtbot: Any, window: Any, name: str) -> None:
    view = window.graph_view
    rect = view.node_scene_rect(name)
    assert rect is not None, f"{name} is not drawn"
    view.view.centerOn(rect.center())
    pos = view.view.mapFromScene(rect.center())
    with qtbot.waitSignal(view.node_selected, timeout=5000) as blocker:
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [name]


def test_open_select_node_inspector_and_histogram_follow(qtbot: Any, main_window: Any
                                                         ) -> None:
    open_and_wait(qtbot, main_window, "zoo:resnet-mini")
    assert len(main_window.workspace) == 1
    entry = main_window.workspace.selected
    assert main_window.inspector.value_of("Parameters").startswith("696,042")
    assert main_window.graph_view.graph() is entry.analysis.graph
    whole_x, whole_y = main_window.weights_panel.histogram_data()

    conv = next(n for n in entry.analysis.graph.nodes
                if n.module_path == ("layer2", "0", "conv1"))
    _click_node(qtbot, main_window, conv.name)
    assert main_window.inspector.value_of("Name") == conv.name
    assert main_window.inspector.value_of("Op") == "aten.conv2d"
    assert main_window.weights_panel.current_tensor() == "layer2.0.conv1.weight"
    _, y = main_window.weights_panel.histogram_data()
    assert y.sum() == 64 * 32 * 9  # the histogram now counts that layer's weights
    assert not np.array_equal(y, whole_y)
    del whole_x


def test_selecting_a_layer_in_weights_selects_the_node(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    assert main_window.weights_panel.select_tensor("3.weight")
    main_window.weights_panel.tensor_selected.emit("3.weight")
    node = main_window.graph_view.selected_node()
    assert node is not None
    assert "3.weight" in main_window.workspace.selected.analysis.graph.node(node).param_names


def test_bad_file_gives_a_message_not_a_crash(qtbot: Any, main_window: Any, tmp_path: Path
                                              ) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07not an onnx file")
    with qtbot.waitSignal(main_window.open_failed, timeout=30_000) as blocker:
        main_window.open_source(str(bad))
    assert "not a valid ONNX" in blocker.args[0]
    assert len(main_window.workspace) == 0
    assert "not a valid ONNX" in main_window.status_label.text()


def test_onnx_file_by_drag_and_drop_and_recent_files(qtbot: Any, main_window: Any,
                                                     onnx_mlp: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(onnx_mlp))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(main_window.model_opened, timeout=30_000):
        main_window.dropEvent(event)
    assert main_window.workspace.selected.analysis.graph.format == "onnx"
    assert main_window.settings.recent_files[0] == str(onnx_mlp.resolve())
    assert main_window.recent_menu.actions()[0].text() == str(onnx_mlp.resolve())


def test_screenshot_command_writes_a_png(tmp_path: Path) -> None:
    from workbench.cli import main

    out = tmp_path / "shot.png"
    assert main(["screenshot", "zoo:mlp", "--tab", "weights", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screenshot_takes_the_theme(tmp_path: Path) -> None:
    from PySide6.QtGui import QImage

    from workbench.cli import main
    from workbench.gui.theme import apply_theme

    shades = {}
    try:
        for theme in ("light", "dark"):
            out = tmp_path / f"{theme}.png"
            assert main(["screenshot", "zoo:mlp", "--theme", theme, "-o", str(out)]) == 0
            image = QImage(str(out))
            shades[theme] = image.pixelColor(5, image.height() - 5).lightness()  # status bar
    finally:
        apply_theme("system")  # the default of every other test
    assert shades["dark"] < 100 < shades["light"]


def test_cancel_button_hidden_when_idle(qtbot: Any, main_window: Any) -> None:
    assert not main_window.cancel_button.isVisible()
    worker = main_window.open_source("zoo:mlp")
    assert main_window.cancel_button.isVisible()
    with qtbot.waitSignal(main_window.jobs.finished, timeout=30_000):
        pass
    assert not main_window.cancel_button.isVisible()
    del worker


def test_device_menu_lists_the_gpus_torch_has(main_window: Any) -> None:
    import torch

    from workbench.gui.qt_device_menu import refresh_devices

    refresh_devices(main_window)
    assert main_window.device_actions["cpu"].isChecked()
    gpus = [n for n in main_window.device_actions if n.startswith("cuda:")]
    assert len(gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_clicking_empty_space_keeps_app_alive(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    qtbot.mouseClick(main_window.graph_view.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(2, 2))
    assert main_window.isVisible()


def test_pickle_asks_for_trust_in_a_dialog(qtbot: Any, main_window: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from PySide6.QtWidgets import QMessageBox

    from workbench.core.model.zoo import build_zoo

    path = tmp_path / "whole.pt"
    torch.save(build_zoo("mlp").model, path)
    asked: list[str] = []

    def answer(parent: Any, title: str, text: str, *args: Any) -> Any:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "warning", answer)
    main_window.show_dialogs = True
    with qtbot.waitSignal(main_window.model_opened, timeout=30_000):
        main_window.open_source(str(path))
    assert "arbitrary code" in asked[0]
    assert main_window.workspace.selected.analysis.variant.format == "pickle"


def test_declining_trust_loads_nothing(qtbot: Any, main_window: Any, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from PySide6.QtWidgets import QMessageBox

    from workbench.core.model.zoo import build_zoo

    path = tmp_path / "whole.pt"
    torch.save(build_zoo("mlp").model, path)
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *a: QMessageBox.StandardButton.No)
    main_window.show_dialogs = True
    with qtbot.waitSignal(main_window.jobs.finished, timeout=30_000):
        main_window.open_source(str(path))
    qtbot.wait(50)
    assert len(main_window.workspace) == 0


def test_state_dict_asks_for_its_architecture(qtbot: Any, main_window: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from PySide6.QtWidgets import QInputDialog

    from workbench.core.model.zoo import build_zoo

    path = tmp_path / "weights.pth"
    torch.save(build_zoo("lenet5").model.state_dict(), path)
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("lenet5", True))
    main_window.show_dialogs = True
    with qtbot.waitSignal(main_window.model_opened, timeout=30_000):
        main_window.open_source(str(path))
    assert main_window.workspace.selected.analysis.variant.metadata["architecture"] == "lenet5"


def test_the_architecture_dialog_takes_constructor_arguments(
        qtbot: Any, main_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    from workbench.core.model.torchvision_shim import import_torchvision

    path = tmp_path / "r18.pth"
    torch.save(import_torchvision().models.resnet18(num_classes=3).state_dict(), path)
    prompts: list[str] = []

    def answer(*args: Any, **kwargs: Any) -> tuple[str, bool]:
        prompts.append(args[2])
        return " torchvision.models:resnet18?num_classes=3 ", True

    monkeypatch.setattr(QInputDialog, "getItem", answer)
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)  # trust the import
    main_window.show_dialogs = True
    with qtbot.waitSignal(main_window.model_opened, timeout=30_000):
        main_window.open_source(str(path))
    assert "?key=value" in prompts[0]
    variant = main_window.workspace.selected.analysis.variant
    assert variant.metadata["arch_kwargs"] == {"num_classes": 3}
    assert variant.model.fc.out_features == 3


def test_save_as_project_and_reopen_it(qtbot: Any, main_window: Any, tmp_path: Path) -> None:
    from workbench.gui.qt_main_window import QtMainWindow

    open_and_wait(qtbot, main_window, "zoo:mlp")
    folder = tmp_path / "proj"
    assert main_window.save_project(str(folder))
    assert "proj" in main_window.windowTitle()
    vid = main_window.workspace.selected.id
    main_window.session.rename("renamed after saving", vid)  # autosaved at once
    other = QtMainWindow()
    other.show_dialogs = False
    qtbot.addWidget(other)
    assert other.open_project(str(folder))
    assert other.workspace.get(vid).name == "renamed after saving"
    assert other.variant_list.topLevelItemCount() == 1
    assert not other.open_project(str(tmp_path / "nothing-here"))
    assert other.last_error


def test_quitting_with_unsaved_variants_asks_first(qtbot: Any, main_window: Any,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    open_and_wait(qtbot, main_window, "zoo:mlp")
    main_window.show_dialogs = True
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(tmp_path / "saved"))
    assert not main_window.confirm_quit()  # Cancel: stays open
    assert main_window.confirm_quit()  # Save: a project, then quits
    assert (tmp_path / "saved" / "project.db").is_file()
    assert main_window.confirm_quit()  # in a project: nothing to ask
    main_window.show_dialogs = False
