"""Datasets that adapt to a model's declared input shape, with seeded splits.

Sources: `digits` (scikit-learn's bundled handwritten digits), `synthetic` /
`synthetic:regression`, an image folder (one subfolder per class), an `.npz` with `x` and
`y`, or a CSV (numeric features, label in a `label`/`target`/`y` column or the last one).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import InvalidParameterError, ModelNotFoundError, first_line

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DATASETS = ("digits", "synthetic", "synthetic:regression")


@dataclass
class Dataset:
    """Inputs shaped for one model, labels, and seeded train/val/test index splits."""

    name: str
    x: Any  # torch.Tensor, (N, *input_shape[1:])
    y: Any  # torch.Tensor, (N,) int64 for classification, float32 for regression
    task: str = "classification"
    class_names: list[str] = field(default_factory=list)
    splits: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def part(self, split: str) -> tuple[Any, Any]:
        idx = self.splits[split]
        return self.x[idx], self.y[idx]

    def loader(self, split: str, batch_size: int = 64, shuffle: bool = False,
               seed: int = 0) -> Any:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        x, y = self.part(split)
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                          generator=gen)

    def samples(self, n: int, split: str = "train") -> tuple[Any, Any]:
        x, y = self.part(split)
        return x[:n], y[:n]


def load_dataset(spec: str, input_shape: tuple[int, ...], *, seed: int = 0,
                 val: float = 0.15, test: float = 0.15, input_dtype: str = "float32",
                 limit: int | None = None) -> Dataset:
    """Load dataset `spec` and shape it for a model whose input is `input_shape`."""
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise InvalidParameterError("val and test shares must be in [0, 1) and leave a train "
                                    "split.")
    if input_dtype.startswith("int"):
        raise InvalidParameterError(
            "This model takes token ids; the image and tabular datasets do not fit it.")
    name, raw_x, raw_y, task, classes = _read(spec, input_shape, seed)
    if limit is not None:
        raw_x, raw_y = raw_x[:limit], raw_y[:limit]
    x = adapt(raw_x, input_shape)
    import torch

    y = torch.as_tensor(raw_y, dtype=torch.int64 if task == "classification" else torch.float32)
    ds = Dataset(name, x, y, task, classes)
    ds.splits = split_indices(len(ds), val, test, seed,
                              raw_y if task == "classification" else None)
    return ds


def split_indices(n: int, val: float, test: float, seed: int,
                  labels: np.ndarray | None = None) -> dict[str, Any]:
    """Seeded train/val/test indices (stratified when labels are given)."""
    import torch

    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        groups = [order]
    else:
        groups = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for g in groups:
        n_test = round(len(g) * test)
        n_val = round(len(g) * val)
        parts["test"].extend(g[:n_test])
        parts["val"].extend(g[n_test:n_test + n_val])
        parts["train"].extend(g[n_test + n_val:])
    return {k: torch.as_tensor(sorted(v), dtype=torch.int64) for k, v in parts.items()}


def _read(spec: str, shape: tuple[int, ...], seed: int
          ) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    if spec == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        images = (d.images / 16.0).astype(np.float32)
        return "digits", images, d.target, "classification", [str(c) for c in range(10)]
    if spec.startswith("synthetic"):
        return _synthetic(spec, shape, seed)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"No such dataset: {spec}. Use {', '.join(DATASETS)}, an image folder, an .npz "
            "or a .csv file.")
    if path.is_dir():
        return _image_folder(path, shape)
    if path.suffix.lower() == ".npz":
        return _npz(path)
    if path.suffix.lower() == ".csv":
        return _csv(path)
    raise InvalidParameterError(f"{path.name}: datasets are folders, .npz or .csv files.")


def _synthetic(spec: str, shape: tuple[int, ...], seed: int
               ) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    from sklearn.datasets import make_classification, make_regression

    features = math.prod(shape[1:])
    kind = spec.partition(":")[2] or "classification"
    if kind == "regression":
        x, y = make_regression(n_samples=1200, n_features=features,
                               n_informative=min(features, 10), noise=0.1, random_state=seed)
        y = (y - y.mean()) / (y.std() + 1e-9)
        return "synthetic:regression", x.astype(np.float32).reshape(-1, *shape[1:]), \
            y.astype(np.float32), "regression", []
    if kind != "classification":
        raise InvalidParameterError(f"Unknown synthetic task '{kind}': use classification "
                                    "or regression.")
    x, y = make_classification(n_samples=1200, n_features=features,
                               n_informative=min(features, 10), n_redundant=0, n_classes=4,
                               n_clusters_per_class=1, random_state=seed)
    return "synthetic", x.astype(np.float32).reshape(-1, *shape[1:]), y, "classification", \
        [str(c) for c in range(4)]


def _image_folder(path: Path, shape: tuple[int, ...]
                  ) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not classes:
        raise InvalidParameterError(f"{path.name} has no class subfolders.")
    gray = len(shape) != 4 or shape[1] == 1
    size = (shape[-1], shape[-2]) if len(shape) >= 3 else None
    xs, ys = [], []
    for label, cls in enumerate(classes):
        for f in sorted((path / cls).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as opened:
                    im = opened.convert("L" if gray else "RGB")
                    if size:
                        im = im.resize(size)
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise InvalidParameterError(f"{f.name} is not a readable image: {exc}") from exc
            xs.append(arr if gray else arr.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise InvalidParameterError(f"{path.name} holds no images.")
    return path.name, np.stack(xs), np.asarray(ys), "classification", classes


def _npz(path: Path) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise InvalidParameterError(f"{path.name} needs arrays named x and y.")
            x, y = z["x"].astype(np.float32), z["y"]
    except InvalidParameterError:
        raise
    except Exception as exc:  # numpy raises many types (BadZipFile, KeyError, EOFError...)
        raise InvalidParameterError(f"{path.name} is not a readable .npz: {first_line(exc)}"
                                    ) from exc
    return _labelled(path.stem, x, y)


def _csv(path: Path) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{path.name} is not a readable CSV: {exc}") from exc
    if len(rows) < 2:
        raise InvalidParameterError(f"{path.name} has no data rows.")
    header = [h.strip().lower() for h in rows[0]]
    has_header = not all(_is_number(h) for h in header)
    body = rows[1:] if has_header else rows
    label_col = len(header) - 1
    if has_header:
        label_col = next((header.index(k) for k in ("label", "target", "y", "class")
                          if k in header), label_col)
    try:
        feats = np.array([[float(v) for i, v in enumerate(r) if i != label_col] for r in body],
                         dtype=np.float32)
    except ValueError as exc:
        raise InvalidParameterError(f"{path.name}: features must be numeric ({exc}).") from exc
    labels = np.array([r[label_col].strip() for r in body])
    return _labelled(path.stem, feats, labels)


def _labelled(name: str, x: np.ndarray, y: np.ndarray
              ) -> tuple[str, np.ndarray, np.ndarray, str, list[str]]:
    if len(x) != len(y):
        raise InvalidParameterError(f"{name}: x has {len(x)} rows but y has {len(y)}.")
    if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
        return name, x, y.astype(np.float32), "regression", []
    classes, codes = np.unique(y, return_inverse=True)
    return name, x, codes, "classification", [str(c) for c in classes]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def adapt(x: np.ndarray, shape: tuple[int, ...]) -> Any:
    """Reshape or resize raw samples `x` (N, ...) to the model's input `shape` (batch first)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    target = tuple(shape[1:])
    if tuple(t.shape[1:]) == target:
        return t
    n = t.shape[0]
    if t[0].numel() == math.prod(target) and t.ndim == 2:
        return t.reshape(n, *target)
    if t.ndim == 3:  # (N, H, W) images
        t = t.unsqueeze(1)
    if t.ndim == 4:  # (N, C, H, W)
        if len(target) == 3:
            c, h, w = target
            t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
            if t.shape[1] != c:
                t = t.mean(1, keepdim=True).expand(n, c, h, w).contiguous()
            return t
        if len(target) == 2:  # sequence models see rows as time steps
            t = F.interpolate(t.mean(1, keepdim=True), size=target, mode="bilinear",
                              align_corners=False)
            return t[:, 0].contiguous()
        if len(target) == 1:
            side = math.isqrt(target[0])
            if side * side == target[0]:
                t = F.interpolate(t.mean(1, keepdim=True), size=(side, side), mode="bilinear",
                                  align_corners=False)
                return t.reshape(n, -1)
    raise InvalidParameterError(
        f"Samples of shape {tuple(x.shape[1:])} do not fit the model's input "
        f"{tuple(shape[1:])}.")
