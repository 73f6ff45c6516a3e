"""Benchmark QtGraphView on synthetic 1,000- and 10,000-node graphs.

Run:  QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/bench_graph_view.py

Prints layout time, time to first paint (set_graph + show + processEvents + viewport grab) and
the mean frame time of 20 pan and 20 zoom steps, each followed by a forced repaint. Everything is
expanded (`max_visible` huge), the worst case; "collapsed" shows the default start for contrast.
Targets: 10k first paint < 3 s, pan/zoom frame < 50 ms.
"""

from __future__ import annotations

import statistics
import sys
import time

from PySide6.QtWidgets import QApplication

from workbench.core.graph.graph_layout import (
    build_display_graph,
    collapsible_modules,
    layered_layout,
)
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.gui.qt_graph_view import QtGraphView


def synthetic_graph(n_nodes: int) -> LayerGraph:
    """ResNet bottlenecks, DenseNet blocks and attention branches, repeated up to `n_nodes`."""
    nodes: list[Node] = []
    types: dict[tuple[str, ...], str] = {}

    def add(path: tuple[str, ...], leaf: str | None, op: str, inputs: list[TensorInfo],
            channels: int = 64, params: int = 0, mtype: str | None = None) -> TensorInfo:
        """A node named after its module path (plus `leaf`, a submodule or an op name)."""
        full = (*path, leaf) if leaf and mtype else path
        name = ".".join((*path, leaf) if leaf else path)
        out = TensorInfo(name + ":0", (1, channels, 56, 56), "float32")
        nodes.append(Node(name, op, list(inputs), [out], params=params, macs=params * 3136,
                          module_path=full, module_type=mtype))
        return out

    def conv_bn(path: tuple[str, ...], i: str, x: TensorInfo, c: int, k: int) -> TensorInfo:
        h = add(path, f"conv{i}", "Conv", [x], c, c * c * k, "Conv2d")
        return add(path, f"bn{i}", "BatchNormalization", [h], c, 2 * c, "BatchNorm2d")

    cur = TensorInfo("x", (1, 64, 56, 56), "float32")
    stage = 0
    while len(nodes) < n_nodes:
        stage += 1
        if stage % 3 == 1:  # a ResNet stage of bottlenecks
            types[(f"layer{stage}",)] = "Sequential"
            for b in range(8):
                bp = (f"layer{stage}", str(b))
                types[bp] = "Bottleneck"
                x = cur
                h = add(bp, "relu1", "Relu", [conv_bn(bp, "1", x, 64, 1)], 64, 0, "ReLU")
                h = add(bp, "relu2", "Relu", [conv_bn(bp, "2", h, 64, 9)], 64, 0, "ReLU")
                h = conv_bn(bp, "3", h, 256, 1)
                if b == 0:
                    dp = (*bp, "downsample")
                    types[dp] = "Sequential"
                    x = conv_bn(dp, "", x, 256, 1)
                h = add(bp, "add", "Add", [h, x], 256)
                cur = add(bp, "relu3", "Relu", [h], 256)
        elif stage % 3 == 2:  # a DenseNet block: every layer concatenates all before it
            sp = (f"dense{stage}",)
            types[sp] = "DenseBlock"
            feats = [cur]
            for k in range(10):
                lp = (*sp, f"denselayer{k}")
                types[lp] = "DenseLayer"
                c = 64 + 32 * k
                h = add(lp, "cat", "Concat", feats, c)
                h = add(lp, "relu1", "Relu", [conv_bn(lp, "1", h, c, 1)], c, 0, "ReLU")
                h = add(lp, "relu2", "Relu", [conv_bn(lp, "2", h, 128, 1)], 128, 0, "ReLU")
                feats.append(add(lp, "conv3", "Conv", [h], 32, 36864, "Conv2d"))
            cur = add(sp, "cat", "Concat", feats, 384)
        else:  # transformer encoder layers: q/k/v branches and two residuals
            types[(f"encoder{stage}",)] = "TransformerEncoder"
            for b in range(6):
                bp = (f"encoder{stage}", "layers", str(b))
                ap = (*bp, "attn")
                types[bp], types[ap] = "EncoderLayer", "MultiheadAttention"
                x = cur
                q, k, v = (add(ap, p, "MatMul", [x], 256, 65536, "Linear") for p in "qkv")
                kt = add(ap, "kt", "Transpose", [k], 256)
                s = add(ap, "softmax", "Softmax", [add(ap, "scores", "MatMul", [q, kt], 256)])
                o = add(ap, "ctx", "MatMul", [s, v], 256)
                o = add(ap, "out_proj", "Gemm", [o], 256, 65536, "Linear")
                h = add(bp, "add1", "Add", [o, x], 256)
                h = add(bp, "norm1", "LayerNormalization", [h], 256, 512, "LayerNorm")
                f = add(bp, "linear1", "Gemm", [h], 1024, 262144, "Linear")
                f = add(bp, "gelu", "Gelu", [f], 1024, 0, "GELU")
                f = add(bp, "linear2", "Gemm", [f], 256, 262144, "Linear")
                h = add(bp, "add2", "Add", [f, h], 256)
                cur = add(bp, "norm2", "LayerNormalization", [h], 256, 512, "LayerNorm")
    nodes = nodes[:n_nodes]
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes), module_types=types,
                      inputs=[TensorInfo("x", (1, 64, 56, 56))],
                      parameters=sum(n.params for n in nodes))


