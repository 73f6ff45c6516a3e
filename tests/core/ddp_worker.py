"""A worker for the multi-process tests, started by torch's elastic launcher:
`python -m torch.distributed.run --nproc-per-node 2 tests/core/ddp_worker.py SPEC OUT`.

SPEC is a JSON list of runs ({"model", "input_shape", "epochs", "strategy", ...}); every rank
trains each run in turn and rank 0 writes their histories and test accuracies to OUT.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Any

from workbench.core.jobs import run_job
from workbench.core.model.zoo import build_zoo
from workbench.core.train import distributed as dd
from workbench.core.train.data import load_dataset
from workbench.core.train.training import TrainConfig, train

_SHARDED: list[bool] = []
_wrap = dd.wrap


def _recording_wrap(model: Any, *args: Any) -> Any:
    """`dd.wrap`, noting whether it sharded the parameters (DTensors under FSDP)."""
    from torch.distributed.tensor import DTensor

    wrapped = _wrap(model, *args)
    _SHARDED.append(any(isinstance(p, DTensor) for p in wrapped.parameters()))
    return wrapped


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    shape = tuple(spec["input_shape"])
    variant = build_zoo(spec["model"], shape, 10, seed=0, trained=False)
    data = load_dataset(spec.get("data", "digits"), shape, seed=0)
    cfg = replace(TrainConfig(epochs=spec["epochs"], batch_size=spec.get("batch_size", 64),
                              seed=0), strategy=spec.get("strategy", "ddp"))
    result = run_job(train(variant, data, cfg))
    return {"history": result.history, "test_accuracy": result.test.accuracy,
            "sharded": _SHARDED[-1]}


def main() -> None:
    dd.wrap = _recording_wrap
    specs = json.loads(sys.argv[1])
    results = [_run(s) for s in specs]
    if dd.is_main_process():
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
