"""Check a torch.export archive (.pt2) before torch reads it.

`torch.export.load` trusts its file. In torch 2.13 a hostile archive can run code:

* entries torch passes to `torch.load(weights_only=False)`: example inputs
  (`data/sample_inputs/*.pt`) and legacy `data/weights/*.pt`, `data/constants/*.pt`,
  `serialized_*.pt` when the safe `weights_only=True` load fails; weights and
  constants marked `use_pickle` in their JSON config; `opaque_obj_*` constants
  (`pickle.loads`) and `custom_obj_*` constants (the TorchScript unpickler);
* symbolic shapes (`expr_str` in the model JSON), parsed by `sympy.sympify`, which
  evaluates Python;
* shape guards (`guards_code`), compiled with `exec` when the program becomes a module;
* names pasted into the Python source torch.fx generates and compiles: graph input
  names (compiled inside `torch.export.load` itself), state-dict and subgraph names,
  forward argument names and the keyword names of the input spec;
* `data/aotinductor/`: compiled native code that `torch.export.load` loads.

`pt2_trust_reasons` reads the archive itself, with both Python's zip reader and torch's
own (they could disagree on a crafted file), and returns one reason per such problem.
`load_exported_program` refuses a file with reasons unless the user trusts it, and loads
the rest with full unpickling, non-plain `sympify` and torch's log output switched off for
the loading thread only.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import keyword
import logging
import os
import re
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from workbench.core.errors import CorruptModelError, TrustRequiredError, first_line

log = logging.getLogger(__name__)

__all__ = ["is_plain_guard", "is_plain_sym_expr", "load_exported_program",
           "pt2_trust_reasons"]

# Archive layout, as in torch/csrc/export/pt2_archive_constants.h (lower-cased: torch's zip
# reader looks names up case-insensitively). The tests check these against torch's own.
SAMPLE_INPUTS_DIR = "data/sample_inputs/"
WEIGHTS_DIR = "data/weights/"
CONSTANTS_DIR = "data/constants/"
AOTINDUCTOR_DIR = "data/aotinductor/"
MODELS_DIR = "models/"
CUSTOM_OBJ_PREFIX = "custom_obj_"
OPAQUE_OBJ_PREFIX = "opaque_obj_"
# The pre-2.8 layout torch.export.load falls back to (Python zipfile, archive root).
_LEGACY_PICKLES = {"serialized_example_inputs.pt": "example inputs",
                   "serialized_state_dict.pt": "weights", "serialized_state_dict.json": "weights",
                   "serialized_constants.pt": "constants", "serialized_constants.json": "constants"}
_LEGACY_PROGRAM = "serialized_exported_program.json"

_MAX_SHOWN = 60  # characters of a rejected string quoted in a reason
_MAX_CAUSE = 200  # characters of torch's error quoted when a file does not load
_MAX_TEXT = 200_000  # longer expressions or guards are not checked, so not accepted
_MAX_EXPR_REASONS = 3
_TORCH_LOAD_LOCK = threading.Lock()  # see _load_from



# ---------------------------------------------------------------- symbolic shapes (sympify)

# Functions torch's serializer writes (sympy's srepr of its shape expressions) and gives
# sympify (torch/_export/serde/serialize.py, torch/utils/_sympy/functions.py).
_SYM_FUNCTIONS = frozenset({
    # sympy
    "Symbol", "Dummy", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max",
    "Min", "Abs", "floor", "ceiling", "Equality", "Unequality", "StrictLessThan", "LessThan",
    "StrictGreaterThan", "GreaterThan", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or",
    "Not", "ITE", "Piecewise", "ExprCondPair",
    # torch.utils._sympy.functions
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt",
    "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv",
    "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt",
    "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "IntInfinity",
    "NegativeIntInfinity",
})
_SYM_GENERATED_FUNCTION = re.compile(r"(?:OpaqueUnaryFn|BitwiseFn)_[a-z0-9_]+", re.ASCII)
_SYM_CONSTANTS = frozenset({"true", "false", "oo", "zoo", "nan", "int_oo", "True", "False"})
# Keyword arguments srepr writes: sympy assumptions (Symbol) and Float's precision.
_SYM_KEYWORDS = frozenset({
    "algebraic", "antihermitian", "commutative", "complex", "composite", "even",
    "extended_negative", "extended_nonnegative", "extended_nonpositive", "extended_nonzero",
    "extended_positive", "extended_real", "finite", "hermitian", "imaginary", "infinite",
    "integer", "irrational", "negative", "noninteger", "nonnegative", "nonpositive",
    "nonzero", "odd", "positive", "prime", "rational", "real", "transcendental", "zero",
    "precision", "evaluate",
})
# Bare symbol names (older archives wrote str(expr), not srepr): torch's SymT prefixes.
_SYMBOL_NAME = re.compile(
    r"(?:s|u|zf|zuf|tmp|ps|i|r0_|r1_|idx|x|y|z|indirect|view|h)[0-9]+", re.ASCII)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}", re.ASCII)
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_STRING_ARGUMENT = {"Symbol": _IDENTIFIER, "Dummy": _IDENTIFIER, "Float": _FLOAT_TEXT}
_EXPR_TOKEN = re.compile(
    r" +"
    r"|(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<str>'[^'\\]{0,64}')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>(),=])",
    re.ASCII)
_MAX_NUMBER = 32


def is_plain_sym_expr(text: object) -> bool:
    """True if `text` is a shape expression sympify can only build, never run code with.

    Accepted: torch's symbol names, integers, the arithmetic and comparison operators,
    parentheses, commas, the functions torch writes (with string arguments only where
    srepr puts them: a symbol name or a float) and sympy's assumption keywords.
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_TEXT:
        return False
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _EXPR_TOKEN.match(text, pos)
        if match is None:
            return False
        pos = match.end()
        if match.lastgroup is not None:
            tokens.append((match.lastgroup, match.group()))
    return _plain_tokens(tokens)


