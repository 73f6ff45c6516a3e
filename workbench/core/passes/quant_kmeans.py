"""quantize.kmeans: non-uniform weight quantization by 1-D k-means (weight sharing).

Each layer's weight is clustered into 2^bits shared values (its codebook) and every weight
is replaced by its nearest centroid. Weights stay floating point, but each quantized layer
holds at most 2^bits distinct values, so it can be stored as a `bits`-bit index plus a
small codebook. Works on torch modules and on ONNX weight initializers.

The k-means is vectorised on torch tensors: quantile or k-means++ initialisation, then a
few Lloyd iterations where assignment is a `bucketize` against centroid midpoints (1-D
clusters are intervals) and the update a `bincount`. Large layers are fitted on a random
subsample and then all weights are assigned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, check_subset, param

log = logging.getLogger(__name__)

LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
               "ConvTranspose3d", "Embedding", "GRU", "LSTM", "RNN")
DEFAULT_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")
ONNX_OPS = {"Linear": ("MatMul", "Gemm"), "Conv1d": ("Conv",), "Conv2d": ("Conv",),
            "Conv3d": ("Conv",), "ConvTranspose1d": ("ConvTranspose",),
            "ConvTranspose2d": ("ConvTranspose",), "ConvTranspose3d": ("ConvTranspose",),
            "Embedding": ("Gather",), "GRU": ("GRU",), "LSTM": ("LSTM",), "RNN": ("RNN",)}
FIT_SAMPLE = 1_000_000  # larger layers are fitted on a random subsample
SEED_SAMPLE = 20_000  # k-means++ seeds from this many points


class KMeansQuantize(Pass):
    name = "quantize.kmeans"
    title = "K-means weight sharing"
    category = "quantize"
    backends = ("torch", "onnx")
    description = ("Cluster each layer's weights into 2^bits shared values (non-uniform "
                   "quantization); weights stay float with a per-layer codebook.")

    @dataclass
    class Params:
        bits: int = param(4, help="Codebook size is 2^bits per layer", min=1, max=8)
        layer_types: list[str] = param(list(DEFAULT_TYPES),
                                       help=f"Layer types to cluster: {', '.join(LAYER_TYPES)}")
        ignore: list[str] = param([], help="Layers (module or ONNX node names) left alone",
                                  widget="nodes")
        init: str = param("kmeans++", help="Centroid initialisation",
                          choices=("kmeans++", "quantile"))
        iterations: int = param(12, help="Lloyd iterations", min=1, max=100)
        seed: int = param(0, help="Random seed (k-means++ and subsampling)", min=0)

    def requires(self, variant: Variant, params: Any) -> None:
        check_subset(self.name, "layer_types", params.layer_types, LAYER_TYPES)
        targets = _targets(variant, params.layer_types)
        names = {layer for layer, _ in targets}
        unknown_ignored = [n for n in params.ignore if n not in names]
        if unknown_ignored:
            raise InvalidParameterError(
                f"{self.name}: ignore names layer(s) that are not "
                f"{' / '.join(params.layer_types)} layers of {variant.name}: "
                f"{', '.join(map(repr, unknown_ignored))}.")
        if not [t for t in targets if t[0] not in params.ignore]:
            raise PassError(f"{self.name}: {variant.name} has no "
                            f"{' / '.join(params.layer_types)} weights left to cluster"
                            + (" (every one is ignored)." if targets else "."))

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch

        from workbench.core.model.fidelity import fidelity_report

        model = self.clone_model(variant)
        child = Variant(variant.name, variant.backend, model, variant.format, variant.inputs)
        targets = [t for t in _targets(child, params.layer_types) if t[0] not in params.ignore]
        k = 2 ** params.bits
        gen = torch.Generator().manual_seed(params.seed)
        layers: dict[str, Any] = {}
        for i, (layer, tensors) in enumerate(targets):
            ctx.cancel.check()
            ctx.progress(0.05 + 0.7 * i / len(targets), f"Clustering {layer}…")
            for tname, get, put in tensors:
                w = get()
                flat = w.detach().reshape(-1).to(torch.float32)
                centroids, idx = kmeans_1d(flat, k, params.iterations, params.init, gen)
                shared = centroids[idx]
                counts = torch.bincount(idx, minlength=centroids.numel())
                err = float(((shared - flat) ** 2).mean())  # before `put`: flat may alias w
                signal = float((flat ** 2).mean())
                put(shared.reshape(w.shape).to(w.dtype))
                layers[tname] = {
                    "layer": layer, "numel": int(flat.numel()),
                    "distinct": int(torch.unique(centroids[counts > 0]).numel()),
                    "codebook": [round(float(c), 7) for c in centroids],
                    "counts": [int(c) for c in counts],
                    "weight_sqnr_db": _db(signal, err)}
        ctx.progress(0.8, "Measuring fidelity…")
        fid, warns = fidelity_report(variant, child)
        details = {"bits": params.bits, "clusters": k, "layers": layers,
                   "max_distinct": max((v["distinct"] for v in layers.values()), default=0),
                   "ignored": list(params.ignore), "fidelity": fid}
        ctx.progress(1.0, "Done")
        return PassOutput(model, details=details, warnings=warns)

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        k = 2 ** params.bits
        over = [n for n, v in output.details["layers"].items() if v["distinct"] > k]
        if over:
            raise PassError(f"{self.name}: {', '.join(over)} kept more than {k} values.")


def kmeans_1d(x: Any, k: int, iterations: int = 12, init: str = "kmeans++",
              generator: Any = None) -> tuple[Any, Any]:
    """Cluster the 1-D float tensor `x` into at most `k` values.

    Returns (centroids sorted ascending, index of each element's centroid). In 1-D each
    cluster is an interval of the sorted data, so a Lloyd step is `searchsorted` of the
    k-1 midpoints plus prefix sums: O(k log n) per iteration after one sort. No Python loop
    runs over elements, only over iterations and (for k-means++) centroids.
    """
    import torch

    n = x.numel()
    if n <= k:
        uniq = torch.unique(x)
        return uniq, torch.bucketize(x, uniq)
    fit = x if n <= FIT_SAMPLE else x[torch.randint(0, n, (FIT_SAMPLE,), generator=generator)]
    xs = torch.sort(fit).values
    prefix = torch.cat([torch.zeros(1, dtype=torch.float64),
                        torch.cumsum(xs.to(torch.float64), 0)])
    if init == "quantile":
        q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        centroids = xs[(q * xs.numel()).long().clamp(max=xs.numel() - 1)]
    else:
        seed_set = xs if xs.numel() <= SEED_SAMPLE else \
            xs[torch.randint(0, xs.numel(), (SEED_SAMPLE,), generator=generator)]
        centroids = _kmeans_pp(seed_set, k, generator)
    centroids = torch.sort(centroids).values
    ends = torch.tensor([xs.numel()])
    starts0 = torch.zeros(1, dtype=torch.long)
    for _ in range(iterations):
        cuts = torch.searchsorted(xs, (centroids[1:] + centroids[:-1]) / 2)
        lo, hi = torch.cat([starts0, cuts]), torch.cat([cuts, ends])
        counts = hi - lo
        sums = prefix[hi] - prefix[lo]
        means = (sums / counts.clamp(min=1)).to(torch.float32)
        updated = torch.sort(torch.where(counts > 0, means, centroids)).values
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids, _assign(x, centroids)


def _assign(x: Any, centroids: Any) -> Any:
    """Nearest centroid of each element (centroids sorted): bucketize by midpoints."""
    import torch

    mid = (centroids[1:] + centroids[:-1]) / 2
    return torch.bucketize(x, mid)


def _kmeans_pp(x: Any, k: int, generator: Any) -> Any:
    """k-means++ seeding: each next centroid drawn with probability ∝ squared distance
    (inverse-CDF sampling with `cumsum` + `searchsorted`)."""
    import torch

    first = x[torch.randint(0, x.numel(), (1,), generator=generator)]
    chosen = [first]
    d2 = (x - first).to(torch.float64) ** 2
    for _ in range(k - 1):
        cdf = torch.cumsum(d2, 0)
        total = cdf[-1]
        if total <= 0:
            break
        u = torch.rand(1, generator=generator, dtype=torch.float64) * total
        c = x[torch.searchsorted(cdf, u).clamp(max=x.numel() - 1)]
        chosen.append(c)
        d2 = torch.minimum(d2, (x - c).to(torch.float64) ** 2)
    centroids = torch.cat(chosen)
    if centroids.numel() < k:  # fewer distinct points than clusters: pad with quantiles
        q = torch.linspace(0, 1, k - centroids.numel(), dtype=torch.float64)
        xs = torch.sort(x).values
        centroids = torch.cat([centroids, xs[(q * (x.numel() - 1)).long()]])
    return centroids


def _targets(variant: Variant, layer_types: list[str]) -> list[tuple[str, list[Any]]]:
    """(layer name, [(tensor name, getter, setter), ...]) for each weight layer to cluster."""
    if variant.backend == "onnx":
        return _onnx_targets(variant.model, layer_types)
    from torch import nn

    classes = tuple(getattr(nn, t) for t in layer_types)
    out = []
    for name, module in variant.model.named_modules():
        if not name or not isinstance(module, classes):
            continue
        params = [(pname, p) for pname, p in module.named_parameters(recurse=False)
                  if pname.startswith("weight") and p.numel() > 1 and p.is_floating_point()]
        if params:
            out.append((name, [(f"{name}.{pname}", _getter(p), _setter(p))
                               for pname, p in params]))
    return out


def _getter(p: Any) -> Any:
    return lambda: p.data


def _setter(p: Any) -> Any:
    def put(value: Any) -> None:
        p.data.copy_(value)

    return put


def _onnx_targets(model: Any, layer_types: list[str]) -> list[tuple[str, list[Any]]]:
    """Weight initializers of MatMul/Gemm/Conv/... nodes (input 1; Gather input 0)."""
    import numpy as np

    ops = {op for t in layer_types for op in ONNX_OPS.get(t, ())}
    inits = {i.name: i for i in model.graph.initializer}
    out = []
    seen: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in ops:
            continue
        slots = [0] if node.op_type == "Gather" else [1, 2] if node.op_type in (
            "GRU", "LSTM", "RNN") else [1]
        tensors = []
        for slot in slots:
            if slot < len(node.input) and node.input[slot] in inits and \
                    node.input[slot] not in seen:
                init = inits[node.input[slot]]
                if init.data_type in (1, 10, 11) and int(np.prod(init.dims)) > 1:
                    seen.add(init.name)
                    tensors.append((init.name, _onnx_getter(init), _onnx_setter(init)))
        if tensors:
            out.append((node.name or tensors[0][0], tensors))
    return out


def _onnx_getter(init: Any) -> Any:
    def get() -> Any:
        import torch
        from onnx import numpy_helper

        return torch.from_numpy(numpy_helper.to_array(init).copy())

    return get


def _onnx_setter(init: Any) -> Any:
    def put(value: Any) -> None:
        from onnx import numpy_helper

        init.CopyFrom(numpy_helper.from_array(value.numpy(), init.name))

    return put


def _db(signal: float, noise: float) -> float:
    from workbench.core.model.fidelity import sqnr_db

    return round(sqnr_db(signal, noise), 3)
