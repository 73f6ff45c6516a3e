"""Per-layer times, keyed by the node names of `describe(variant)` (for a heat map).

* ONNX (`runtime="ort"`): ONNX Runtime's own profiler (`SessionOptions.enable_profiling`)
  on a copy of the model whose nodes are renamed to the graph's names (nameless nodes get
  the name `graph_onnx` gives them), with the same session options a benchmark uses.
  ORT fuses and rewrites nodes (Conv+Relu, NCHWc layouts): a fused kernel is named after
  the tensor it writes (`relu_nchwc`), and is charged to the graph node of the fused op's
  type (the Conv) nearest upstream of that tensor's producer. Kernels ORT inserts itself
  (`ReorderOutput`, ...) are charged to the producer of the tensor they write; what still
  matches nothing is kept in `LayerProfile.unmapped`. Nodes fused away (the Relu) get 0.
* torch (`runtime="torch"`): forward pre- and post-hooks on every module measure each
  module's *exclusive* time (its own time minus its children's), which is spread over the
  graph nodes whose `module_path` is that module, in proportion to their MACs (or output
  size, for ops without MACs). Hooks add a few microseconds per module call, which lands in
  the parent's exclusive time; functional code outside any submodule lands on the nodes at
  the top level. TorchScript modules cannot be hooked and are refused. A torch variant is
  profiled eagerly on the chosen device (a copy of it; on a GPU each hook waits for the
  device, so a layer's time is its own); profile its ONNX conversion to see ORT's times.
* ONNX Runtime runs on `cuda:N` through its CUDA execution provider when it has one, and on
  the CPU otherwise (said in a warning).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import re
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.fileio import temp_dir
from workbench.core.graph.describe import describe
from workbench.core.graph.layergraph import LayerGraph, Node
from workbench.core.job_scope import request_threads
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

_ORT_SUFFIX = re.compile(r"(_nchwc|_token_\d+)+$")
_UPSTREAM_DEPTH = 4


@dataclass(frozen=True)
class LayerTime:
    """One graph node's mean time per run and its share of all attributed time."""

    name: str
    op: str
    ms: float
    share: float
    module: str = ""


@dataclass
class LayerProfile:
    """Mean time per run of every graph node (`times`), and the non-zero ones as rows."""

    runtime: str
    batch: int
    iters: int
    times: dict[str, float]  # every graph node name -> ms per run (0.0: no time seen)
    rows: list[LayerTime]  # nodes with time, slowest first; shares sum to 1
    total_ms: float  # wall time of a whole run, as the runtime measured it
    unmapped: dict[str, float] = field(default_factory=dict)  # runtime names matching no node
    warnings: list[str] = field(default_factory=list)

    @property
    def attributed_ms(self) -> float:
        return sum(self.times.values())

    def to_json(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "batch": self.batch, "iters": self.iters,
                "total_ms": self.total_ms, "attributed_ms": self.attributed_ms,
                "rows": [asdict(r) for r in self.rows], "unmapped": self.unmapped,
                "warnings": self.warnings}


def profile_layers(variant: Variant, runtime: str = "auto", batch: int = 1, iters: int = 20,
                   warmup: int = 3, threads: int | None = None, device: str = "cpu"
                   ) -> LayerProfile:
    """Time each layer of `variant` over `iters` runs (after `warmup` runs) at `batch`, on
    `device` (cpu, cuda, cuda:N or mps)."""
    from workbench.core.devices import job_device

    if runtime not in ("auto", "ort", "torch"):
        raise InvalidParameterError("runtime must be auto, ort or torch.")
    if batch < 1 or iters < 1 or warmup < 0:
        raise InvalidParameterError("batch and iterations must be at least 1, warm-up at "
                                    "least 0.")
    if threads is not None and threads < 1:
        raise InvalidParameterError("threads must be at least 1.")
    if not variant.inputs:
        raise InvalidParameterError(f"{variant.name} declares no input shape; profiling "
                                    "needs one.")
    if runtime == "auto":
        runtime = "ort" if variant.backend == "onnx" else "torch"
    if variant.backend == "onnx" and runtime != "ort":
        raise InvalidParameterError(f"{variant.name} is ONNX; profile it with ONNX Runtime.")
    if variant.backend == "torch" and runtime != "torch":
        raise InvalidParameterError(
            f"{variant.name} is a torch model: its layers are profiled in torch. To see ONNX "
            "Runtime's per-node times, convert it (convert.onnx) and profile the ONNX variant.")
    device = job_device(device)
    graph = describe(variant)
    if runtime == "ort":
        return _profile_ort(variant, graph, batch, iters, warmup, threads, device)
    return _profile_torch(variant, graph, batch, iters, warmup, threads, device)