def _is_sym_function(name: str) -> bool:
    return name in _SYM_FUNCTIONS or _SYM_GENERATED_FUNCTION.fullmatch(name) is not None


def _plain_tokens(tokens: list[tuple[str, str]]) -> bool:
    depth = 0
    end = ("end", "")
    for i, (kind, value) in enumerate(tokens):
        prev = tokens[i - 1] if i else ("start", "")
        nxt = tokens[i + 1] if i + 1 < len(tokens) else end
        # an operand just ended: a number, a string, a name or ")"
        after_operand = prev[0] in ("num", "str", "name") or prev == ("op", ")")
        if kind == "num":
            if after_operand or len(value) > _MAX_NUMBER:
                return False
        elif kind == "str":
            pattern = _STRING_ARGUMENT.get(tokens[i - 2][1]) if i >= 2 else None
            if (prev != ("op", "(") or tokens[i - 2][0] != "name" or pattern is None
                    or not pattern.fullmatch(value[1:-1]) or nxt not in (("op", ","),
                                                                          ("op", ")"))):
                return False
        elif kind == "name":
            if after_operand:
                return False
            if nxt == ("op", "("):
                if not _is_sym_function(value):
                    return False
            elif nxt == ("op", "="):
                val = tokens[i + 2] if i + 2 < len(tokens) else end
                after = tokens[i + 3] if i + 3 < len(tokens) else end
                if (value not in _SYM_KEYWORDS or prev not in (("op", "("), ("op", ","))
                        or not (val[0] == "num" or val in (("name", "True"),
                                                           ("name", "False")))
                        or after not in (("op", ","), ("op", ")"))):
                    return False
            elif value not in _SYM_CONSTANTS and not _SYMBOL_NAME.fullmatch(value):
                return False
        elif value == "(":
            if after_operand and not (prev[0] == "name" and _is_sym_function(prev[1])):
                return False
            depth += 1
        elif value == ")":
            depth -= 1
            if depth < 0:
                return False
        elif value == "=" and not (prev[0] == "name" and prev[1] in _SYM_KEYWORDS):
            return False
    return depth == 0


# ---------------------------------------------------------------- shape guards (exec)

