"""Pass reports as rows, export file names, and where the selection goes on removal."""

from __future__ import annotations

import pytest

from workbench.core.errors import InvalidParameterError
from workbench.core.model.export import export_format, suggested_filename, with_suffix_for
from workbench.core.passes.base import PassReport
from workbench.core.passes.report_view import layer_table, report_facts, report_figures


def _report(**details: object) -> PassReport:
    return PassReport("prune.structured", {"ratio": 0.5},
                      {"parameters": 1000, "size_bytes": 4000, "macs": 5000, "sparsity": 0.0},
                      {"parameters": 250, "size_bytes": 1000, "macs": 1200, "sparsity": 0.1},
                      1.5, ["careful"], dict(details))


def test_figures_give_before_after_and_measured_extras() -> None:
    report = _report(latency={"parent_ms": 10.0, "child_ms": 4.0, "threads": 2},
                     fidelity={"cosine": 0.999, "max_abs_diff": 0.01, "per_layer": {"a": 30.0}})
    figures = {f.label: f for f in report_figures(report)}
    assert figures["Parameters"].before == 1000
    assert figures["Parameters"].ratio == pytest.approx(0.25)
    assert figures["Size"].kind == "bytes"
    assert figures["Latency (ONNX Runtime, 2 threads)"].after == 4.0
    assert figures["Fidelity: cosine"].before is None  # the parent is the reference
    assert figures["Fidelity: cosine"].after == pytest.approx(0.999)


def test_layer_rows_from_a_list_a_dict_or_per_layer_sqnr() -> None:
    rows = [{"name": "conv1", "type": "Conv2d", "before": 64, "after": 32},
            {"name": "conv2", "type": "Conv2d", "before": 128, "after": 64}]
    table = layer_table(_report(layers=rows))
    assert table is not None
    assert table.title == "Channels per layer"
    assert table.columns == ["layer", "type", "before", "after"]
    assert table.rows[1] == ["conv2", "Conv2d", 128, 64]

    kmeans = layer_table(_report(layers={"fc.weight": {"distinct": 8, "codebook": [0.1]}}))
    assert kmeans is not None
    assert kmeans.columns == ["layer", "distinct"]  # lists (the codebook) stay in the JSON
    assert kmeans.rows == [["fc.weight", 8]]

    sqnr = layer_table(_report(fidelity={"per_layer": {"node_Conv_1": 41.5}}))
    assert sqnr is not None
    assert sqnr.rows == [["node_Conv_1", 41.5]]
    named = layer_table(_report(fidelity={"per_layer": {"node_Conv_1": 41.5}},
                                layer_names={"node_Conv_1": "layer1.0.conv1"}))
    assert named is not None
    assert named.columns == ["layer", "node", "SQNR (dB)"]
    assert named.rows == [["layer1.0.conv1", "node_Conv_1", 41.5]]
    assert layer_table(_report()) is None


def test_facts_keep_scalars_and_short_lists_only() -> None:
    facts = dict(report_facts(_report(channels_removed=96, importance="l2", excluded=[],
                                      layers=[], output_shapes=[[1, 10]],
                                      preprocess={"optimized": True}, big={"a": {"b": 1}})))
    assert facts == {"channels removed": "96", "importance": "l2", "excluded": "none",
                     "preprocess": "optimized True"}


def test_suggested_file_names_cannot_pass_for_an_extension() -> None:
    name = suggested_filename("resnet-mini·prune.structured_trained", "onnx")
    assert name == "resnet-mini_prune_structured_trained.onnx"
    assert export_format(name) == "onnx"
    assert suggested_filename("a: b/c", "pt2") == "a_b_c.pt2"
    with pytest.raises(InvalidParameterError, match="structured_trained"):
        export_format("/tmp/resnet-mini·prune.structured_trained")
    assert with_suffix_for("/tmp/m·prune.structured_trained", "onnx") == \
        "/tmp/m·prune.structured_trained.onnx"
    assert with_suffix_for("/tmp/m.onnx", "onnx") == "/tmp/m.onnx"
    assert with_suffix_for("/tmp/m.onnx", "pt2") == "/tmp/m.onnx.pt2"


def test_removing_the_selected_variant_selects_its_parent() -> None:
    from workbench.core.graph.analysis import analyse
    from workbench.core.jobs import run_job
    from workbench.core.model.variant import Variant, new_variant_id
    from workbench.core.model.zoo import build_zoo
    from workbench.core.session.workspace import Workspace

    root = build_zoo("mlp")
    other = build_zoo("mlp")
    ws = Workspace()
    a = ws.add(run_job(analyse(root)))
    b = ws.add(run_job(analyse(other)))
    child = Variant("child", root.backend, root.model, root.format, root.inputs,
                    parent=a.id, id=new_variant_id())
    c = ws.add(run_job(analyse(child)))
    assert ws.selected is c
    ws.remove(c.id)
    assert ws.selected is a  # its parent, not the first or last variant
    ws.remove(a.id)
    assert ws.selected is b