def _finish(graph: LayerGraph, runtime: str, batch: int, iters: int,
            times: dict[str, float], total_ms: float, unmapped: dict[str, float],
            warnings: list[str]) -> LayerProfile:
    full = {n.name: times.get(n.name, 0.0) for n in graph.nodes}
    attributed = sum(full.values())
    rows = [LayerTime(n.name, n.op, full[n.name], full[n.name] / attributed if attributed else
                      0.0, ".".join(n.module_path))
            for n in graph.nodes if full[n.name] > 0]
    rows.sort(key=lambda r: r.ms, reverse=True)
    return LayerProfile(runtime, batch, iters, full, rows, total_ms, unmapped, warnings)


# ONNX Runtime ------------------------------------------------------------------------------
def _profile_ort(variant: Variant, graph: LayerGraph, batch: int, iters: int, warmup: int,
                 threads: int | None, device: str = "cpu") -> LayerProfile:
    import onnx
    import onnxruntime as ort

    from workbench.core.devices import ort_providers
    from workbench.core.model.runtime import UNSAFE_FP16_OPTIMIZERS, has_float16, session_feed

    model = onnx.ModelProto()
    model.CopyFrom(variant.model)
    if len(model.graph.node) != len(graph.nodes):
        raise WorkbenchError("The layer graph does not match the ONNX graph node for node.")
    for proto, node in zip(model.graph.node, graph.nodes, strict=True):
        proto.name = node.name  # nameless nodes get the names the graph shows
    providers, why_cpu = ort_providers(device)
    with temp_dir("profile") as folder:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "ort")
        optimized_path = os.path.join(folder, "optimized.onnx")
        options.optimized_model_filepath = optimized_path
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        disabled = list(UNSAFE_FP16_OPTIMIZERS) if has_float16(model) else None
        try:
            session = ort.InferenceSession(model.SerializeToString(), options,
                                           providers=providers,
                                           disabled_optimizers=disabled)
            feed = session_feed(session, variant.example_inputs(batch=batch))
            for _ in range(warmup + iters):
                session.run(None, feed)
        except Exception as exc:
            raise WorkbenchError(f"ONNX Runtime cannot run {variant.name} at batch {batch}: "
                                 f"{str(exc).strip().splitlines()[0]}") from exc
        path = session.end_profiling()
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
        mapper = _OrtNameMap(graph)
        # best effort: only the kernels ORT created itself need ORT's optimized graph
        with contextlib.suppress(Exception):
            mapper.set_optimized(onnx.load(optimized_path, load_external_data=False))
    result = _parse_ort_events(graph, events, batch, iters, warmup, mapper)
    if why_cpu:
        result.warnings.append(why_cpu)
    return result


