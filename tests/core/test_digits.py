"""The digits images are read from scikit-learn's bundled file without importing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core.model import digits

ROOT = Path(__file__).resolve().parents[2]


def test_the_file_gives_what_load_digits_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_digits

    digits.digit_images.cache_clear()
    images = digits.digit_images()
    assert images.shape == (1797, 8, 8)
    assert not images.flags.writeable
    np.testing.assert_array_equal(images, load_digits().images)
    monkeypatch.setattr(digits, "_digits_file", lambda: None)  # scikit-learn laid out otherwise
    digits.digit_images.cache_clear()
    try:
        np.testing.assert_array_equal(digits.digit_images(), images)
    finally:
        digits.digit_images.cache_clear()


def test_sample_inputs_leave_scikit_learn_unimported() -> None:
    code = ("import sys\n"
            "from workbench.core.model.sample_inputs import sample_inputs\n"
            "from workbench.core.model.zoo import build_zoo\n"
            "s = sample_inputs(build_zoo('resnet-mini'), 4)\n"
            "assert s.source == 'digits', s.source\n"
            "print('sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.stdout.strip() == "False"