# What torch's ShapeGuardPythonPrinter writes (torch/utils/_sympy/printers.py).
_GUARD_BUILTINS = frozenset({"abs", "max", "min", "round", "int", "float"})
_GUARD_MATH = frozenset({"floor", "ceil", "trunc", "sqrt", "exp", "log", "log2", "cos",
                         "cosh", "acos", "sin", "sinh", "asin", "tan", "tanh", "atan"})
_GUARD_MATH_CONSTANTS = frozenset({"inf", "nan", "pi", "e"})
_GUARD_TORCH = frozenset({"sym_float", "sym_int", "_sym_sqrt", "sym_max", "sym_min",
                          "sym_not", "sym_ite", "sym_sum"})
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
              ast.LShift, ast.RShift, ast.BitAnd, ast.BitOr, ast.BitXor, ast.USub, ast.UAdd,
              ast.Not, ast.Invert, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
              ast.Gt, ast.GtE)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
_GUARD_CHARS = re.compile(r"[A-Za-z0-9_ .,()\[\]'+\-*/%<>=!&|^~]*", re.ASCII)


def is_plain_guard(text: object) -> bool:
    """True if `text` is a shape guard as torch writes one, e.g. `L['x'].size()[0] >= 2`.

    torch pastes guards into Python source it `exec`s; only arithmetic, comparisons,
    `L[...]` input paths, their size/stride, and a few math functions pass.
    """
    if (not isinstance(text, str) or not text or len(text) > _MAX_TEXT
            or not _GUARD_CHARS.fullmatch(text)):
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    try:
        return _plain_guard_node(tree.body)
    except RecursionError:
        return False


def _plain_guard_node(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float, bool)
    if isinstance(node, ast.BoolOp):
        return isinstance(node.op, _GUARD_OPS) and all(map(_plain_guard_node, node.values))
    if isinstance(node, ast.BinOp):
        return (isinstance(node.op, _GUARD_OPS) and _plain_guard_node(node.left)
                and _plain_guard_node(node.right))
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, _GUARD_OPS) and _plain_guard_node(node.operand)
    if isinstance(node, ast.Compare):
        return (all(isinstance(op, _GUARD_OPS) for op in node.ops)
                and _plain_guard_node(node.left) and all(map(_plain_guard_node,
                                                             node.comparators)))
    if isinstance(node, ast.IfExp):
        return all(map(_plain_guard_node, (node.test, node.body, node.orelse)))
    if isinstance(node, ast.Name):
        return node.id == "inf"
    if isinstance(node, ast.Attribute):
        return ((isinstance(node.value, ast.Name) and node.value.id == "math"
                 and node.attr in _GUARD_MATH_CONSTANTS) or _is_input_path(node))
    if isinstance(node, ast.Call):
        if node.keywords or not all(map(_plain_guard_node, node.args)):
            return False
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in _GUARD_BUILTINS
        if not isinstance(func, ast.Attribute):
            return False
        if isinstance(func.value, ast.Name) and func.value.id == "math":
            return func.attr in _GUARD_MATH
        if isinstance(func.value, ast.Name) and func.value.id == "torch":
            return func.attr in _GUARD_TORCH
        return func.attr in _GUARD_METHODS and _is_input_path(func.value)
    if isinstance(node, ast.Subscript):
        if _is_input_path(node):
            return True
        value = node.value  # e.g. L['x'].size()[0]
        return (isinstance(value, ast.Call) and _plain_guard_node(value)
                and isinstance(value.func, ast.Attribute) and _is_input_path(value.func.value)
                and isinstance(node.slice, ast.Constant) and type(node.slice.value) is int)
    return False


def _is_input_path(node: ast.AST) -> bool:
    """`L['x']`, `L['args'][0]`, `L['x'].field`: an input the guard reads."""
    if isinstance(node, ast.Subscript):
        key = node.slice
        if not isinstance(key, ast.Constant) or not (
                type(key.value) is int or (isinstance(key.value, str)
                                           and _PLAIN_KEY.fullmatch(key.value))):
            return False
        if isinstance(node.value, ast.Name):
            return node.value.id == "L" and isinstance(key.value, str)
        return _is_input_path(node.value)
    if isinstance(node, ast.Attribute):
        return not node.attr.startswith("_") and _is_input_path(node.value)
    return False


