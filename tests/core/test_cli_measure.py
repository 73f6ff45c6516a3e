"""The CLI's train, eval, distill, bench and compare commands (JSON contracts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mlp.pt2"
    assert main(["train", "zoo:mlp", "--data", "digits", "--epochs", "3", "-o", str(out),
                 "--json"]) == 0
    data = _json(capsys)
    assert set(data) >= {"test_accuracy", "test_loss", "history", "output"}
    assert len(data["history"]) == 3
    assert data["test_accuracy"] > 0.8
    assert main(["eval", str(out), "--data", "digits", "--json"]) == 0
    again = _json(capsys)
    assert again["accuracy"] == pytest.approx(data["test_accuracy"])
    assert set(again) >= {"accuracy", "loss"}


def test_distill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "--teacher", "zoo:resnet-mini", "--student", "zoo:mlp",
                 "--input-shape", "1,1,8,8", "--train-teacher", "--data", "digits",
                 "--epochs", "2", "-o", str(tmp_path / "s.safetensors"), "--json"]) == 0
    data = _json(capsys)
    assert set(data) == {"teacher_accuracy", "student_accuracy", "baseline_student_accuracy",
                         "teacher_parameters", "student_parameters", "output"}
    assert data["student_parameters"] < data["teacher_parameters"]


def test_bench_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "zoo:mlp", "--batch", "1,4", "--iters", "8", "--warmup", "2",
                 "--threads", "1", "--json"]) == 0
    records = _json(capsys)
    assert [r["batch"] for r in records] == [1, 4]
    for r in records:
        assert set(r) >= {"runtime", "device", "batch", "mean_ms", "p50_ms", "p90_ms",
                          "p99_ms", "throughput"}
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]


def test_compare_table(tmp_path: Path, onnx_mlp: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "zoo:mlp", "zoo:lenet5", "--input-shape", "1,1,28,28",
                 "--data", "digits", "--iters", "5", "--warmup", "1", "--threads", "1",
                 "--json"]) == 0
    rows = _json(capsys)
    assert [r["name"] for r in rows] == ["zoo:mlp", "zoo:lenet5"]
    assert rows[0]["speedup"] == pytest.approx(1.0)
    assert all(r["accuracy"] is not None and r["p50_ms"] > 0 for r in rows)
    assert main(["compare", "zoo:mlp", "--iters", "3", "--warmup", "1"]) == 0
    assert capsys.readouterr().out.startswith("|")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["train", "zoo:mlp", "--data", "nowhere", "-o", "x.pt2"], "No such dataset"),
     (["train", "zoo:mlp", "--data", "digits", "--epochs", "0", "-o", "x.pt2"], "epochs"),
     (["bench", "zoo:mlp", "--iters", "0"], "iters must be at least 1"),
     (["bench", "zoo:mlp", "--batch", "1,x"], "Batch sizes are whole numbers"),
     (["train", "zoo:mlp", "--data", "digits", "--lr", "nan", "-o", "x.pt2"], "finite"),
     (["eval", "zoo:mlp"], "--data")],
)
def test_measure_errors(args: list[str], message: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
