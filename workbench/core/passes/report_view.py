"""A pass report as tables: before/after figures, per-layer rows and remaining facts.

Headless: the Passes dock formats these (and the CLI could). Figures carry a `kind`
("count", "bytes", "share", "ms", "cosine", "number") so each client formats units its way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.passes.base import PassReport

log = logging.getLogger(__name__)

_FIGURES = (("parameters", "Parameters", "count"), ("size_bytes", "Size", "bytes"),
            ("macs", "MACs", "count"), ("sparsity", "Sparsity", "share"))
# details shown elsewhere (figures, layer table) or too bulky for the facts list
_SHOWN = {"fidelity", "latency", "layers", "table", "candidates", "size_bytes_before",
          "size_bytes_after", "output_shapes", "per_layer", "quantized_layers",
          "layer_names"}
_MAX_ROWS = 2000


@dataclass(frozen=True)
class Figure:
    """One before/after row of the report."""

    label: str
    before: float | None
    after: float | None
    kind: str  # count | bytes | share | ms | cosine | number
    undefined: bool = False  # the measure means nothing here (e.g. all-zero outputs)

    @property
    def ratio(self) -> float | None:
        """after / before, when both are known and before is not zero."""
        if self.before is None or self.after is None or not self.before:
            return None
        return self.after / self.before


@dataclass(frozen=True)
class LayerTable:
    """Per-layer rows of a report: a title, the column names, and one list per layer."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


def report_figures(report: PassReport) -> list[Figure]:
    """Parameters, size, MACs, sparsity; then latency and fidelity when the pass measured
    them (fidelity has no "before": the parent is the reference)."""
    out = [Figure(label, _num(report.before.get(key)), _num(report.after.get(key)), kind)
           for key, label, kind in _FIGURES if key in report.before or key in report.after]
    d = report.details
    if "size_bytes_before" in d and "size_bytes_after" in d:
        out.append(Figure("Size (ONNX file)", _num(d["size_bytes_before"]),
                          _num(d["size_bytes_after"]), "bytes"))
    lat = d.get("latency")
    if isinstance(lat, dict) and "parent_ms" in lat and "child_ms" in lat:
        threads = f", {lat['threads']} threads" if lat.get("threads") else ""
        out.append(Figure(f"Latency (ONNX Runtime{threads})", _num(lat["parent_ms"]),
                          _num(lat["child_ms"]), "ms"))
    fid = d.get("fidelity")
    if isinstance(fid, dict):
        undefined = bool(fid.get("undefined"))
        for key, label, kind in (("cosine", "Fidelity: cosine", "cosine"),
                                 ("cosine_min", "Fidelity: lowest cosine", "cosine"),
                                 ("argmax_agreement", "Fidelity: same top class", "share"),
                                 ("max_abs_diff", "Fidelity: max |Δ|", "number"),
                                 ("mean_abs_diff", "Fidelity: mean |Δ|", "number"),
                                 ("output_sqnr_db", "Fidelity: output SQNR (dB)", "number")):
            if key == "mean_abs_diff" and not undefined:
                continue  # shown only as a fallback measure
            if isinstance(fid.get(key), (int, float)):
                out.append(Figure(label, None, float(fid[key]), kind))
            elif undefined and key in fid:
                out.append(Figure(label, None, None, kind, undefined=True))
    return out


def layer_table(report: PassReport) -> LayerTable | None:
    """Per-layer rows from `details["layers"]` (a list of dicts, or dicts by layer name), or
    else the per-layer SQNR of a quantization (`details["fidelity"]["per_layer"]`)."""
    d = report.details
    layers = d.get("layers")
    if isinstance(layers, dict) and layers:
        records = [{"layer": name, **(v if isinstance(v, dict) else {"value": v})}
                   for name, v in layers.items()]
        return _table("Layers", records)
    if isinstance(layers, list) and layers and all(isinstance(r, dict) for r in layers):
        return _table("Layers", [_layer_first(r) for r in layers])
    fid = d.get("fidelity")
    per_layer = fid.get("per_layer") if isinstance(fid, dict) else None
    if isinstance(per_layer, dict) and per_layer:
        title = "Error per layer (SQNR, higher is better)"
        names = d.get("layer_names")
        if isinstance(names, dict) and names:  # ONNX node names, with the layers they compute
            return LayerTable(title, ["layer", "node", "SQNR (dB)"],
                              [[names.get(n, ""), n, v]
                               for n, v in list(per_layer.items())[:_MAX_ROWS]])
        return LayerTable(title, ["layer", "SQNR (dB)"],
                          [[n, v] for n, v in list(per_layer.items())[:_MAX_ROWS]])
    quantized = d.get("quantized_layers")
    if isinstance(quantized, dict) and quantized:
        return LayerTable("Quantized layers", ["layer", "type"],
                          [[n, v] for n, v in quantized.items()])
    if isinstance(quantized, list) and quantized:
        return LayerTable("Quantized layers", ["layer"], [[n] for n in quantized])
    return None


def report_facts(report: PassReport) -> list[tuple[str, str]]:
    """The remaining details worth a line each (scalars and short lists), as text."""
    out: list[tuple[str, str]] = []
    for key, value in report.details.items():
        if key in _SHOWN:
            continue
        text = _fact(value)
        if text is not None:
            out.append((key.replace("_", " "), text))
    return out


def _layer_first(record: dict[str, Any]) -> dict[str, Any]:
    """A row with its layer name first, under the column "layer"."""
    for key in ("name", "layer"):
        if key in record:
            rest = {k: v for k, v in record.items() if k != key}
            return {"layer": record[key], **rest}
    return dict(record)


def _table(title: str, records: list[dict[str, Any]]) -> LayerTable:
    columns: list[str] = []
    for r in records:
        for k, v in r.items():
            if k not in columns and not isinstance(v, (dict, list, tuple)):
                columns.append(k)
    if "before" in columns and "after" in columns and all(
            isinstance(r.get("before"), (int, float)) and isinstance(r.get("after"), (int, float))
            for r in records):
        title = "Channels per layer"
    rows = [[r.get(c) for c in columns] for r in records[:_MAX_ROWS]]
    return LayerTable(title, columns, rows)


def _fact(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else None
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, dict) and len(value) <= 8 and all(
            isinstance(v, (int, float, str, bool)) for v in value.values()):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None
