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

from workbench.core.graph_layout import build_display_graph, collapsible_modules, layered_layout
from workbench.core.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.gui.qt_graph_view import QtGraphView

def synthetic_graph(n_nodes: int) -> LayerGraph:
    """ResNet bottlenecks, DenseNet blocks and attention branches, repeated to `n_nodes`."""
    nodes: list[Node] = []
    types: dict[tuple[str, ...], str] = {}
    cur = TensorInfo("x", (1, 64, 56, 56), "float32")

    def add(name, op, inputs, path, mtype=None, channels=64, params=0):
        out = TensorInfo(name + ":0", (1, channels, 56, 56), "float32")
        nodes.append(Node(name, op, list(inputs), [out], params=params, macs=params * 3136,
                          module_path=path, module_type=mtype))
        return out

    stage = 0
    while len(nodes) < n_nodes:
        stage += 1
        kind = stage % 3
        if kind == 1:  # ResNet stage of bottlenecks
            sp = (f"layer{stage}",)
            types[sp] = "Sequential"
            for b in range(8):
                bp = (*sp, str(b))
                types[bp] = "Bottleneck"
                pre = ".".join(bp)
                x = cur
                h = add(pre + ".conv1", "Conv", [x], (*bp, "conv1"), "Conv2d", 64, 4096)
                h = add(pre + ".bn1", "BatchNormalization", [h], (*bp, "bn1"), "BatchNorm2d", 64, 128)
                h = add(pre + ".relu1", "Relu", [h], (*bp, "relu"), "ReLU", 64)
                h = add(pre + ".conv2", "Conv", [h], (*bp, "conv2"), "Conv2d", 64, 36864)
                h = add(pre + ".bn2", "BatchNormalization", [h], (*bp, "bn2"), "BatchNorm2d", 64, 128)
                h = add(pre + ".relu2", "Relu", [h], (*bp, "relu"), "ReLU", 64)
                h = add(pre + ".conv3", "Conv", [h], (*bp, "conv3"), "Conv2d", 256, 16384)
                h = add(pre + ".bn3", "BatchNormalization", [h], (*bp, "bn3"), "BatchNorm2d", 256, 512)
                if b == 0:
                    types[(*bp, "downsample")] = "Sequential"
                    x = add(pre + ".downsample.0", "Conv", [x], (*bp, "downsample", "0"), "Conv2d", 256, 16384)
                    x = add(pre + ".downsample.1", "BatchNormalization", [x], (*bp, "downsample", "1"), "BatchNorm2d", 256, 512)
                h = add(pre + ".add", "Add", [h, x], bp, None, 256)
                cur = add(pre + ".relu3", "Relu", [h], bp, None, 256)
        elif kind == 2:  # DenseNet block
            sp = (f"dense{stage}",)
            types[sp] = "DenseBlock"
            feats = [cur]
            for k in range(10):
                lp = (*sp, f"denselayer{k}")
                types[lp] = "DenseLayer"
                pre = ".".join(lp)
                h = add(pre + ".cat", "Concat", feats, lp, None, 64 + 32 * k)
                h = add(pre + ".norm1", "BatchNormalization", [h], (*lp, "norm1"), "BatchNorm2d", 64 + 32 * k, 128)
                h = add(pre + ".relu1", "Relu", [h], (*lp, "relu1"), "ReLU", 64 + 32 * k)
                h = add(pre + ".conv1", "Conv", [h], (*lp, "conv1"), "Conv2d", 128, 8192)
                h = add(pre + ".norm2", "BatchNormalization", [h], (*lp, "norm2"), "BatchNorm2d", 128, 256)
                h = add(pre + ".relu2", "Relu", [h], (*lp, "relu2"), "ReLU", 128)
                h = add(pre + ".conv2", "Conv", [h], (*lp, "conv2"), "Conv2d", 32, 36864)
                feats.append(h)
            cur = add(".".join(sp) + ".cat", "Concat", feats, sp, None, 384)
        else:  # transformer-ish blocks with q/k/v branches
            sp = (f"encoder{stage}",)
            types[sp] = "TransformerEncoder"
            for b in range(6):
                bp = (*sp, "layers", str(b))
                types[bp] = "EncoderLayer"
                types[(*bp, "attn")] = "MultiheadAttention"
                pre = ".".join(bp)
                x = cur
                q = add(pre + ".attn.q", "MatMul", [x], (*bp, "attn", "q"), "Linear", 256, 65536)
                k_ = add(pre + ".attn.k", "MatMul", [x], (*bp, "attn", "k"), "Linear", 256, 65536)
                v = add(pre + ".attn.v", "MatMul", [x], (*bp, "attn", "v"), "Linear", 256, 65536)
                kt = add(pre + ".attn.kt", "Transpose", [k_], (*bp, "attn"), None, 256)
                s = add(pre + ".attn.scores", "MatMul", [q, kt], (*bp, "attn"), None, 256)
                p = add(pre + ".attn.softmax", "Softmax", [s], (*bp, "attn"), None, 256)
                o = add(pre + ".attn.ctx", "MatMul", [p, v], (*bp, "attn"), None, 256)
                o = add(pre + ".attn.out", "Gemm", [o], (*bp, "attn", "out_proj"), "Linear", 256, 65536)
                h = add(pre + ".add1", "Add", [o, x], bp, None, 256)
                h = add(pre + ".norm1", "LayerNormalization", [h], (*bp, "norm1"), "LayerNorm", 256, 512)
                f = add(pre + ".ff1", "Gemm", [h], (*bp, "linear1"), "Linear", 1024, 262144)
                f = add(pre + ".gelu", "Gelu", [f], (*bp, "activation"), "GELU", 1024)
                f = add(pre + ".ff2", "Gemm", [f], (*bp, "linear2"), "Linear", 256, 262144)
                h = add(pre + ".add2", "Add", [f, h], bp, None, 256)
                cur = add(pre + ".norm2", "LayerNormalization", [h], (*bp, "norm2"), "LayerNorm", 256, 512)
    nodes = nodes[:n_nodes]
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes), inputs=[TensorInfo("x", (1, 64, 56, 56))],
                      module_types=types, parameters=sum(n.params for n in nodes))


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