# ---------------------------------------------------------------- names in generated code

# Strings that are data, never pasted into source (or checked by their own grammar).
_FREE_TEXT_KEYS = frozenset({"metadata", "as_string", "as_strings", "target", "as_operator",
                             "torch_version", "expr_str", "guards_code", "in_spec",
                             "out_spec", "forward_arg_names"})
# Dotted paths torch.fx turns into attribute access on the module.
_PATH_KEYS = frozenset({"parameter_name", "buffer_name", "tensor_constant_name",
                        "custom_obj_name", "fqn"})
_NAME = re.compile(r"[A-Za-z0-9_.\-]{0,1000}", re.ASCII)
_PY_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}", re.ASCII)


def _plain_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def _plain_path(value: str) -> bool:
    return _plain_name(value) and not any(p.startswith("__") for p in value.split("."))


def _plain_identifier(value: object) -> bool:
    return (isinstance(value, str) and _PY_IDENTIFIER.fullmatch(value) is not None
            and not keyword.iskeyword(value))


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[:200]
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN - 3] + "..."
    return ascii(text)


# ---------------------------------------------------------------- the archive scan

class _Findings:
    """Reasons in the order found, without repeats; reasons quoting a string capped."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.quoted = 0
        self.hidden = 0

    def add(self, reason: str, quotes: bool = False) -> None:
        if reason in self.reasons:
            return
        if quotes:
            if self.quoted >= _MAX_EXPR_REASONS:
                self.hidden += 1
                return
            self.quoted += 1
        self.reasons.append(reason)

    def result(self) -> list[str]:
        if self.hidden:
            return [*self.reasons, f"{self.hidden} more such strings"]
        return list(self.reasons)


def pt2_trust_reasons(path: str | os.PathLike[str]) -> list[str]:
    """Why opening the .pt2 at `path` could run code: one short reason each, [] if none.

    Raises CorruptModelError when the file is not a readable zip archive.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _scan(fh, path.name)
    except OSError as exc:
        raise CorruptModelError(f"{path.name} could not be read: {first_line(exc)}") from exc


def _scan(fh: IO[bytes], name: str) -> list[str]:
    findings = _Findings()
    seen: set[tuple[str | None, bool, bool, bytes]] = set()  # each content checked once

    def check(entry: str, read: Callable[[], bytes]) -> None:
        candidates = _candidates(entry)
        if any(c.startswith(AOTINDUCTOR_DIR) for c in candidates):
            findings.add("it contains compiled AOTInductor code, which is native code")
        pickled = next((kind for c in candidates if (kind := _pickle_kind(c))), None)
        is_json = any(_is_parsed_json(c) for c in candidates)
        if not pickled and not is_json:
            return
        is_constants = any(c.startswith(CONSTANTS_DIR) for c in candidates)
        data = read()
        if (pickled, is_json, is_constants, data) in seen:
            return
        seen.add((pickled, is_json, is_constants, data))
        if pickled and data and _needs_full_unpickle(data):
            findings.add(f"its {pickled} are pickled beyond plain tensors")
        if is_json:
            _check_json(data, is_constants, findings)

    with _loading(untrusted=True):  # the probes only ever load with weights_only=True
        for entry, read in _python_zip_entries(fh, name):
            check(entry, read)
        for entry, read in _torch_zip_entries(fh):
            check(entry, read)
    return findings.result()


def _candidates(entry: str) -> set[str]:
    """An entry's name as torch may look it up: case-folded, with or without its root."""
    lower = entry.lower()
    names = {lower}
    if "/" in lower:
        names.add(lower.split("/", 1)[1])
    return names


def _pickle_kind(name: str) -> str | None:
    """What the entry holds if torch may `torch.load` it with a full-unpickle fallback."""
    if name in _LEGACY_PICKLES:
        return _LEGACY_PICKLES[name]
    if not name.endswith(".pt"):
        return None
    for folder, kind in ((SAMPLE_INPUTS_DIR, "example inputs"), (WEIGHTS_DIR, "weights"),
                         (CONSTANTS_DIR, "constants")):
        if name.startswith(folder):
            return kind
    return None


