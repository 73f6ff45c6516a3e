"""Import torchvision even when its compiled extension cannot load.

PyPI's torchvision wheel beside the CPU torch is a CUDA build: its `_C` library fails to
load, and `import torchvision` then dies registering fake kernels for `torchvision::nms` and
`qnms`, ops that were never defined. The classification models are pure Python and need
neither, so when `_C` is missing we declare the two schemas (no kernels: calling them still
fails, clearly) and import again. Detection models, which run `nms`, stay unusable.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_library: Any = None  # kept alive: dropping a torch.library.Library removes its schemas


def import_torchvision() -> ModuleType:
    """`import torchvision`, declaring the ops its missing extension would have."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        log.debug("torchvision's extension did not load; declaring its op schemas",
                  exc_info=True)
    global _library
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    if _library is None:
        _library = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            try:
                _library.define(schema)
            except RuntimeError:  # already defined by a loaded extension
                log.debug("torchvision::%s exists", schema.split("(")[0], exc_info=True)
    return importlib.import_module("torchvision")


def prepare_torchvision() -> None:
    """Before importing a library that imports torchvision if it is installed (transformers
    does): make that import work, or leave torchvision alone if it is absent."""
    import importlib.util

    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    try:
        import_torchvision()
    except Exception:  # the library will report its own import error, in its own words
        log.debug("torchvision could not be prepared", exc_info=True)