def _frames(app: QApplication, w: QtGraphView, step) -> float:
    times = []
    for i in range(20):
        t = time.perf_counter()
        step(i)
        w.view.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - t)
    return statistics.mean(times) * 1000


def measure(app: QApplication, graph: LayerGraph, *, expand_all: bool = True) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    dg = build_display_graph(graph, collapsible_modules(graph) if expand_all else set())
    t1 = time.perf_counter()
    layered_layout(dg)
    out["collapse (s)"] = t1 - t
    out["layout (s)"] = time.perf_counter() - t1

    w = QtGraphView(max_visible=10**9 if expand_all else 300)
    w.resize(1200, 800)
    t = time.perf_counter()
    w.set_graph(graph)
    w.show()
    app.processEvents()
    w.view.viewport().grab()
    out["first paint (s)"] = time.perf_counter() - t
    out["boxes"] = len(w.display_graph() or [])

    bar = w.view.verticalScrollBar()
    out["pan frame (ms)"] = _frames(app, w, lambda i: bar.setValue(bar.value() + 60))
    out["zoom frame (ms)"] = _frames(
        app, w, lambda i: w.zoom_by(0.85 if i < 10 else 1 / 0.85))
    w.fit()
    app.processEvents()
    out["pan frame, fit (ms)"] = _frames(app, w, lambda i: bar.setValue(bar.value() + 60))
    out["zoom frame, fit (ms)"] = _frames(
        app, w, lambda i: w.zoom_by(1.1 if i < 10 else 1 / 1.1))
    w.close()
    w.deleteLater()
    app.processEvents()
    return out


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    sizes = (1_000, 10_000)
    graphs = {n: synthetic_graph(n) for n in sizes}
    rows = {f"{n:,} nodes": measure(app, g) for n, g in graphs.items()}
    rows["10,000 collapsed"] = measure(app, graphs[10_000], expand_all=False)
    keys = list(next(iter(rows.values())))
    print(f"{'':22s}" + "".join(f"{k:>18s}" for k in rows))
    for key in keys:
        cells = "".join(
            f"{v[key]:>18,.0f}" if key == "boxes" else f"{v[key]:>18.3f}" if "(s)" in key
            else f"{v[key]:>18.1f}" for v in rows.values())
        print(f"{key:22s}{cells}")
    big = rows["10,000 nodes"]
    print(f"\ntargets (10k, all expanded): first paint {big['first paint (s)']:.2f} s < 3 s, "
          f"pan {big['pan frame (ms)']:.1f} ms / zoom {big['zoom frame (ms)']:.1f} ms < 50 ms")


if __name__ == "__main__":
    main()