def _is_parsed_json(name: str) -> bool:
    return (name.startswith(MODELS_DIR) or name == _LEGACY_PROGRAM or (
        name.endswith("_config.json") and name.startswith((WEIGHTS_DIR, CONSTANTS_DIR))))


def _python_zip_entries(fh: IO[bytes], name: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Every entry as Python's zipfile reads it (torch's legacy fallback uses it)."""
    fh.seek(0)
    try:
        archive = zipfile.ZipFile(fh)
        infos = archive.infolist()
    except Exception as exc:  # zipfile raises several types for a damaged archive
        raise CorruptModelError(f"{name} is not a readable torch.export program: it is "
                                "truncated or not a zip archive.") from exc
    for info in infos:
        def read(info: zipfile.ZipInfo = info) -> bytes:
            try:
                return archive.read(info)
            except Exception as exc:
                raise CorruptModelError(f"{name} is not a readable torch.export program: "
                                        f"{first_line(exc)}") from exc
        yield info.filename, read


def _torch_zip_entries(fh: IO[bytes]) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Every record as torch's own zip reader (miniz) sees it; none if it cannot open it."""
    import torch

    fh.seek(0)
    try:
        reader = torch._C.PyTorchFileReader(fh)
        records = reader.get_all_records()
    except Exception:  # torch.export.load fails on it too, before reading anything else
        log.debug("torch's zip reader cannot open the archive", exc_info=True)
        return
    for record in records:
        def read(record: str = record) -> bytes:
            try:
                return bytes(reader.get_record(record))
            except Exception:
                log.debug("torch's zip reader cannot read %s", record, exc_info=True)
                return b""
        yield record, read


def _needs_full_unpickle(data: bytes) -> bool:
    """True unless torch's safe `weights_only=True` load reads it: torch then falls back
    to a full unpickle (torch/_export/serde/serialize.py: deserialize_torch_artifact)."""
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:
        log.debug("weights_only load refused an entry: full unpickle needed", exc_info=True)
        return True
    return False


def _check_json(data: bytes, is_constants: bool, findings: _Findings) -> None:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return  # torch fails on it too, before anything is unpickled or evaluated
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, key = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                if not _plain_name(k) or (key == "config" and not _plain_path(k)):
                    findings.add(f"a graph name is not a plain identifier: {_show(k)}", True)
                _check_field(k, v, is_constants, findings, stack)
        elif isinstance(value, list):
            stack.extend((v, key) for v in value)
        elif isinstance(value, str):
            ok = _plain_path(value) if key in _PATH_KEYS else _plain_name(value)
            if not ok:
                findings.add(f"a graph name is not a plain identifier: {_show(value)}", True)


def _check_field(key: str, value: Any, is_constants: bool, findings: _Findings,
                 stack: list[tuple[Any, str]]) -> None:
    if key == "use_pickle":
        if value:
            findings.add(f"its {'constants' if is_constants else 'weights'} are pickled")
    elif key == "path_name" and isinstance(value, str):
        lower = value.lower()
        if lower.startswith(CUSTOM_OBJ_PREFIX):
            findings.add("it holds TorchScript custom objects")
        elif lower.startswith(OPAQUE_OBJ_PREFIX):
            findings.add("it holds pickled Python objects")
        elif not _plain_name(value):
            findings.add(f"a graph name is not a plain identifier: {_show(value)}", True)
    elif key == "expr_str":
        if not is_plain_sym_expr(value):
            findings.add(f"a symbolic shape is not a plain expression: {_show(value)}", True)
    elif key == "guards_code":
        for guard in value if isinstance(value, list) else [value]:
            if not is_plain_guard(guard):
                findings.add(f"a shape guard is not a plain expression: {_show(guard)}", True)
    elif key == "forward_arg_names":
        for arg in value if isinstance(value, list) else [] if value is None else [value]:
            if not _plain_identifier(arg):
                findings.add(f"an argument name is not a plain identifier: {_show(arg)}",
                             True)
    elif key in ("in_spec", "out_spec"):
        _check_treespec(value, key == "in_spec", findings)
    elif key == "as_graph" and isinstance(value, dict):
        graph_name = value.get("name")
        if not isinstance(graph_name, str) or not _plain_path(graph_name):
            findings.add(f"a graph name is not a plain identifier: {_show(graph_name)}", True)
        stack.append((value, key))
    elif key not in _FREE_TEXT_KEYS:
        stack.append((value, key))


