"""Torch node attributes carry the op schema's names (stride, padding, ...) and weight shapes."""

from __future__ import annotations

import operator

import pytest
import torch

from workbench.core.graph.describe import describe
from workbench.core.graph.torch_attributes import (
    argument_names,
    literal_attributes,
    module_attributes,
)
from workbench.core.model.variant import InputSpec, Variant


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=1)
        self.pool = torch.nn.MaxPool2d(2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.conv(x)), 1)


def _variant() -> Variant:
    return Variant("net", "torch", _Net().eval(), "zoo", (InputSpec("x", (1, 3, 16, 16)),))


def test_schema_names_positional_arguments() -> None:
    names = argument_names(torch.ops.aten.conv2d.default)
    assert names == ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
    attrs = literal_attributes(torch.ops.aten.conv2d.default,
                               (None, None, None, (2, 2), (1, 1)), {"groups": 4})
    assert attrs == {"stride": [2, 2], "padding": [1, 1], "groups": 4}


def test_python_callables_are_named_from_their_signature() -> None:
    def scale(x: object, factor: float, axis: int = 0) -> object:
        return x

    assert literal_attributes(scale, (None, 2.5, 1), {}) == {"factor": 2.5, "axis": 1}
    # A torch builtin has no Python signature: torch.fx knows its names.
    assert literal_attributes(torch.flatten, (None, 1), {}) == {"start_dim": 1}
    # Nothing to read the names from: arguments keep their position as a name.
    assert literal_attributes(object(), (None, 3), {}) == {"arg1": 3}
    assert literal_attributes(operator.add, (None, 3, 4), {})["arg2"] == 4


def test_module_attributes_are_its_constants() -> None:
    attrs = module_attributes(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1))
    assert attrs["stride"] == [2, 2]
    assert attrs["padding"] == [1, 1]
    assert attrs["kernel_size"] == [3, 3]
    assert module_attributes(torch.nn.ReLU()) == {"inplace": False}


def test_exported_conv_node_has_named_attributes_and_weight_shapes() -> None:
    graph = describe(_variant())
    assert graph.format == "torch"
    assert not graph.warnings
    conv = next(n for n in graph.nodes if n.op == "aten.conv2d")
    assert conv.attributes["stride"] == [2, 2]
    assert conv.attributes["padding"] == [1, 1]
    assert not any(k.startswith("arg") for k in conv.attributes)
    assert conv.param_shapes == {"conv.weight": (8, 3, 3, 3), "conv.bias": (8,)}
    pool = next(n for n in graph.nodes if "max_pool2d" in n.op)
    assert pool.attributes["kernel_size"] == [2, 2]


def test_fx_module_nodes_show_module_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.core.graph.graph_torch as gt

    def no_export(*args: object, **kwargs: object) -> None:
        raise RuntimeError("export disabled for this test")

    monkeypatch.setattr(gt, "_export_graph", no_export)
    graph = describe(_variant())
    conv = next(n for n in graph.nodes if n.op == "Conv2d")
    assert conv.attributes["stride"] == [2, 2]
    assert conv.attributes["padding"] == [1, 1]
    assert conv.param_shapes["conv.weight"] == (8, 3, 3, 3)
    flatten = next(n for n in graph.nodes if n.op == "flatten")
    assert flatten.attributes == {"start_dim": 1}
