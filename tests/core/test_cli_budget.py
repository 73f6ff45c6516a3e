"""The CLI within a budget: --max-memory, export in a child, and undefined fidelity."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from tests.core.test_memory_ceiling import GreedyPass
from workbench.cli import main
from workbench.core.child_job import can_isolate
from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken
from workbench.core.passes import registry
from workbench.core.session.session import Session

isolating = pytest.mark.skipif(not can_isolate(), reason="needs a forked child (Linux)")


def test_a_bad_memory_size_is_a_usage_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "zoo:mlp", "-o", str(tmp_path / "m.onnx"), "--max-memory", "1K"])
    assert code == 2
    assert "too small to run a job" in capsys.readouterr().err


@isolating
def test_apply_past_max_memory_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = [*registry.discover().plugins, registry.PluginInfo("test_greedy", "tests",
                                                                 GreedyPass)]
    monkeypatch.setattr(registry, "_cache", registry.Registry(plugins))
    out = tmp_path / "m.onnx"
    code = main(["apply", "zoo:mlp", "test.greedy", "--param", "cap_mb=1536",
                 "--max-memory", "256M", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("workbench: error: test.greedy on zoo:mlp was stopped: it used ")
    assert "past the memory ceiling of 256 MB" in err
    assert not out.exists()


@isolating
def test_export_runs_in_a_child_and_cancel_writes_nothing(tmp_path: Path) -> None:
    session = Session(remember_recent=False)
    session.run(session.open("zoo:lenet5"))
    written = session.run(session.export(str(tmp_path / "a.onnx")))
    assert Path(written["output"]).stat().st_size == written["bytes"] > 0
    token = CancelToken()
    target = tmp_path / "b.onnx"

    def on_progress(step: object) -> None:
        token.cancel()  # at the first step: the child has not written the file yet

    with pytest.raises(CancelledError):
        session.run(session.export(str(target)), on_progress, cancel=token)
    assert not target.exists()


def test_eval_of_a_zero_output_model_says_undefined(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    from workbench.core.model.zoo import build_zoo

    model = copy.deepcopy(build_zoo("mlp").model)
    with torch.no_grad():
        model[5].weight.zero_()
        model[5].bias.zero_()
    path = tmp_path / "zero.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    code = main(["eval", str(path), "--arch", "mlp", "--against", "zoo:mlp"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith("cosine undefined  max |diff| ")
    assert "mean |diff| " in captured.out
    assert "cosine and SQNR are undefined because the child's outputs are all exactly 0" \
        in captured.err