def _check_treespec(value: Any, is_input: bool, findings: _Findings) -> None:
    """Keyword names of the input spec are pasted into the module's source."""
    if not isinstance(value, str):
        findings.add(f"an input spec is not text: {_show(value)}", True)
        return
    try:
        spec = json.loads(value)
    except (ValueError, RecursionError):
        return  # torch fails on it too
    if not is_input or not isinstance(spec, list) or len(spec) != 2:
        return
    root = spec[1]
    children = root.get("children_spec") if isinstance(root, dict) else None
    if not isinstance(children, list) or len(children) != 2 or not isinstance(
            children[1], dict) or children[1].get("type") != "builtins.dict":
        return
    try:
        keys = json.loads(children[1].get("context") or "null")
    except (TypeError, ValueError, RecursionError):
        keys = [children[1].get("context")]
    for k in keys if isinstance(keys, list) else [] if keys is None else [keys]:
        if not _plain_identifier(k):
            findings.add(f"a keyword argument name is not a plain identifier: {_show(k)}",
                         True)


# ---------------------------------------------------------------- loading


def load_exported_program(path: str | os.PathLike[str], trust: bool) -> Any:
    """`torch.export.load(path)`, refused with TrustRequiredError if it could run code.

    With `trust` the archive is not checked. Any failure to load is a CorruptModelError
    with a one-line message; torch's own log output is kept off stderr.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:  # one handle: what is checked is what torch reads
            program = _load_from(fh, path.name, trust)
    except OSError as exc:
        raise CorruptModelError(f"{path.name} could not be read: {first_line(exc)}") from exc
    if not trust:
        bad = [g for g in getattr(program, "_guards_code", None) or []
               if not is_plain_guard(g)]
        if bad:  # compiled with exec by program.module(): checked in the archive already
            raise TrustRequiredError(_trust_message(
                path.name, [f"a shape guard is not a plain expression: {_show(bad[0])}"]))
    return program


def _load_from(fh: IO[bytes], name: str, trust: bool) -> Any:
    import torch

    if not trust:
        reasons = _scan(fh, name)
        if reasons:
            raise TrustRequiredError(_trust_message(name, reasons))
    fh.seek(0)
    # torch.export.load keeps its deserializer in a module global: one load at a time
    with _TORCH_LOAD_LOCK, _loading(untrusted=not trust) as state:
        try:
            program = torch.export.load(fh)
        except Exception as exc:
            if state.refused:
                raise TrustRequiredError(_trust_message(name, [state.refused])) from exc
            cause = first_line(state.logged_error or exc)
            if len(cause) > _MAX_CAUSE:
                cause = cause[:_MAX_CAUSE - 3] + "..."
            raise CorruptModelError(f"{name} is not a readable torch.export program: "
                                    f"{cause}") from exc
        if state.refused:  # torch caught the refusal and went on
            raise TrustRequiredError(_trust_message(name, [state.refused]))
    return program


def _trust_message(name: str, reasons: list[str]) -> str:
    return (f"{name} can run code when opened ({'; '.join(reasons)}): open it only if you "
            "trust its author (--trust in the CLI).")


# ---------------------------------------------------------------- per-thread guards

class _LoadState:
    def __init__(self, untrusted: bool) -> None:
        self.untrusted = untrusted
        self.refused: str | None = None
        self.logged_error: BaseException | None = None


class _Refused(Exception):
    """Raised inside torch when an untrusted load reaches code-running machinery."""


_local = threading.local()
_lock = threading.Lock()
_users = 0
_patches: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, original, wrapper)
_filtered_handlers: list[logging.Handler] = []


def _state() -> _LoadState | None:
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


def _refuse(reason: str) -> None:
    state = _state()
    if state is not None and state.refused is None:
        state.refused = reason
    raise _Refused(f"Workbench refused to run code from an untrusted file: {reason}.")


class _QuietFilter(logging.Filter):
    """Drops the records a quieted thread emits (and keeps their exception)."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = _state()
        if state is None:
            return True
        if record.exc_info and record.exc_info[1] is not None and state.logged_error is None:
            state.logged_error = record.exc_info[1]
        return False


