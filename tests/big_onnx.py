"""A big ONNX model for scaling tests and benchmarks: residual blocks of four small ops.

`make_big_onnx(path, 50_000)` writes 12,500 blocks of Conv → Mul → Relu → Add (residual),
scoped as `/stage{s}/block{b}/...` like a torch export, with a 1×4×8×8 input. The number of
stages is fixed (`STAGES`), so bigger models hide more nodes in the same collapsed view.
"""

from __future__ import annotations

from pathlib import Path

BLOCK_OPS = 4
STAGES = 50


def make_big_onnx(path: Path, n_nodes: int = 50_000, channels: int = 4) -> Path:
    """Write a chain of `n_nodes // 4` residual blocks in `STAGES` stages to `path`
    (ir_version 10, opset 17)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "scale")
    inits.append(scale)
    cur = "x"
    blocks = n_nodes // BLOCK_OPS
    per_stage = -(-blocks // STAGES)
    for i in range(blocks):
        p = f"/stage{i // per_stage}/block{i % per_stage}"
        w = f"stage{i // per_stage}.block{i % per_stage}.conv.weight"
        inits.append(numpy_helper.from_array(
            rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), w))
        nodes += [
            helper.make_node("Conv", [cur, w], [f"{p}/conv/Conv_output_0"],
                             name=f"{p}/conv/Conv", pads=[1, 1, 1, 1]),
            helper.make_node("Mul", [f"{p}/conv/Conv_output_0", "scale"],
                             [f"{p}/Mul_output_0"], name=f"{p}/Mul"),
            helper.make_node("Relu", [f"{p}/Mul_output_0"], [f"{p}/act/Relu_output_0"],
                             name=f"{p}/act/Relu"),
            helper.make_node("Add", [f"{p}/act/Relu_output_0", cur], [f"{p}/Add_output_0"],
                             name=f"{p}/Add"),
        ]
        cur = f"{p}/Add_output_0"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 8, 8])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10)
    onnx.save(model, str(path))
    return path
