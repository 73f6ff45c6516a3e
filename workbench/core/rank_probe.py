"""What each rank of a distributed run did, for the multi-process tests to compare.

With `WORKBENCH_RANK_PROBE` naming a folder, every process appends one JSON line per fact to
`rank<RANK>.jsonl` there: the files it wrote, its pruning masks after each epoch, the mode and
BatchNorm statistics of a distillation teacher. Unset (always, outside the tests), `probe` is
a no-op that costs one environment lookup.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

PROBE_ENV = "WORKBENCH_RANK_PROBE"


def enabled() -> bool:
    """True when a folder is named for the facts."""
    return bool(os.environ.get(PROBE_ENV))


def probe(event: str, **facts: Any) -> None:
    """Append `{"event": event, **facts}` to this rank's file, when probing."""
    folder = os.environ.get(PROBE_ENV)
    if not folder:
        return
    rank = os.environ.get("RANK", "0") or "0"
    path = Path(folder) / f"rank{rank}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"event": event, **facts}) + "\n")


def read(folder: str | os.PathLike[str], rank: int) -> list[dict[str, Any]]:
    """The facts rank `rank` recorded in `folder` (empty when it recorded none)."""
    path = Path(folder) / f"rank{rank}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def digest(tensors: dict[str, Any]) -> str:
    """A SHA-256 of named tensors' exact values (equal digests: equal tensors)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.bool:
            t = t.to(torch.uint8)
        elif t.dtype == torch.bfloat16:
            t = t.float()
        h.update(name.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