_QUIET_FILTER = _QuietFilter()


@contextlib.contextmanager
def _loading(untrusted: bool) -> Iterator[_LoadState]:
    """Keep this thread's torch logging and warnings off stderr (other threads are not
    affected); if `untrusted`, also refuse full unpickles and non-plain sympify in it."""
    outer = _state()
    state = _LoadState(untrusted or (outer is not None and outer.untrusted))
    _install()
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(state)
    try:
        yield state
    finally:
        stack.pop()
        _uninstall()


def _untrusted() -> bool:
    state = _state()
    return state is not None and state.untrusted


def _install() -> None:
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        import pickle

        import sympy
        import torch

        def torch_load(f: Any, *args: Any, **kwargs: Any) -> Any:
            if _untrusted():
                if kwargs.get("weights_only") is False:
                    _refuse("it needs a full unpickle")
                kwargs["weights_only"] = True  # not None: an environment variable could flip it
            return original_load(f, *args, **kwargs)

        def pickle_loads(*args: Any, **kwargs: Any) -> Any:
            if _untrusted():
                _refuse("it holds pickled Python objects")
            return original_loads(*args, **kwargs)

        def pickle_load_obj(*args: Any, **kwargs: Any) -> Any:
            if _untrusted():
                _refuse("it holds TorchScript custom objects")
            return original_load_obj(*args, **kwargs)

        def sympify(a: Any, *args: Any, **kwargs: Any) -> Any:
            if _untrusted() and isinstance(a, str) and not is_plain_sym_expr(a):
                _refuse(f"a symbolic shape is not a plain expression: {_show(a)}")
            return original_sympify(a, *args, **kwargs)

        def showwarning(*args: Any, **kwargs: Any) -> None:
            if _state() is None:
                original_showwarning(*args, **kwargs)

        original_load = torch.load
        original_loads = pickle.loads
        original_load_obj = torch._C._pickle_load_obj
        original_sympify = sympy.sympify
        original_showwarning = warnings.showwarning
        for owner, attr, original, wrapper in (
                (torch, "load", original_load, torch_load),
                (pickle, "loads", original_loads, pickle_loads),
                (torch._C, "_pickle_load_obj", original_load_obj, pickle_load_obj),
                (sympy, "sympify", original_sympify, sympify),
                (warnings, "showwarning", original_showwarning, showwarning)):
            setattr(owner, attr, wrapper)
            _patches.append((owner, attr, original, wrapper))
        for handler in _torch_handlers():
            handler.addFilter(_QUIET_FILTER)
            _filtered_handlers.append(handler)


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users > 0:
            return
        while _patches:
            owner, attr, original, wrapper = _patches.pop()
            if getattr(owner, attr, None) is wrapper:  # someone else patched it since
                setattr(owner, attr, original)
        while _filtered_handlers:
            _filtered_handlers.pop().removeFilter(_QUIET_FILTER)


def _torch_handlers() -> list[logging.Handler]:
    """Handlers torch's records can reach: torch's own loggers', the root's, last resort."""
    handlers: dict[int, logging.Handler] = {}
    loggers: list[Any] = [logging.getLogger()]
    loggers += [lg for n, lg in list(logging.Logger.manager.loggerDict.items())
                if isinstance(lg, logging.Logger) and (n == "torch" or n.startswith("torch."))]
    for lg in loggers:
        for h in lg.handlers:
            handlers[id(h)] = h
    if logging.lastResort is not None:
        handlers[id(logging.lastResort)] = logging.lastResort
    return list(handlers.values())
