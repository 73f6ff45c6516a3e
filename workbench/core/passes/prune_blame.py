"""Name the layer that stops structured pruning, so the user can add it to `ignore`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


def failing_module(model: nn.Module, inputs: tuple[Any, ...]
                   ) -> tuple[str | None, Exception | None]:
    """Run `model` on `inputs`; on failure, the innermost named module that was running."""
    names = {m: n for n, m in model.named_modules() if n}
    stack: list[str] = []
    handles = []

    def enter(name: str) -> Any:
        def hook(_module: nn.Module, _args: Any) -> None:
            stack.append(name)
        return hook

    def leave(_module: nn.Module, _args: Any, _output: Any) -> None:
        stack.pop()  # (a hook returning a value would replace the output)

    for m, name in names.items():
        handles.append(m.register_forward_pre_hook(enter(name)))
        handles.append(m.register_forward_hook(leave))
    try:
        model(*inputs)
    except Exception as exc:
        return (stack[-1] if stack else None), exc
    finally:
        for h in handles:
            h.remove()
    return None, None


def ignore_hint(name: str | None, model: nn.Module) -> str:
    """'; it fails in `x` (Type): add "x" to ignore …' or '' when no layer is known."""
    if not name:
        return ""
    kind = type(model.get_submodule(name)).__name__
    return (f"; it fails in {name} ({kind}): add \"{name}\" to the ignore list (param "
            "`ignore`) to keep its channels")


@contextmanager
def blamed_graph_nodes() -> Iterator[list[str]]:
    """While Torch-Pruning builds its graph, note the layer nearest to any op whose index
    mapping fails (a reshape or split it cannot follow); yields those names."""
    from torch_pruning.dependency import graph as tp_graph
    from torch_pruning.dependency import index_mapping

    original = index_mapping.update_index_mapping
    blamed: list[str] = []

    def update_index_mapping(graph: Any) -> None:
        nodes = graph.module2node
        for module, node in list(nodes.items()):
            single = _Single(graph, module, node)
            try:
                original(single)
            except Exception:
                blamed.append(_nearest_layer(graph, node) or str(module))
                raise

    tp_graph.index_mapping.update_index_mapping = update_index_mapping
    try:
        yield blamed
    finally:
        tp_graph.index_mapping.update_index_mapping = original


class _Single:
    """A view of a dependency graph that shows one node to `update_index_mapping`."""

    def __init__(self, graph: Any, module: nn.Module, node: Any) -> None:
        self._graph = graph
        self.module2node = {module: node}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)


def _nearest_layer(graph: Any, node: Any) -> str | None:
    """The closest named module upstream of a graph node (breadth first)."""
    names = graph._module2name
    seen, frontier = set(), [node]
    while frontier:
        nxt = []
        for n in frontier:
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n.module in names:
                return str(names[n.module])
            nxt.extend(n.inputs)
        frontier = nxt
    return None
