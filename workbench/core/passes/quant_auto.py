"""quantize.auto: try the ONNX Runtime int8 recipes, keep the fastest that stays accurate.

Candidates: dynamic int8 (`quantize.ort_dynamic`), static QDQ int8 (`quantize.ort_static`)
and dynamic int8 with convolutions left in float (`op_types` MatMul, Gemm; only for graphs
that hold convolutions). Each runs within the time budget; its fidelity is the lowest
per-sample cosine against the parent on real sample inputs. The float parent (its ONNX
export) and every candidate are then timed together, interleaved, on one ONNX Runtime
input with the same threads. The kept candidate is the fastest whose cosine holds
`min_cosine` and that is faster than float by more than the noise margin. When none is,
the pass keeps the float model (as ONNX) and says so: never slower than the parent.

`suggest_int8(analysis)` is the advice the Passes panel shows for convolution-heavy models.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from workbench.core.model.latency import (
    DEFAULT_BUDGET_S,
    NOISE,
    LatencyProbe,
    probe_threads,
    time_models,
)
from workbench.core.model.variant import Variant
from workbench.core.passes.base import (
    Pass,
    PassContext,
    PassError,
    PassOutput,
    param,
    parse_params,
)
from workbench.core.passes.quant_ort import OrtDynamicQuantize, OrtStaticQuantize

log = logging.getLogger(__name__)

CANDIDATES = ("dynamic", "static", "conv_float")
CONV_SHARE = 0.5  # convolutions above this share of MACs: suggest static int8
SUGGEST_FOR = ("quantize.ort_dynamic", "quantize.torch_dynamic")
_CONV_OPS = ("Conv", "ConvTranspose")
_FLOAT_OPS = ["MatMul", "Gemm"]  # the conv_float candidate's op types
_PROBE_BUDGET_PER_MODEL_S = DEFAULT_BUDGET_S / 2


def conv_mac_share(analysis: Any) -> float:
    """Share of the model's MACs spent in convolutions (0 when it has no MACs)."""
    total = sum(n.macs for n in analysis.graph.nodes)
    conv = sum(n.macs for n in analysis.graph.nodes if _is_conv(n.op))
    return conv / total if total else 0.0


def suggest_int8(analysis: Any) -> str | None:
    """Advice for int8 on a model dominated by convolutions, or None."""
    share = conv_mac_share(analysis)
    if share <= CONV_SHARE:
        return None
    return (f"Convolutions hold {share:.0%} of this model's MACs. Dynamic int8 runs them "
            "through ConvInteger, often slower than float on CPUs; static QDQ int8 "
            "(quantize.ort_static) or quantize.auto usually pays off.")


def _is_conv(op: str) -> bool:
    tail = op.rsplit(".", 1)[-1]
    return tail in _CONV_OPS or tail.startswith(("conv", "_conv"))


