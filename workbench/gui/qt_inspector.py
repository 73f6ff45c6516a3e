"""The inspector dock: details of the selected node, module or variant."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo
from workbench.core.model.cpu import cpu_features, int8_reduce_range
from workbench.gui.format import human_bytes, human_count

log = logging.getLogger(__name__)


class QtInspector(QTreeWidget):
    """A two-column property tree."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Property", "Value"])
        self.setAlternatingRowColors(True)
        self.setColumnWidth(0, 130)
        self.title = ""

    def _add(self, parent: QTreeWidget | QTreeWidgetItem, key: str, value: Any = "") -> (
            QTreeWidgetItem):
        item = QTreeWidgetItem([key, str(value)])
        item.setToolTip(1, str(value))
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(item)
        else:
            parent.addChild(item)
        return item

    def show_nothing(self) -> None:
        self.clear()
        self.title = ""

    def show_graph(self, name: str, graph: LayerGraph) -> None:
        """Summary of a whole model."""
        self.clear()
        self.title = name
        self._add(self, "Model", name)
        self._add(self, "Format", graph.format)
        self._add(self, "Nodes", f"{len(graph.nodes):,}")
        self._add(self, "Edges", f"{len(graph.edges):,}")
        self._add(self, "Parameters", f"{graph.parameters:,} ({human_count(graph.parameters)})")
        self._add(self, "Size", human_bytes(graph.size_bytes))
        macs = graph.memo("macs", lambda: graph.macs)  # once per graph, not per selection
        self._add(self, "MACs", f"{macs:,} ({human_count(macs)})")
        ins = self._add(self, "Inputs", len(graph.inputs))
        for t in graph.inputs:
            self._add(ins, t.name, f"{t.shape_text()} {t.dtype or ''}")
        op_counts = graph.memo("op_counts", graph.op_counts)
        ops = self._add(self, "Ops", len(op_counts))
        for op, n in op_counts.items():
            self._add(ops, op, n)
        for w in graph.warnings:
            self._add(self, "Warning", w)
        self._add_machine()
        self.expandItem(ins)

    def _add_machine(self) -> None:
        """The CPU features that change int8 results (what `--version --json` reports)."""
        cpu = cpu_features()
        reduce, why = int8_reduce_range(cpu)
        machine = self._add(self, "Machine", f"{cpu.model or cpu.machine} · int8 weights "
                            f"{'7' if reduce else '8'}-bit")
        machine.setToolTip(1, why)
        info = cpu.to_json()
        self._add(machine, "Architecture", cpu.machine)
        self._add(machine, "CPU features", ", ".join(info["flags"]) or "unknown")  # type: ignore[arg-type]
        self._add(machine, "VNNI", "yes" if cpu.vnni else "no")
        item = self._add(machine, "Int8 weights", "7-bit (reduce_range)" if reduce else "8-bit")
        item.setToolTip(1, why)

    def show_node(self, node: Node) -> None:
        """Details of one node."""
        self.clear()
        self.title = node.name
        self._add(self, "Name", node.name)
        self._add(self, "Op", node.op)
        self._add(self, "Category", node.category)
        self._add(self, "Module", ".".join(node.module_path) or "(top level)")
        if node.module_type:
            self._add(self, "Module type", node.module_type)
        self._add(self, "Parameters", f"{node.params:,}")
        self._add(self, "MACs", f"{node.macs:,} ({human_count(node.macs)})")
        ins = self._add(self, "Inputs", len(node.inputs))
        for t in node.inputs:
            self._add(ins, t.name, f"{t.shape_text()} {t.dtype or ''}")
        outs = self._add(self, "Outputs", len(node.outputs))
        for t in node.outputs:
            self._add(outs, t.name, f"{t.shape_text()} {t.dtype or ''}")
        if node.attributes:
            attrs = self._add(self, "Attributes", len(node.attributes))
            for k, v in node.attributes.items():
                self._add(attrs, k, v)
            self.expandItem(attrs)
        if node.param_names:
            ws = self._add(self, "Weights", len(node.param_names))
            for p in node.param_names:
                shape = node.param_shapes.get(p)
                self._add(ws, p, "×".join(str(d) for d in shape) if shape is not None else "")
            self.expandItem(ws)
        self.expandItem(ins)
        self.expandItem(outs)

    def show_tensor(self, kind: str, tensor: TensorInfo) -> None:
        """Details of a model input or output (`kind` is "input" or "output")."""
        self.clear()
        self.title = tensor.name
        self._add(self, "Name", tensor.name)
        self._add(self, "Kind", f"model {kind}")
        self._add(self, "Shape", tensor.shape_text())
        self._add(self, "Type", tensor.dtype or "?")

    def show_module(self, path: tuple[str, ...], members: list[Node], mtype: str | None) -> None:
        """Summary of a collapsed module."""
        self.clear()
        self.title = ".".join(path)
        self._add(self, "Module", ".".join(path))
        if mtype:
            self._add(self, "Type", mtype)
        self._add(self, "Nodes", len(members))
        params = sum(n.params for n in members)
        macs = sum(n.macs for n in members)
        self._add(self, "Parameters", f"{params:,} ({human_count(params)})")
        self._add(self, "MACs", f"{macs:,} ({human_count(macs)})")
        ops: dict[str, int] = {}
        for n in members:
            ops[n.op] = ops.get(n.op, 0) + 1
        top = self._add(self, "Ops", len(ops))
        for op, k in sorted(ops.items(), key=lambda kv: -kv[1]):
            self._add(top, op, k)
        self.expandItem(top)

    def value_of(self, key: str) -> str | None:
        """The value shown for a top-level property (for tests)."""
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == key:
                return item.text(1)
        return None
