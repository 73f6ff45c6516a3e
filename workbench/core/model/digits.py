"""scikit-learn's 8x8 digits, read straight from its bundled file.

`from sklearn.datasets import load_digits` imports most of scikit-learn (2-5 s on a cold
process, more than the int8 pass it feeds); the images are one gzip CSV inside the package
(`sklearn/datasets/data/digits.csv.gz`, 64 pixels then the label on each row), located
without importing scikit-learn. When the file is not where it should be, `load_digits` is
used after all.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np


def _digits_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def digit_images() -> np.ndarray:
    """All 1,797 digits as a read-only (N, 8, 8) float64 array, pixel values 0-16."""
    path = _digits_file()
    if path is not None:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        images = data[:, :-1].reshape(-1, 8, 8)
    else:  # scikit-learn laid out differently
        from sklearn.datasets import load_digits

        images = np.asarray(load_digits().images, dtype=np.float64)
    images.flags.writeable = False
    return images
