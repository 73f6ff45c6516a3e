"""The headless CLI: JSON output, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import light_models
from workbench.cli import main


def test_inspect_json_for_onnx(capsys: pytest.CaptureFixture[str]) -> None:
    import math

    import onnx

    path = next(p for p in light_models() if "squeezenet" in p.name)
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    model = onnx.load(str(path))
    assert data["format"] == "onnx"
    assert data["nodes"] == len(model.graph.node)
    assert data["parameters"] == sum(math.prod(i.dims) for i in model.graph.initializer)
    for key in ("edges", "size_bytes", "macs", "op_counts", "layers"):
        assert key in data
    assert set(data["layers"][0]) >= {"name", "op", "params", "output_shape"}


def test_inspect_text_for_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "zoo:resnet-mini", "--stats"]) == 0
    out = capsys.readouterr().out
    assert "parameters 696,042" in out
    assert "sparsity" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "/no/such/model.onnx"], "No such file"),
        (["inspect", "zoo:unknown"], "Unknown zoo model"),
        (["inspect", "zoo:mlp", "--num-classes", "0"], "--num-classes"),
    ],
)
def test_errors_are_one_line_with_exit_2(args: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_files_from_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    evil = tmp_path / "evil.pt"
    import pickle

    evil.write_bytes(pickle.dumps({"x": print}))
    for path, expected in ((bad, "not a valid ONNX"), (evil, "--trust")):
        out = subprocess.run([sys.executable, "-m", "workbench", "inspect", str(path)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2
        assert expected in out.stderr
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_bad_shape_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "zoo:mlp", "--input-shape", "1,a"]) == 2
    err = capsys.readouterr().err
    assert "not a shape" in err
    assert len(err.strip().splitlines()) == 1  # no usage block


def test_project_ls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from workbench.core.session.session import Session

    session = Session(remember_recent=False)
    session.run(session.open("zoo:mlp"))
    session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    session.save_as_project(str(tmp_path / "p"))
    session.project.close()
    assert main(["project", "ls", str(tmp_path / "p"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["parent"] is None for v in data["variants"]] == [True, False]
    assert main(["project", "ls", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
