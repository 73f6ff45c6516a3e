"""Opening a .pt2 never runs code without the user's trust.

The hostile archives are generated here: a real `torch.export.save` of a tiny model whose
zip entries are rewritten so that torch 2.13's own loader would run a payload creating a
marker file (the control test proves each one does).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from workbench.core import errors
from workbench.core.model.pt2_safety import (
    is_plain_guard,
    is_plain_sym_expr,
    load_exported_program,
    pt2_trust_reasons,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from workbench.cli import main; sys.exit(main(sys.argv[1:]))"


class _Net(torch.nn.Module):
    """A conv (weights), a buffer (weights) and a plain tensor attribute (a constant)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.register_buffer("b", torch.ones(4))
        self.c = torch.tensor([1.0, 2.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) + self.b[None, :, None, None]
        return y.mean(dim=(1, 2, 3)) + self.c.sum()


class _Payload:
    """Unpickling it creates `marker` (a relative path: the tests run in a temporary folder)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def _key(entries: dict[str, bytes], suffix: str) -> str:
    (key,) = [k for k in entries if k.endswith(suffix)]
    return key


def _edit_json(entries: dict[str, bytes], suffix: str, edit: Callable[[dict], None]) -> None:
    key = _key(entries, suffix)
    doc = json.loads(entries[key])
    edit(doc)
    entries[key] = json.dumps(doc).encode()


def _replace_text(entries: dict[str, bytes], old: str, new: str) -> None:
    for key in [k for k in entries if k.endswith(".json")]:
        entries[key] = entries[key].decode().replace(json.dumps(old), json.dumps(new)).encode()


# ------------------------------------------------------------------ the hostile corpus

def _sample_inputs(e: dict[str, bytes], m: str) -> None:
    e[_key(e, "data/sample_inputs/model.pt")] = _saved(_Payload(m))


def _upper_case_sample_inputs(e: dict[str, bytes], m: str) -> None:
    key = _key(e, "data/sample_inputs/model.pt")  # torch's zip lookups ignore case
    del e[key]
    e[key.split("/")[0] + "/DATA/Sample_Inputs/MODEL.PT"] = _saved(_Payload(m))


def _pickled_payload(e: dict[str, bytes], config: str, fqn: str, m: str) -> None:
    key = _key(e, config)
    doc = json.loads(e[key])
    meta = doc["config"][fqn]
    meta["use_pickle"] = True
    e[key] = json.dumps(doc).encode()
    e[_key(e, "/" + meta["path_name"])] = _saved(_Payload(m))


def _pickled_weight(e: dict[str, bytes], m: str) -> None:
    _pickled_payload(e, "model_weights_config.json", "conv.weight", m)


def _pickled_constant(e: dict[str, bytes], m: str) -> None:
    _pickled_payload(e, "model_constants_config.json", "c", m)


def _opaque_constant(e: dict[str, bytes], m: str) -> None:
    _edit_json(e, "model_constants_config.json", lambda d: d["config"].update(evil={
        "path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
        "tensor_meta": None}))
    root = next(iter(e)).split("/")[0]
    e[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(_Payload(m))


def _legacy_weights(e: dict[str, bytes], m: str) -> None:
    root = next(iter(e)).split("/")[0]
    e[f"{root}/data/weights/model.pt"] = _saved(_Payload(m))


def _expr_str(e: dict[str, bytes], m: str) -> None:
    def edit(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr_str":
                    node[k] = f"__import__('builtins').open({m!r}, 'w')"
                else:
                    edit(v)
        elif isinstance(node, list):
            for v in node:
                edit(v)

    _edit_json(e, "models/model.json", edit)


def _guards_code(e: dict[str, bytes], m: str) -> None:
    _edit_json(e, "models/model.json",
               lambda d: d.update(guards_code=[f"open({m!r}, 'w') is not None"]))


def _input_name(e: dict[str, bytes], m: str) -> None:
    # pasted into `def forward(self, ...)`, compiled inside torch.export.load
    _replace_text(e, "x", f"x=open({m!r}, 'w')")


def _state_dict_name(e: dict[str, bytes], m: str) -> None:
    # pasted into `getattr(self.conv, "...")` in the module's generated code
    _replace_text(e, "conv.weight", f'conv.x",0)or open("{m}","w")or ("')


def _keyword_name(e: dict[str, bytes], m: str) -> None:
    # pasted into `{'<name>': x}` in the module's generated code
    key = f"a':open('{m}','w'),'b"
    leaf = {"type": None, "context": None, "children_spec": []}
    spec = [1, {"type": "builtins.tuple", "context": "null", "children_spec": [
        {"type": "builtins.tuple", "context": "null", "children_spec": []},
        {"type": "builtins.dict", "context": json.dumps([key]), "children_spec": [leaf]}]}]
    _edit_json(e, "models/model.json", lambda d: d["graph_module"]["module_call_graph"][0][
        "signature"].update(in_spec=json.dumps(spec)))


def _aotinductor(e: dict[str, bytes], m: str) -> None:
    root = next(iter(e)).split("/")[0]
    e[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF" + m.encode()


HOSTILE: dict[str, Callable[[dict[str, bytes], str], None]] = {
    "sample_inputs": _sample_inputs,
    "upper_case_sample_inputs": _upper_case_sample_inputs,
    "pickled_weight": _pickled_weight,
    "pickled_constant": _pickled_constant,
    "opaque_constant": _opaque_constant,
    "legacy_weights": _legacy_weights,
    "expr_str": _expr_str,
    "guards_code": _guards_code,
    "input_name": _input_name,
    "state_dict_name": _state_dict_name,
    "keyword_name": _keyword_name,
}
CASES = [*HOSTILE, "legacy_format", "aotinductor"]
LIVE = [c for c in CASES if c != "aotinductor"]  # the ones with a payload to prove


def _marker(case: str) -> str:
    return f"PWNED_{case}"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real torch.export.save of `_Net`, batch dynamic (so it holds symbolic shapes)."""
    torch.manual_seed(0)
    program = torch.export.export(_Net(), (torch.randn(2, 3, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path_factory.mktemp("clean") / "net.pt2"
    torch.export.save(program, str(path))
    return path


@pytest.fixture(scope="module")
def corpus(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for case, edit in HOSTILE.items():
        entries = _entries(clean)
        edit(entries, _marker(case))
        files[case] = _write(folder / f"{case}.pt2", entries)
    files["aotinductor"] = _write(folder / "aotinductor.pt2", _aot_entries(clean))
    files["legacy_format"] = _legacy_format(clean, folder / "legacy_format.pt2",
                                            _saved(_Payload(_marker("legacy_format"))))
    return files


def _aot_entries(clean: Path) -> dict[str, bytes]:
    entries = _entries(clean)
    _aotinductor(entries, _marker("aotinductor"))
    return entries


def _legacy_format(clean: Path, path: Path, example_inputs: bytes) -> Path:
    """The pre-2.8 layout torch.export.load falls back to: serialized_* at the zip root."""
    from torch._export.serde.schema import SCHEMA_VERSION

    entries = _entries(clean)
    program = torch.export.load(str(clean))
    return _write(path, {
        "version": ".".join(map(str, SCHEMA_VERSION)).encode(),
        "serialized_exported_program.json": entries[_key(entries, "models/model.json")],
        "serialized_state_dict.pt": _saved(dict(program.state_dict)),
        "serialized_constants.pt": _saved(dict(program.constants)),
        "serialized_example_inputs.pt": example_inputs,
    })


def _copy(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    shutil.copyfile(src, dst)
    return dst


# ------------------------------------------------------------------ the corpus is live

def test_torch_alone_runs_every_payload(corpus: dict[str, Path], tmp_path: Path) -> None:
    """Control: plain torch.export.load (then .module(), a call, an fx trace) runs each."""
    paths = [str(_copy(corpus[c], tmp_path)) for c in LIVE]
    script = (
        "import json, sys, torch\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        m = torch.export.load(path).module()\n"
        "    except Exception:\n"
        "        continue\n"
        "    for step in (lambda: m(torch.randn(2, 3, 8, 8)),\n"
        "                 lambda: torch.fx.symbolic_trace(m)):\n"
        "        try:\n"
        "            step()\n"
        "        except Exception:\n"
        "            pass\n")
    subprocess.run([sys.executable, "-c", script, json.dumps(paths)], cwd=tmp_path,
                   capture_output=True, timeout=600, check=False)
    missing = [c for c in LIVE if not (tmp_path / _marker(c)).exists()]
    assert not missing


# ------------------------------------------------------------------ refused without trust

@pytest.mark.parametrize("case", CASES)
def test_hostile_archive_is_refused(case: str, corpus: dict[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    path = _copy(corpus[case], tmp_path)
    before = _digest(path)
    reasons = pt2_trust_reasons(path)
    assert reasons
    assert all("\n" not in r and len(r) < 200 for r in reasons)
    with pytest.raises(errors.TrustRequiredError) as info:
        load_exported_program(path, trust=False)
    message = str(info.value)
    assert message.startswith(f"{path.name} can run code")
    assert "--trust" in message
    assert "\n" not in message
    assert not (tmp_path / _marker(case)).exists()
    assert _digest(path) == before
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(("case", "words"), [
    ("sample_inputs", "example inputs are pickled"),
    ("upper_case_sample_inputs", "example inputs are pickled"),
    ("pickled_weight", "weights are pickled"),
    ("pickled_constant", "constants are pickled"),
    ("opaque_constant", "pickled Python objects"),
    ("legacy_weights", "weights are pickled"),
    ("legacy_format", "example inputs are pickled"),
    ("expr_str", "symbolic shape is not a plain expression: \"__import__("),
    ("guards_code", "shape guard is not a plain expression"),
    ("input_name", "not a plain identifier"),
    ("state_dict_name", "graph name is not a plain identifier"),
    ("keyword_name", "keyword argument name is not a plain identifier"),
    ("aotinductor", "AOTInductor"),
])
def test_reasons_name_the_problem(case: str, words: str, corpus: dict[str, Path]) -> None:
    assert any(words in r for r in pt2_trust_reasons(corpus[case]))


def test_one_reason_per_distinct_string(corpus: dict[str, Path]) -> None:
    reasons = pt2_trust_reasons(corpus["expr_str"])
    assert len(reasons) == 1  # the same string everywhere: one reason


@pytest.mark.parametrize("case", ["sample_inputs", "expr_str", "opaque_constant",
                                  "pickled_weight", "legacy_format"])
def test_untrusted_load_refuses_even_when_the_check_misses(
        case: str, corpus: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """Defense in depth: with the archive check switched off, torch still cannot unpickle
    fully or sympify a non-plain expression during an untrusted load."""
    from workbench.core.model import pt2_safety

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pt2_safety, "_scan", lambda fh, name: [])
    path = _copy(corpus[case], tmp_path)
    with pytest.raises(errors.TrustRequiredError, match="can run code"):
        load_exported_program(path, trust=False)
    assert not (tmp_path / _marker(case)).exists()
    assert capfd.readouterr().err == ""


def test_guards_are_checked_again_after_loading(
        corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.model import pt2_safety

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pt2_safety, "_scan", lambda fh, name: [])
    with pytest.raises(errors.TrustRequiredError, match="shape guard"):
        load_exported_program(_copy(corpus["guards_code"], tmp_path), trust=False)
    assert not (tmp_path / _marker("guards_code")).exists()


def test_guards_leave_process_state_as_it_was(corpus: dict[str, Path], clean: Path,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import logging
    import warnings

    import sympy

    monkeypatch.chdir(tmp_path)
    before = (torch.load, pickle.loads, torch._C._pickle_load_obj, sympy.sympify,
              warnings.showwarning)
    handlers = [h for lg in (logging.getLogger(), logging.getLogger("torch"))
                for h in lg.handlers]
    filters = [list(h.filters) for h in handlers]
    load_exported_program(clean, trust=False)
    with pytest.raises(errors.TrustRequiredError):
        load_exported_program(_copy(corpus["sample_inputs"], tmp_path), trust=False)
    assert before == (torch.load, pickle.loads, torch._C._pickle_load_obj, sympy.sympify,
                      warnings.showwarning)
    assert [list(h.filters) for h in handlers] == filters


def test_refusal_is_per_thread() -> None:
    """While one thread loads an untrusted file, other threads unpickle as usual."""
    from workbench.core.model.pt2_safety import _loading

    plain = io.BytesIO()
    torch.save({"a": 1}, plain)
    results: dict[str, object] = {}

    def other() -> None:
        results["other"] = torch.load(io.BytesIO(plain.getvalue()), weights_only=False)

    with _loading(untrusted=True):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
        with pytest.raises(Exception, match="refused"):
            torch.load(io.BytesIO(plain.getvalue()), weights_only=False)
    assert results["other"] == {"a": 1}
    assert torch.load(io.BytesIO(plain.getvalue()), weights_only=False) == {"a": 1}


def test_concurrent_loads(clean: Path, corpus: dict[str, Path], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    original = torch.load
    hostile = _copy(corpus["sample_inputs"], tmp_path)
    outcomes: list[str] = []

    def load(path: Path) -> None:
        try:
            load_exported_program(path, trust=False)
            outcomes.append("loaded")
        except errors.TrustRequiredError:
            outcomes.append("refused")

    threads = [threading.Thread(target=load, args=(p,)) for p in (clean, hostile) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["loaded", "loaded", "refused", "refused"]
    assert torch.load is original
    assert not (tmp_path / _marker("sample_inputs")).exists()


# ------------------------------------------------------------------ clean archives open

def _export(model: torch.nn.Module, args: tuple, path: Path, **kwargs: object) -> Path:
    torch.export.save(torch.export.export(model, args, **kwargs), str(path))
    return path


class _Cond(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, (x,))


class _Kwargs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
        return self.layers(x) * scale


class _Unbacked(torch.nn.Module):
    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        n = k.item()
        torch._check(n >= 0)
        torch._check(n < 10)
        return torch.nonzero(x).sum() + torch.zeros(n).sum()


class _Guarded(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return x.reshape(n // 2, -1).sum() + y[: max(n - 3, 1)].sum()


@pytest.fixture(scope="module")
def clean_corpus(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clean_corpus")
    auto = torch.export.Dim.AUTO
    return {
        "dynamic_conv": clean,
        "static_conv": _export(_Net(), (torch.randn(2, 3, 8, 8),), folder / "static.pt2"),
        "cond": _export(_Cond(), (torch.randn(3),), folder / "cond.pt2"),
        "kwargs": _export(_Kwargs(), (torch.randn(2, 4),), folder / "kwargs.pt2",
                          kwargs={"scale": torch.ones(1)}),
        "unbacked": _export(_Unbacked(), (torch.tensor([1, 0, 2]), torch.tensor(3)),
                            folder / "unbacked.pt2"),
        "guarded": _export(_Guarded(), (torch.randn(8, 3), torch.randn(10)),
                           folder / "guarded.pt2",
                           dynamic_shapes={"x": {0: auto}, "y": {0: auto}}),
        "legacy_format": _legacy_format(clean, folder / "legacy.pt2",
                                        _saved(((torch.randn(2, 3, 8, 8),), {}))),
    }


@pytest.mark.parametrize("case", ["dynamic_conv", "static_conv", "cond", "kwargs",
                                  "unbacked", "guarded", "legacy_format"])
def test_clean_archive_opens_without_prompt(case: str, clean_corpus: dict[str, Path],
                                            capfd: pytest.CaptureFixture[str]) -> None:
    path = clean_corpus[case]
    before = _digest(path)
    assert pt2_trust_reasons(path) == []
    program = load_exported_program(path, trust=False)
    assert isinstance(program, torch.export.ExportedProgram)
    assert _digest(path) == before
    assert capfd.readouterr().err == ""


def test_clean_archive_runs_like_the_model(clean: Path) -> None:
    program = load_exported_program(clean, trust=False)
    reference = torch.export.load(str(clean))
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(program.module()(x), reference.module()(x))
    args, kwargs = program.example_inputs
    assert args[0].shape == (2, 3, 8, 8)
    assert kwargs == {}


def test_trusted_load_skips_the_check(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.model import pt2_safety

    def fail(fh: object, name: str) -> list[str]:
        raise AssertionError("checked")

    monkeypatch.setattr(pt2_safety, "_scan", fail)
    assert isinstance(load_exported_program(clean, trust=True), torch.export.ExportedProgram)


def test_archive_constants_match_torch() -> None:
    from torch.export.pt2_archive import constants as c

    from workbench.core.model import pt2_safety as s

    assert c.SAMPLE_INPUTS_DIR.lower() == s.SAMPLE_INPUTS_DIR
    assert c.SAMPLE_INPUTS_FILENAME_FORMAT == c.SAMPLE_INPUTS_DIR + "{}.pt"
    assert c.WEIGHTS_DIR.lower() == s.WEIGHTS_DIR
    assert c.CONSTANTS_DIR.lower() == s.CONSTANTS_DIR
    assert c.AOTINDUCTOR_DIR.lower() == s.AOTINDUCTOR_DIR
    assert c.MODELS_DIR.lower() == s.MODELS_DIR
    assert c.CUSTOM_OBJ_FILENAME_PREFIX.lower() == s.CUSTOM_OBJ_PREFIX
    assert c.OPAQUE_OBJ_FILENAME_PREFIX.lower() == s.OPAQUE_OBJ_PREFIX
    assert c.WEIGHTS_CONFIG_FILENAME_FORMAT.endswith("_config.json")
    assert c.CONSTANTS_CONFIG_FILENAME_FORMAT.endswith("_config.json")


# ------------------------------------------------------------------ broken archives

def test_truncated_archive_is_corrupt_in_one_line(clean: Path, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.pt2"
    path.write_bytes(clean.read_bytes()[: clean.stat().st_size // 2])
    with pytest.raises(errors.CorruptModelError) as info:
        pt2_trust_reasons(path)
    assert "\n" not in str(info.value)
    with pytest.raises(errors.CorruptModelError, match=r"cut\.pt2"):
        load_exported_program(path, trust=False)
    with pytest.raises(errors.CorruptModelError):
        load_exported_program(path, trust=True)
    assert capfd.readouterr().err == ""


def test_broken_program_is_corrupt_and_quiet(clean: Path, tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    """torch logs a deserialization traceback for it; none reaches stderr."""
    entries = _entries(clean)
    _edit_json(entries, "models/model.json", lambda d: d["graph_module"]["graph"][
        "nodes"][0].update(target="torch.ops.aten.no_such_op.default"))
    path = _write(tmp_path / "broken.pt2", entries)
    assert pt2_trust_reasons(path) == []
    with pytest.raises(errors.CorruptModelError) as info:
        load_exported_program(path, trust=False)
    assert "\n" not in str(info.value)
    assert "broken.pt2" in str(info.value)
    assert capfd.readouterr().err == ""


def test_not_a_zip_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt2"
    path.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(errors.CorruptModelError, match=r"junk\.pt2"):
        load_exported_program(path, trust=False)


# ------------------------------------------------------------------ the grammars

TORCH_EXPRESSIONS = [
    "Symbol('s77', positive=True, integer=True)",
    "Symbol('u0', integer=True)",
    "Symbol('zuf0', real=True)",
    "Mul(Integer(-1), Symbol('s17', positive=True, integer=True))",
    "Add(Symbol('s77', positive=True, integer=True), Integer(-3))",
    "FloorDiv(Symbol('s77', positive=True, integer=True), Integer(2))",
    "Max(Integer(1), Add(Symbol('s77', positive=True, integer=True), Integer(-3)))",
    "PythonMod(Mul(Integer(-1), Symbol('s17', positive=True, integer=True)), Integer(4))",
    "FloatTrueDiv(ToFloat(Symbol('s77', positive=True, integer=True)), "
    "Float('3.0', precision=53))",
    "TruncToInt(Mul(Float('1.5', precision=53), ToFloat(Symbol('s0', positive=True, "
    "integer=True))))",
    "LessThan(Symbol('u1', integer=True), Integer(9))",
    "StrictLessThan(Symbol('u1', integer=True), Integer(10))",
    "Equality(Symbol('s0', positive=True, integer=True), Integer(2))",
    "Unequality(Symbol('s0', positive=True, integer=True), Integer(1))",
    "And(StrictGreaterThan(Symbol('s0', integer=True), Integer(1)), true)",
    "Piecewise(ExprCondPair(Symbol('s0', integer=True), true))",
    "ModularIndexing(Symbol('s0', integer=True), Integer(2), Integer(3))",
    "CleanDiv(Symbol('s0', integer=True), Integer(2))",
    "IntTrueDiv(Symbol('s0', integer=True), Symbol('u0', integer=True))",
    "CeilToInt(Symbol('zf0', real=True))",
    "OpaqueUnaryFn_sqrt(Symbol('zf0', real=True))",
    "Float('1.0000000000000001e-30', precision=53)",
    "Rational(1, 3)",
    "int_oo",
    "-oo",
    # older archives wrote str(expr)
    "s0",
    "2*s0 + 1",
    "FloorDiv(s0, 2)",
    "Eq(Mod(s0, 2), 0)",
    "s0 <= 1024",
    "s0**2 // 3 % u1",
]

HOSTILE_EXPRESSIONS = [
    "__import__('os').system('touch MARKER')",
    "__import__('builtins').open('MARKER', 'w')",
    "Symbol.__new__.__globals__['__builtins__']['open']('MARKER','w')",
    "Integer(1).__class__",
    "S.Half",
    "(lambda: 1)()",
    "exec(\"print(1)\")",
    "eval('1')",
    "lambdify(s0, s0)",
    "sympify('s0')",
    "Symbol('s0')(1)",
    "s0(1)",
    "(s0)(1)",
    "Symbol(\"s0\")",
    "Symbol(f's0')",
    "Symbol('s0' 's1')",
    "Symbol('__class__')",
    "Symbol('s0 + 1')",
    "Symbol('s0', __class__=True)",
    "Symbol('s0', positive=lambda: 1)",
    "Max(s0, [1])",
    "s0 if s0 else s1",
    "Integer(0x10)",
    "Integer(1_0)",
    "Integer(1) ; Integer(2)",
    "Symbol('s0')\n",
    "Symbol('s0') # comment",
    "\uff45\uff58\uff45\uff43('1')",
    "Pow(Integer(10), Integer(999999999999999999999999999999999999))",
    "foo",
    "x = 1",
    "Float('nan' + 'x')",
    "",
]


@pytest.mark.parametrize("text", TORCH_EXPRESSIONS)
def test_expressions_torch_writes_are_plain(text: str) -> None:
    assert is_plain_sym_expr(text)


@pytest.mark.parametrize("text", HOSTILE_EXPRESSIONS)
def test_hostile_expressions_are_not(text: str) -> None:
    assert not is_plain_sym_expr(text)


def test_expressions_written_by_torch_export_are_plain(clean_corpus: dict[str, Path]) -> None:
    found = []
    for path in clean_corpus.values():
        for name, data in _entries(path).items():
            if name.endswith(".json"):
                found += [m.group(1) for m in re.finditer(
                    r'"expr_str": ("(?:[^"\\]|\\.)*")', data.decode())]
    assert found
    assert all(is_plain_sym_expr(json.loads(e)) for e in found)


def test_non_text_expression_is_not_plain() -> None:
    assert not is_plain_sym_expr(["s0"])
    assert not is_plain_guard({"L": 1})


TORCH_GUARDS = [
    "L['x'].size()[0] > 3",
    "L['x'].size()[0] <= L['y'].size()[0]",
    "((3*L['x'].size()[0]) % 2) == 0",
    "(3*L['x'].size()[0]) == (2*((3*L['x'].size()[0]) // 2))",
    "max(1, (-3) + L['x'].size()[0]) != 1",
    "L['args'][0].size()[1] == 3",
    "L['x'].stride()[0] == L['x'].size()[1]",
    "L['x'].storage_offset() == 0",
    "math.floor(L['x'].size()[0] / 2) == 3",
    "torch.sym_float(L['x'].size()[0]) > 2.5",
    "not (L['x'].size()[0] == 1)",
    "L['x'].size()[0] >= 2 and L['x'].size()[0] <= 10",
    "L['n'] == 3",
    "L['x'].feature.size()[0] == 4",
]

HOSTILE_GUARDS = [
    "__import__('os').system('touch MARKER') == 0",
    "open('MARKER', 'w') is not None",
    "L['x'].__class__",
    "L['x'].size.__globals__",
    "L['x'].numpy()",
    "getattr(L['x'], 'size')",
    "L['x'].size()[0] == (lambda: 1)()",
    "L['x'].size()[0] == 2 # comment",
    "L['x'].size()[0] == 2\nimport os",
    "L[\"x\"].size()[0] == 1",
    "L['a b'].size()[0] == 1",
    "L[0] == 1",
    "args[0].size()[0] == 1",
    "math.system('x')",
    "torch.load('f')",
    "L['x'].size()[0:1]",
    "L['x'].size()[0] == 1 if True else exec('1')",
    "[x for x in ()]",
    "",
]


@pytest.mark.parametrize("text", TORCH_GUARDS)
def test_guards_torch_writes_are_plain(text: str) -> None:
    assert is_plain_guard(text)


@pytest.mark.parametrize("text", HOSTILE_GUARDS)
def test_hostile_guards_are_not(text: str) -> None:
    assert not is_plain_guard(text)


def test_guards_written_by_torch_export_are_plain(clean_corpus: dict[str, Path]) -> None:
    guards = load_exported_program(clean_corpus["guarded"], trust=False)._guards_code
    assert guards
    assert all(map(is_plain_guard, guards))


# ------------------------------------------------------------------ the graph of a .pt2

def test_batch_two_export_has_a_graph_with_inputs_and_macs(
        clean_corpus: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    from workbench.core.graph.analysis import open_model
    from workbench.core.jobs import run_job

    graph = run_job(open_model(str(clean_corpus["static_conv"]))).graph
    assert [t.shape for t in graph.inputs] == [(2, 3, 8, 8)]
    conv = next(n for n in graph.nodes if "conv" in n.op)
    assert conv.macs == 2 * 4 * 6 * 6 * 3 * 3 * 3
    # the loader declares the program's fixed batch, so the capture needs no refitting
    assert not any("captured at" in w for w in graph.warnings)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "ShapeProp" not in err


def test_dynamic_export_keeps_the_declared_batch(clean: Path) -> None:
    from workbench.core.graph.analysis import open_model
    from workbench.core.jobs import run_job

    graph = run_job(open_model(str(clean))).graph
    assert [t.shape for t in graph.inputs] == [(1, 3, 8, 8)]
    assert sum(n.macs for n in graph.nodes) == 4 * 6 * 6 * 3 * 3 * 3
    assert not graph.warnings


def test_failing_shape_propagation_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    from workbench.core.graph.graph_torch import torch_layer_graph
    from workbench.core.model.variant import InputSpec, Variant

    class Bad(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).view(5, -1)

    variant = Variant(name="bad", backend="torch", model=Bad(), format="zoo",
                      inputs=(InputSpec("x", (1, 3)),))
    graph = torch_layer_graph(variant)
    assert any("torch.fx failed" in w for w in graph.warnings)
    assert capfd.readouterr().err == ""


# ------------------------------------------------------------------ the CLI

def _cli(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", CLI, "inspect", str(path)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env, check=False)


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_hostile_archive(case: str, corpus: dict[str, Path],
                                     tmp_path: Path) -> None:
    path = _copy(corpus[case], tmp_path)
    before = _digest(path)
    result = _cli(path, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "can run code" in lines[0]
    assert "--trust" in lines[0]
    assert not (tmp_path / _marker(case)).exists()
    assert _digest(path) == before


def test_cli_truncated_archive_is_one_line(clean: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pt2"
    path.write_bytes(clean.read_bytes()[: clean.stat().st_size // 2])
    result = _cli(path, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cut.pt2" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_opens_clean_archive(clean_corpus: dict[str, Path], tmp_path: Path) -> None:
    result = _cli(clean_corpus["static_conv"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "input  x: [2, 3, 8, 8]" in result.stdout or "(2, 3, 8, 8)" in result.stdout


# ------------------------------------------------------------- every command, and the window

def _commands(pt2: str, tmp: Path) -> list[list[str]]:
    recipe = tmp / "r.json"
    recipe.write_text(json.dumps({"workbench_recipe": 1, "source": pt2, "steps": []}))
    out = str(tmp / "out.onnx")
    return [["inspect", pt2], ["export", pt2, "-o", out],
            ["apply", pt2, "prune.magnitude", "-o", out],
            ["eval", "zoo:mlp", "--against", pt2], ["run", str(recipe)],
            ["bench", pt2, "--iters", "2"], ["compare", "zoo:mlp", pt2],
            ["train", pt2, "--data", "digits", "--epochs", "1", "-o", out],
            ["screenshot", pt2, "-o", str(tmp / "shot.png")]]


def test_no_command_opens_a_hostile_pt2_without_trust(
        corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    monkeypatch.chdir(tmp_path)
    path = _copy(corpus["sample_inputs"], tmp_path)
    before = _digest(path)
    for args in _commands(str(path), tmp_path):
        code = main(args)
        err = capfd.readouterr().err
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert "--trust" in err, (args, err)
        assert not (tmp_path / _marker("sample_inputs")).exists(), args
    assert _digest(path) == before
    assert not (tmp_path / "out.onnx").exists()