class QuantizeAuto(Pass):
    name = "quantize.auto"
    title = "Int8, fastest that stays accurate (ONNX Runtime)"
    category = "quantize"
    backends = ("onnx", "torch")
    description = ("Tries dynamic, static QDQ and convolutions-in-float int8, times each "
                   "against float, and keeps the fastest within the accuracy budget (or "
                   "the float model, when no int8 is faster).")
    # what times the models (None: `latency.time_models`); tests inject timings
    latency_probe: LatencyProbe | None = None
    clock = staticmethod(time.perf_counter)  # tests inject a clock to exercise the budget

    @dataclass
    class Params:
        min_cosine: float = param(0.99, help="Lowest cosine against the parent, per sample, "
                                  "that a candidate must keep", min=0.0, max=1.0)
        time_budget_s: float = param(300.0, help="Seconds for quantizing candidates; those "
                                     "not started in time are skipped", min=1.0, max=36000.0)
        candidates: list[str] = param(list(CANDIDATES), help="Recipes to try: dynamic, "
                                      "static (QDQ), conv_float (dynamic, convolutions in "
                                      "float)")
        samples: int = param(64, help="Calibration samples for static", min=1, max=1000)
        dataset: str | None = param(None, help="Labelled data (digits, a folder, .npz, "
                                    ".csv) for an accuracy budget: candidates are then "
                                    "scored on its validation split and calibrated on its "
                                    "training split")
        max_accuracy_drop: float = param(1.0, help="With a dataset: the most top-1 accuracy "
                                         "(points) a candidate may lose against float",
                                         min=0.0, max=100.0)

    def requires(self, variant: Variant, params: Any) -> None:
        from workbench.core.passes.base import check_subset

        check_subset(self.name, "candidates", list(params.candidates), CANDIDATES)

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        from workbench.core.model.sample_inputs import sample_inputs

        start = self.clock()
        notes: list[str] = []
        fp32, inputs, exporter = self._fp32(variant)
        data = _labelled_data(params.dataset, ctx.data)
        if data is not None:
            ctx = PassContext(device=ctx.device, data=data.part("train")[0][:params.samples],
                              progress=ctx.progress, cancel=ctx.cancel, log=ctx.log)
            float_accuracy = _accuracy(fp32, inputs, data)
        has_conv = any(n.op_type in _CONV_OPS for n in fp32.graph.node)
        rows: list[dict[str, Any]] = []
        cosines: dict[str, float | None] = {}  # unrounded, for the budget
        outputs: dict[str, PassOutput] = {}
        wanted = [c for c in CANDIDATES if c in params.candidates]
        for k, name in enumerate(wanted):
            ctx.cancel.check()
            row: dict[str, Any] = {"name": name}
            rows.append(row)
            if name == "conv_float" and not has_conv:
                row["skipped"] = "no convolutions"
                continue
            if k > 0 and self.clock() - start > params.time_budget_s:
                row["skipped"] = "time budget spent"
                continue
            ctx.progress(0.85 * k / len(wanted), f"Trying {name} int8…")
            try:
                out = self._candidate(name, variant, params, ctx)
            except PassError as exc:
                row["error"] = str(exc)
                continue
            outputs[name] = out
            fid = out.details["fidelity"]
            cosines[name] = fid["cosine_min"]
            row["cosine"] = _rounded(fid["cosine_min"])
            row["cosine_mean"] = _rounded(fid["cosine"])
            if data is not None:
                row["accuracy"] = _accuracy(out.model, out.inputs or inputs, data)
                row["accuracy_drop"] = round(100 * (float_accuracy - row["accuracy"]), 2)
        ctx.cancel.check()
        ctx.progress(0.9, "Timing the candidates against float…")
        samples = sample_inputs(variant, 1, seed=1)
        threads = probe_threads()
        models = {"float": fp32, **{n: o.model for n, o in outputs.items()}}
        probe = self.latency_probe or time_models
        ms = probe(models, samples[0], threads, _PROBE_BUDGET_PER_MODEL_S * len(models))
        for row in rows:
            if row["name"] in outputs:
                row["ms"] = round(ms[row["name"]], 3)
                row["speedup"] = round(ms["float"] / ms[row["name"]], 3)
        drop = params.max_accuracy_drop if data is not None else None
        kept = _choose(rows, cosines, params.min_cosine, drop)
        for row in rows:
            row["kept"] = row["name"] == kept
        float_row = {"name": "float", "cosine": 1.0, "cosine_mean": 1.0,
                     "ms": round(ms["float"], 3), "speedup": 1.0, "kept": kept is None}
        if data is not None:
            float_row.update(accuracy=float_accuracy, accuracy_drop=0.0)
        table = [float_row, *rows]
        details: dict[str, Any] = {"min_cosine": params.min_cosine, "threads": threads,
                                   "kept": kept or "float", "candidates": table,
                                   "table": candidates_text(table)}
        if data is not None:
            details.update(dataset=data.name, max_accuracy_drop=params.max_accuracy_drop,
                           float_accuracy=float_accuracy)
        if exporter:
            details["exporter"] = exporter
        ctx.progress(1.0, "Done")
        if kept is None:
            notes.append(_float_kept_sentence(rows, params.min_cosine, drop)
                         + " Kept the float model" + (" unchanged." if variant.backend == "onnx"
                                                      else ", exported to ONNX."))
            details["latency"] = {"parent_ms": round(ms["float"], 3),
                                  "child_ms": round(ms["float"], 3), "speedup": 1.0,
                                  "threads": threads}
            details["fidelity"] = {"cosine": 1.0, "cosine_min": 1.0, "note": "float kept"}
            return PassOutput(fp32, backend="onnx", format="onnx", details=details,
                              warnings=notes, inputs=inputs)
        chosen = outputs[kept]
        details.update({k: v for k, v in chosen.details.items() if k not in details})
        details["latency"] = {"parent_ms": round(ms["float"], 3),
                              "child_ms": round(ms[kept], 3),
                              "speedup": round(ms["float"] / ms[kept], 3), "threads": threads}
        notes.append(f"Kept {kept} int8: {ms['float'] / ms[kept]:.2f}x faster than float, "
                     f"cosine {chosen.details['fidelity']['cosine_min']:.4f}.")
        return PassOutput(chosen.model, backend="onnx", format="onnx", details=details,
                          warnings=notes + chosen.warnings, inputs=chosen.inputs)

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        lat = output.details["latency"]
        if output.details["kept"] != "float" and lat["speedup"] < 1.0:
            raise PassError(f"{self.name}: the kept model is slower than float.")

    # steps ----------------------------------------------------------------------------------
    def _fp32(self, variant: Variant) -> tuple[Any, Any, str | None]:
        """The float ONNX model (the parent's cached export for torch), its inputs, and the
        exporter used."""
        if variant.backend == "onnx":
            return variant.model, variant.inputs, None
        from workbench.core.model.onnx_export import (
            OnnxExportError,
            export_onnx,
            exported_input_specs,
        )

        try:
            exported = export_onnx(variant, 18, True, fast=True)
        except OnnxExportError as exc:
            raise PassError(f"{self.name}: {exc}") from exc
        return exported.model, exported_input_specs(variant, exported.model), exported.exporter

    def _candidate(self, name: str, variant: Variant, params: Any, ctx: PassContext
                   ) -> PassOutput:
        """Run one recipe without its own timing or fallback; PassError when it fails."""
        common = {"measure_latency": False, "target_cosine": 0.0}
        if name == "static":
            cls: type[Pass] = OrtStaticQuantize
            values: dict[str, Any] = {**common, "samples": params.samples}
        elif name == "conv_float":
            cls, values = OrtDynamicQuantize, {**common, "op_types": list(_FLOAT_OPS)}
        else:
            cls, values = OrtDynamicQuantize, dict(common)
        pass_obj = cls()
        p = parse_params(cls, values)
        sub = PassContext(device=ctx.device, data=ctx.data, cancel=ctx.cancel, log=ctx.log)
        try:
            out = pass_obj.run(variant, p, sub)
            pass_obj.ensures(variant, variant, p, out)
        except PassError:
            raise
        except Exception as exc:  # ORT's quantizer raises anything; one candidate fails
            log.debug("candidate %s failed", name, exc_info=True)
            raise PassError(f"{type(exc).__name__}: {exc}") from exc
        return out


