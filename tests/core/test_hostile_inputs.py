"""Hostile and broken inputs: each gets exit 2 and one sentence, and nothing runs.

For every case: exit code 2, exactly one line on stderr, no traceback, no terminal escape
bytes, no marker file (the payloads would create one), and the input file unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from workbench.cli import main
from workbench.core.model.zoo import build_zoo

CLI = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())"]


class Payload:
    """Unpickling this creates the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _assert_refused(out: str, err: str, code: int, marker: Path | None = None) -> str:
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "\x1b" not in err + out
    assert "internal error" not in err
    if marker is not None:
        assert not marker.exists(), "a payload ran"
    return lines[0]


@pytest.fixture
def run_cli(capfd: pytest.CaptureFixture[str]) -> Callable[..., tuple[str, str, int]]:
    def run(*args: str) -> tuple[str, str, int]:
        code = main(list(args))
        out, err = capfd.readouterr()
        return out, err, code
    return run


def _tiny_graph(op: str, name: str = "n", domain: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], name=name, domain=domain)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def _cases(tmp: Path, marker: Path) -> dict[str, tuple[list[str], list[Path]]]:
    """Each case: CLI arguments, and the input files that must stay unchanged."""
    nonutf8 = tmp / "nonutf8.onnx"
    nonutf8.write_bytes(_tiny_graph("Relu", "RELUNAME").SerializeToString().replace(
        b"RELUNAME", b"RE\xff\xfeNAME"))
    escape = tmp / "escape.onnx"
    escape.write_bytes(_tiny_graph("\x1b]0;HACKED\x07\x1b[2J").SerializeToString())
    garbage = tmp / "garbage.pt"
    garbage.write_bytes(b"hello, this is not a model " * 10)
    pickled = tmp / "payload.pt"
    with pickled.open("wb") as f:
        pickle.dump({"weights": Payload(marker)}, f, protocol=4)
    state = tmp / "mlp_sd.pt"
    torch.save(build_zoo("mlp").model.state_dict(), state)
    npz = tmp / "garbage.npz"
    npz.write_bytes(b"PK\x03\x04 not really a zip" * 4)
    deep = tmp / "deep.json"
    deep.write_text('{"workbench_recipe": 1, "source": "zoo:mlp", "steps": [{"pass": "p", '
                    '"params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}]}")
    typed = tmp / "typed.json"
    typed.write_text(json.dumps({"workbench_recipe": 1, "source": "zoo:mlp", "steps": [
        {"pass": "prune.magnitude", "params": {"sparsity": {"nested": [1, {"x": 2}]}}}]}))
    wrong = tmp / "wrong.json"
    wrong.write_text(json.dumps({"workbench_recipe": 1, "source": ["zoo:mlp"], "steps": 3}))
    abort = tmp / "abort.json"
    abort.write_text(json.dumps({"workbench_recipe": 1, "source": str(state),
                                 "load": {"arch": "os:abort"}, "steps": []}))
    ckpt = tmp / "ckpt"
    ckpt.mkdir()
    (ckpt / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    keyless = tmp / "ckpt-keyless"
    keyless.mkdir()
    torch.save({"model": {}}, keyless / "last.pt")
    unknown_op = tmp / "unknown_op.onnx"
    onnx.save(_tiny_graph("Foo", domain="com.evil"), str(unknown_op))
    out = tmp / "out.onnx"
    return {
        "an op in an unknown domain": (
            ["apply", str(unknown_op), "quantize.ort_dynamic", "-o", str(out)], [unknown_op]),
        "non-UTF-8 ONNX name": (["inspect", str(nonutf8)], [nonutf8]),
        "escape sequences in an op type": (["inspect", str(escape)], [escape]),
        "garbage named .pt": (["inspect", str(garbage)], [garbage]),
        "a full pickle without --trust": (["inspect", str(pickled)], [pickled]),
        "arch by import path without --trust": (
            ["inspect", str(state), "--arch", "os:system"], [state]),
        "arch that is not a module class": (
            ["inspect", str(state), "--arch", "collections:OrderedDict", "--trust"], [state]),
        "garbage .npz": (["eval", "zoo:mlp", "--data", str(npz)], [npz]),
        "recipe nested 100,000 deep": (["run", str(deep)], [deep]),
        "recipe with nested parameters": (["run", str(typed)], [typed]),
        "recipe with wrongly typed fields": (["run", str(wrong)], [wrong]),
        "recipe naming os:abort": (["run", str(abort)], [abort, state]),
        "truncated --resume checkpoint": (
            ["train", "zoo:mlp", "--data", "digits", "--epochs", "1", "--checkpoint-dir",
             str(ckpt), "--resume", "-o", str(out)], [ckpt / "last.pt"]),
        "keyless --resume checkpoint": (
            ["train", "zoo:mlp", "--data", "digits", "--epochs", "1", "--checkpoint-dir",
             str(keyless), "--resume", "-o", str(out)], [keyless / "last.pt"]),
        "output whose parent is a file": (
            ["export", "zoo:mlp", "-o", str(garbage / "x.onnx")], [garbage]),
        "output that is a folder": (["export", "zoo:mlp", "-o", str(ckpt)], []),
        "output under /proc": (["export", "zoo:mlp", "-o", "/proc/workbench.onnx"], []),
        "output that is a device": (["export", "zoo:mlp", "-o", "/dev/null"], []),
        "a 5,000-character path": (["inspect", str(tmp / ("a" * 5000 + ".onnx"))], []),
        "an absurd --input-shape": (
            ["inspect", "zoo:mlp", "--input-shape", "100000,100000,100000"], []),
        "a NaN parameter": (["apply", "zoo:mlp", "prune.magnitude", "--param",
                             "sparsity=nan", "-o", str(out)], []),
    }


@pytest.mark.parametrize("case", [
    "non-UTF-8 ONNX name", "escape sequences in an op type", "garbage named .pt",
    "a full pickle without --trust", "arch by import path without --trust",
    "arch that is not a module class", "garbage .npz", "recipe nested 100,000 deep",
    "recipe with nested parameters", "recipe with wrongly typed fields",
    "recipe naming os:abort", "truncated --resume checkpoint", "keyless --resume checkpoint",
    "output whose parent is a file", "output that is a folder", "output under /proc",
    "output that is a device", "a 5,000-character path", "an absurd --input-shape",
    "a NaN parameter", "an op in an unknown domain"])
def test_refused_with_one_sentence(case: str, tmp_path: Path,
                                   run_cli: Callable[..., tuple[str, str, int]]) -> None:
    marker = tmp_path / "MARKER"
    args, inputs = _cases(tmp_path, marker)[case]
    before = _digest(inputs)
    out, err, code = run_cli(*args)
    line = _assert_refused(out, err, code, marker)
    assert _digest(inputs) == before
    assert not (tmp_path / "out.onnx").exists()
    if case == "garbage named .pt":
        assert "pickle (corrupt" in line  # not blamed on pickles
        assert "--trust" not in line
    if case == "a full pickle without --trust":
        assert "--trust" in line
    if case == "escape sequences in an op type":
        assert "\\x1b" in line  # shown, escaped


def test_recipe_arch_never_imports_without_trust(tmp_path: Path) -> None:
    """`load.arch` naming a module next to the recipe: the module is never imported (it
    would create the marker), in a real process whose working folder holds it."""
    marker = tmp_path / "MARKER"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                      "import torch\nclass Net(torch.nn.Module):\n    pass\n")
    state = tmp_path / "sd.pt"
    torch.save(build_zoo("mlp").model.state_dict(), state)
    for arch in ("evil:Net", "cProfile:main", "builtins:breakpoint"):
        recipe = tmp_path / "r.json"
        recipe.write_text(json.dumps({"workbench_recipe": 1, "source": str(state),
                                      "load": {"arch": arch}, "steps": []}))
        proc = subprocess.run([*CLI, "run", str(recipe)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(tmp_path)})
        _assert_refused(proc.stdout, proc.stderr, proc.returncode, marker)
        assert "--trust" in proc.stderr


def test_a_3gb_sparse_onnx_is_refused_in_little_memory(tmp_path: Path) -> None:
    huge = tmp_path / "huge.onnx"
    with huge.open("wb") as f:
        f.write(b"\x08\x0a")
        f.truncate(3 * 2**30)  # sparse: no disk is used
    # VmHWM: this process's peak resident memory (ru_maxrss would carry pytest's over exec)
    code = ("import re, sys\nfrom workbench.cli import main\nrc = main(sys.argv[1:])\n"
            "status = open('/proc/self/status').read()\n"
            "print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "inspect", str(huge)],
                          capture_output=True, text=True, timeout=120)
    line = _assert_refused("", proc.stderr, proc.returncode)
    assert "2 GB" in line
    assert "external data" in line
    peak_mb = int(proc.stdout.strip()) / 1024  # the child's own peak, in MB
    assert peak_mb < 300, peak_mb


def test_json_is_strict_and_notes_non_finite_numbers() -> None:
    from workbench.cli_output import dumps

    text = dumps({"loss": float("nan"), "values": [1.0, float("inf")], "ok": 2})
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert data["loss"] is None
    assert data["values"] == [1.0, None]
    assert "2 non-finite" in data["json_notes"][0]


def test_settings_nested_100000_deep_fall_back_to_defaults(tmp_path: Path) -> None:
    from workbench.core.session.settings import Settings

    path = tmp_path / "settings.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    settings = Settings(path)
    assert settings.device == "cpu"
    assert settings.warning is not None
    assert "defaults" in settings.warning
    path.write_bytes(b"\xff\xfe garbage")
    assert Settings(path).warning is not None


def test_printable_escapes_every_control_character() -> None:
    from workbench.cli_output import printable

    assert printable("a\x1b]0;x\x07b\tc\nd\x9b") == "a\\x1b]0;x\\x07b\tc\nd\\x9b"


def test_kill_9_during_an_export_then_any_command_leaves_no_temp(tmp_path: Path) -> None:
    """A real `workbench export`, killed while it writes (a slow disk is simulated), then
    `workbench --version`: no temporary file is left beside the target or in the temp
    folder, and the target was never created half-written."""
    import signal
    import time

    target = tmp_path / "out" / "model.onnx"
    target.parent.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "WORKBENCH_DATA_DIR": str(tmp_path / "data")}
    slow_export = (
        "import sys, time, onnx\n"
        "def slow_save(model, path, *a, **k):\n"
        "    open(path, 'wb').write(model.SerializeToString()[:100])\n"
        "    time.sleep(600)\n"
        "onnx.save = slow_save\n"
        "from workbench.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    child = subprocess.Popen([sys.executable, "-c", slow_export, "export", "zoo:mlp", "-o",
                              str(target)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:  # no clock decides: without a temporary file the export ends and the test fails
        while not list(target.parent.glob(".workbench-tmp-*")):
            assert child.poll() is None, "the export ended before it wrote"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert list(target.parent.glob(".workbench-tmp-*"))  # left behind by the kill
    assert not target.exists()
    proc = subprocess.run([*CLI, "--version"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    assert list(target.parent.iterdir()) == []
    assert [p for p in tmp.iterdir() if p.name.startswith("workbench-tmp-")] == []
