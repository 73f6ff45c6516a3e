"""`workbench inspect` on a big graph does a fixed amount of work per node, whatever the
machine's speed: the Python and C function calls it makes are counted (`sys.setprofile`) at
three sizes of the same residual chain, and must grow in proportion to the nodes. It never
lays the graph out nor measures the weights unless `--stats` asks."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.big_onnx import make_big_onnx
from workbench.cli import main

SIZES = (1_000, 2_000, 4_000)
CALLS_PER_NODE = 120  # 81 today (309 before): parsing, shapes, MACs, the summary, its JSON


def _inspect_counting(path: Path, *extra: str) -> tuple[Counter[str], dict[str, Any]]:
    """Every function called by `workbench inspect PATH --json`, with its count, and the
    JSON it printed."""
    calls: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            calls[f"{code.co_filename}:{code.co_name}"] += 1
        elif event == "c_call":
            calls[f"c:{getattr(arg, '__qualname__', '?')}"] += 1

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sys.setprofile(profile)
        try:
            code = main(["inspect", str(path), "--json", *extra])
        finally:
            sys.setprofile(None)
    assert code == 0
    return calls, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Counter[str]]:
    folder = tmp_path_factory.mktemp("scaling")
    paths = {n: make_big_onnx(folder / f"chain{n}.onnx", n) for n in SIZES}
    _inspect_counting(paths[SIZES[0]])  # imports and first-use caches out of the count
    out = {}
    for n, p in paths.items():
        calls, report = _inspect_counting(p)
        assert (report["nodes"], len(report["layers"])) == (n, n)
        out[n] = calls
    return out


def test_inspect_makes_the_same_number_of_calls_for_each_added_node(
        counted: dict[int, Counter[str]]) -> None:
    total = {n: sum(c.values()) for n, c in counted.items()}
    first = total[2_000] - total[1_000]  # 1,000 more nodes
    second = total[4_000] - total[2_000]  # 2,000 more
    # linear: twice the nodes added, twice the calls (a quadratic step would make it 4x)
    assert 2 * first * 0.98 <= second <= 2 * first * 1.02
    assert first / 1_000 <= CALLS_PER_NODE


def test_no_function_is_called_more_than_linearly(counted: dict[int, Counter[str]]) -> None:
    """Function by function: none is called ever more often per node as the graph grows."""
    small, big = counted[1_000], counted[4_000]
    for name, n in big.items():
        assert n <= 4 * small.get(name, 0) + 64, name


def test_inspect_neither_lays_out_nor_measures_the_weights(
        counted: dict[int, Counter[str]]) -> None:
    called = set(counted[4_000])
    for module in ("graph_layout.py", "display_graph.py:build_display_graph",
                   "display_graph.py:prepare_view", "stats_kernels.py",
                   "stats.py:stats_from_tensors", "stats.py:named_weights"):
        assert not any(module in name for name in called), module


def test_stats_are_measured_when_asked(tmp_path: Path) -> None:
    calls, report = _inspect_counting(make_big_onnx(tmp_path / "small.onnx", 40), "--stats")
    assert any("stats.py:stats_from_tensors" in name for name in calls)
    assert report["weights"]["summary"]["numel"] == 10 * 4 * 4 * 3 * 3