def _parse_ort_events(graph: LayerGraph, events: list[dict[str, Any]], batch: int, iters: int,
                      warmup: int, mapper: _OrtNameMap | None = None) -> LayerProfile:
    runs = sorted((e for e in events if e.get("cat") == "Session"
                   and e.get("name") == "model_run"), key=lambda e: e["ts"])
    timed = runs[warmup:] or runs
    cutoff = timed[0]["ts"] if timed else 0
    n_runs = max(len(timed), 1)
    kernel: dict[tuple[str, str], float] = defaultdict(float)
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time") and e["ts"] >= cutoff:
            op = (e.get("args") or {}).get("op_name", "")
            kernel[(name.removesuffix("_kernel_time"), op)] += float(e.get("dur", 0))
    mapper = mapper or _OrtNameMap(graph)
    times: dict[str, float] = defaultdict(float)
    unmapped: dict[str, float] = {}
    for (name, op), us in kernel.items():
        ms = us / 1000.0 / n_runs
        target = mapper.find(name, op)
        if target is None:
            unmapped[name] = unmapped.get(name, 0.0) + ms
        else:
            times[target] += ms
    total = sum(float(e.get("dur", 0)) for e in timed) / 1000.0 / n_runs
    warnings = []
    if unmapped:
        warnings.append(f"{len(unmapped)} ONNX Runtime kernel(s) match no graph node "
                        f"({sum(unmapped.values()):.3f} ms a run).")
    return _finish(graph, "ort", batch, iters, dict(times), total, unmapped, warnings)


class _OrtNameMap:
    """ORT kernel names (after fusion and layout rewrites) back to graph node names."""

    def __init__(self, graph: LayerGraph) -> None:
        self.nodes = {n.name: n for n in graph.nodes}
        self.producer = {t.name: n.name for n in graph.nodes for t in n.outputs}
        self.inputs: dict[str, list[str]] = defaultdict(list)
        for e in graph.edges:
            self.inputs[e.dst].append(e.src)
        self.opt_nodes: dict[str, Any] = {}

    def find(self, name: str, op: str) -> str | None:
        """The graph node charged with kernel `name` of op type `op` (None: no match)."""
        direct = self._by_name(name, op)
        if direct is not None:
            return direct
        return self._through_optimized(name)

    def _by_name(self, name: str, op: str | None) -> str | None:
        name = name.removeprefix("fused ")  # "fused node_linear" (MatMul+Add -> Gemm)
        if name in self.nodes:
            return self._of_op(name, op)
        base = _ORT_SUFFIX.sub("", name)  # "relu_nchwc": the Conv fused up to tensor "relu"
        if base in self.nodes:
            return self._of_op(base, op)
        if base in self.producer:
            return self._of_op(self.producer[base], op)
        for cut in _prefixes(name):  # "/fc1/MatMul/MatMulAddFusion" -> "/fc1/MatMul"
            if cut in self.nodes:
                return self._of_op(cut, op)
        return None

    def set_optimized(self, model: Any) -> None:
        """The graph ORT actually ran, to place the kernels it created itself."""
        self.opt_nodes = {n.name: n for n in model.graph.node if n.name}
        self.opt_producer = {t: n.name for n in model.graph.node if n.name for t in n.output}
        self.opt_consumers: dict[str, list[str]] = defaultdict(list)
        for n in model.graph.node:
            for t in n.input:
                if n.name:
                    self.opt_consumers[t].append(n.name)

    def _through_optimized(self, name: str) -> str | None:
        """Nearest neighbour in ORT's optimized graph that maps to a graph node: a tensor
        it writes or reads that the original graph has, or a node named after one."""
        start = self.opt_nodes.get(name) if self.opt_nodes else None
        if start is None:
            return None
        seen = {name}
        queue = deque([(start, 0)])
        while queue:
            node, depth = queue.popleft()
            if node.name != name:
                found = self._by_name(node.name, None)
                if found is not None:
                    return found
            for t in (*node.output, *node.input):
                if t in self.producer:
                    return self.producer[t]
            if depth >= _UPSTREAM_DEPTH:
                continue
            nxt = [c for t in node.output for c in self.opt_consumers.get(t, ())]
            nxt += [self.opt_producer[t] for t in node.input if t in self.opt_producer]
            for other in nxt:
                if other not in seen:
                    seen.add(other)
                    queue.append((self.opt_nodes[other], depth + 1))
        return None

    def _of_op(self, start: str, op: str | None) -> str:
        """`start`, or the nearest node upstream of it whose op type is `op`."""
        if op is None:
            return start
        seen = {start}
        queue = deque([(start, 0)])
        while queue:
            name, depth = queue.popleft()
            if _op_type(self.nodes[name]) == op:
                return name
            if depth < _UPSTREAM_DEPTH:
                for src in self.inputs.get(name, ()):
                    if src not in seen:
                        seen.add(src)
                        queue.append((src, depth + 1))
        return start


