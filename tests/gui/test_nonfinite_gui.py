"""A model with NaN and Inf weights opens in the window, with warnings and a clean histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import open_and_wait
from tests.core.test_nonfinite import save_nan_mlp


def _warning_rows(inspector: Any) -> list[str]:
    return [inspector.topLevelItem(i).text(1) for i in range(inspector.topLevelItemCount())
            if inspector.topLevelItem(i).text(0) == "Warning"]


def test_a_nan_model_opens_and_the_weights_tab_says_what_was_left_out(
        qtbot: Any, main_window: Any, tmp_path: Path) -> None:
    path = save_nan_mlp(tmp_path / "nan_mlp.safetensors")
    open_and_wait(qtbot, main_window, str(path), arch="zoo:mlp")
    assert main_window.last_error is None
    assert len(main_window.workspace) == 1
    assert "1.weight holds 3 NaN and 1 Inf values; statistics ignore them." in \
        _warning_rows(main_window.inspector)

    panel = main_window.weights_panel
    assert panel.current_tensor() == "Whole model"
    text = panel.summary.text()
    assert "6 non-finite values (3 NaN and 3 Inf) left out of the histogram" in text
    x, y = panel.histogram_data()
    assert np.isfinite(x).all()
    stats = main_window.workspace.selected.analysis.stats
    assert y.sum() == stats.summary.numel - 6

    assert panel.select_tensor("1.weight")
    assert "4 non-finite values (3 NaN and 1 Inf) left out of the histogram" in \
        panel.summary.text()
    assert panel.histogram_data()[1].sum() == 128 * 64 - 4
    assert panel.select_tensor("3.bias")
    assert "2 non-finite values (2 Inf) left out" in panel.summary.text()
    assert panel.select_tensor("5.weight")
    assert "non-finite" not in panel.summary.text()