def _labelled_data(spec: str | None, data: Any) -> Any:
    """The dataset for the accuracy budget (the Session loads `spec` into the context's
    data), or None without one."""
    if not spec:
        return None
    if not callable(getattr(data, "part", None)):
        raise PassError(f"quantize.auto: the dataset {spec!r} was not loaded; apply the pass "
                        "through a Session (the CLI, the window or a recipe).")
    if getattr(data, "task", "classification") != "classification":
        raise PassError(f"quantize.auto scores top-1 accuracy; {spec} is not labelled with "
                        "classes.")
    return data


def _accuracy(model: Any, inputs: Any, data: Any) -> float:
    """Top-1 accuracy of an ONNX model on the dataset's validation split (ONNX Runtime)."""
    import numpy as np

    from workbench.core.model.runtime import run_variant

    scored = Variant(name="candidate", backend="onnx", model=model, format="onnx",
                     inputs=tuple(inputs))
    x, y = data.part("val")
    hits = 0
    for i in range(0, len(x), 256):
        logits = np.asarray(run_variant(scored, (x[i:i + 256],)))
        hits += int((logits.reshape(len(logits), -1).argmax(1) == np.asarray(y[i:i + 256]))
                    .sum())
    return round(hits / max(len(x), 1), 5)


def _rounded(cosine: float | None) -> float | None:
    return None if cosine is None else round(cosine, 5)


def _holds(row: dict[str, Any], cosine: float | None, min_cosine: float,
           max_drop: float | None) -> bool:
    if cosine is None or cosine < min_cosine:  # undefined (degenerate outputs): unproven
        return False
    return max_drop is None or row.get("accuracy_drop", 0.0) <= max_drop + 1e-9


def _choose(rows: list[dict[str, Any]], cosines: dict[str, float | None], min_cosine: float,
            max_drop: float | None = None) -> str | None:
    """The fastest candidate within the budgets and faster than float beyond the noise."""
    ok = [r for r in rows if "ms" in r and _holds(r, cosines[r["name"]], min_cosine, max_drop)
          and r["speedup"] >= 1.0 + NOISE]
    return min(ok, key=lambda r: r["ms"])["name"] if ok else None


def _float_kept_sentence(rows: list[dict[str, Any]], min_cosine: float,
                         max_drop: float | None = None) -> str:
    measured = [r for r in rows if "ms" in r]
    if not measured:
        return "No int8 candidate could be built."
    accurate = [r for r in measured if _holds(r, r["cosine"], min_cosine, max_drop)]
    if not accurate:
        budget = f"a cosine of {min_cosine} against the parent" + (
            f" and loses at most {max_drop} points of accuracy" if max_drop is not None
            else "")
        return f"No int8 candidate keeps {budget}."
    return (f"No int8 candidate within cosine {min_cosine} is faster than float on this CPU "
            f"(best {max(r['speedup'] for r in accurate):.2f}x).")


def candidates_text(table: list[dict[str, Any]]) -> str:
    """The candidates as a small fixed-width text table."""
    scored = any("accuracy" in r for r in table)
    lines = [f"{'candidate':<11}{'cosine':>9}" + (f"{'top-1':>9}" if scored else "")
             + f"{'ms':>10}{'speedup':>9}  kept"]
    for r in table:
        if "ms" not in r:
            why = r.get("skipped") or r.get("error", "")
            lines.append(f"{r['name']:<11}  {why[:60]}")
            continue
        acc = f"{100 * r['accuracy']:>8.2f}%" if scored and "accuracy" in r else (
            f"{'':>9}" if scored else "")
        cos = "undef." if r["cosine"] is None else f"{r['cosine']:.4f}"
        lines.append(f"{r['name']:<11}{cos:>9}{acc}{r['ms']:>10.2f}"
                     f"{r['speedup']:>8.2f}x  {'yes' if r['kept'] else ''}")
    return "\n".join(lines)