def _op_type(node: Node) -> str:
    return node.op.rsplit(".", 1)[-1]


def _prefixes(name: str) -> list[str]:
    """`name` cut at each separator, longest first."""
    return [name[:i] for i in range(len(name) - 1, 0, -1) if name[i] in "/_:"]


# torch -------------------------------------------------------------------------------------
def _profile_torch(variant: Variant, graph: LayerGraph, batch: int, iters: int, warmup: int,
                   threads: int | None, device: str = "cpu") -> LayerProfile:
    import torch

    from workbench.core.devices import synchronize
    from workbench.core.model.runtime import torch_inputs

    if isinstance(variant.model, torch.jit.ScriptModule):
        raise WorkbenchError(f"{variant.name} is TorchScript, whose modules cannot be hooked; "
                             "per-layer profiling needs an eager nn.Module.")
    # hooks never touch the variant's model; the copy goes to the device
    model = copy.deepcopy(variant.model).eval().to(device)
    args = tuple(a.to(device) for a in torch_inputs(variant, variant.example_inputs(
        batch=batch)))
    # a GPU runs asynchronously: each hook waits for it, so time lands on its layer
    sync = (lambda: synchronize(device)) if device != "cpu" else (lambda: None)
    clock = time.perf_counter_ns
    exclusive: dict[str, int] = defaultdict(int)
    stack: list[list[Any]] = []  # [module name, start ns, children ns]
    active = [False]

    def pre(name: str) -> Any:
        def hook(module: Any, inputs: Any) -> None:
            sync()
            stack.append([name, clock(), 0])
        return hook

    def post(module: Any, inputs: Any, output: Any) -> None:
        sync()
        end = clock()
        name, start, children = stack.pop()
        elapsed = end - start
        if stack:
            stack[-1][2] += elapsed
        if active[0]:
            exclusive[name] += elapsed - children

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post))
    if threads is not None:
        request_threads(threads)  # the runner's job scope restores it
    wall = 0
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(*args)
            active[0] = True
            for _ in range(iters):
                t0 = clock()
                model(*args)
                wall += clock() - t0
    except Exception as exc:
        raise WorkbenchError(f"{variant.name} does not run at batch {batch}: "
                             f"{str(exc).strip().splitlines()[0]}") from exc
    finally:
        for h in handles:
            h.remove()
    by_path: dict[tuple[str, ...], list[Node]] = defaultdict(list)
    for n in graph.nodes:
        by_path[n.module_path].append(n)
    times: dict[str, float] = defaultdict(float)
    unmapped: dict[str, float] = {}
    for name, ns in exclusive.items():
        ms = ns / 1e6 / iters
        nodes = by_path.get(tuple(name.split(".")) if name else ())
        if not nodes:
            unmapped[name or "(model)"] = ms
            continue
        weights = [_cost(n) for n in nodes]
        total_w = sum(weights)
        for n, w in zip(nodes, weights, strict=True):
            times[n.name] += ms * w / total_w
    warnings = ["Module hooks add a few microseconds per call; small layers look slower "
                "than they are."]
    return _finish(graph, "torch", batch, iters, dict(times), wall / 1e6 / iters, unmapped,
                   warnings)


def _cost(node: Node) -> float:
    """A node's share of its module's time: its MACs, or its output size for light ops."""
    if node.macs:
        return float(node.macs)
    shape = node.output_shape
    if shape and all(isinstance(d, int) for d in shape):
        return float(max(math.prod(int(d) for d in shape), 1)) * 1e-3
    return 1e-3
