"""The chosen device reaches every job: load, each kind of pass, train, distill,
prune-and-fine-tune, evaluate, sensitivity, benchmark, profile, `apply` and `run RECIPE`.

This machine has no GPU, so a fake says `cuda:1` (and `cuda:0`, `mps`) exist; every job
asks `devices.job_device` (training: `distributed.rank_device`) for the torch device it
computes on, and the fake records the device asked for and hands back the CPU."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.cli import main
from workbench.core import devices
from workbench.core.errors import InvalidParameterError
from workbench.core.measure.benchmark import BenchConfig, benchmark
from workbench.core.passes.registry import discover
from workbench.core.session.recipe import Recipe
from workbench.core.session.recipe_replay import run_recipe
from workbench.core.session.session import Session
from workbench.core.session.settings import Settings
from workbench.core.train import distributed as dd
from workbench.core.train.training import TrainConfig

FAKE = ("cpu", "cuda:0", "cuda:1", "mps")


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The devices jobs ask for, in order; the work runs on the CPU."""
    seen: list[str] = []
    monkeypatch.setattr(devices, "device_available", lambda d: d in FAKE)
    monkeypatch.setattr(devices, "autocast_dtype", lambda precision, device: None)

    def job_device(device: str) -> str:
        seen.append(devices.check_device(device))
        return "cpu"

    monkeypatch.setattr(devices, "job_device", job_device)
    monkeypatch.setattr(dd, "rank_device", lambda device, ctx: job_device(device))
    return seen


@pytest.fixture
def session(tmp_path: Path, fake_gpu: list[str]) -> Session:
    settings = Settings(tmp_path / "settings.json")
    settings.set_device("cuda:1")
    return Session(settings, remember_recent=False)


def _recording(monkeypatch: pytest.MonkeyPatch, pass_name: str, seen: list[str]) -> None:
    """Record the `ctx.device` a pass's `run` receives."""
    cls = type(discover().get(pass_name))
    run = cls.run

    def recorded(self: Any, variant: Any, params: Any, ctx: Any) -> Any:
        seen.append(ctx.device)
        return run(self, variant, params, ctx)

    monkeypatch.setattr(cls, "run", recorded)


def test_the_settings_device_reaches_every_job(session: Session, fake_gpu: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mlp = session.run(session.open("zoo:mlp"))
    # loading keeps the weights on the CPU, where the views and export read them; each job
    # below computes on its own copy on the device
    assert {p.device.type for p in mlp.analysis.variant.model.parameters()} == {"cpu"}
    assert fake_gpu == []

    passes: list[str] = []
    for name, values in (("prune.magnitude", {"sparsity": 0.5}),
                         ("quantize.kmeans", {"bits": 4}), ("convert.onnx", {})):
        _recording(monkeypatch, name, passes)
        session.run(session.apply(name, values, mlp.id))
    assert passes == ["cuda:1"] * 3  # a prune, a quantization, a conversion

    session.run(session.evaluate("digits", mlp.id))
    session.run(session.profile(variant_id=mlp.id))
    session.run(session.sensitivity("prune", 0.5, "digits", mlp.id))
    bench = BenchConfig(runtime="torch", iters=2, warmup=0, device=session.settings.device)
    session.run(session.benchmark(bench, mlp.id))
    assert fake_gpu == ["cuda:1"] * 4

    cfg = TrainConfig(epochs=1, device=session.settings.device)
    student = session.run(session.train("digits", cfg, mlp.id))
    teacher = session.run(session.open("zoo:mlp"))
    session.run(session.distill("digits", cfg, teacher.id, variant_id=student.id))
    session.run(session.prune_finetune("digits", cfg, rounds=1, budget=1.0,
                                       variant_id=student.id))
    # train; distill's teacher and student; prune-and-fine-tune's evaluations and tuning
    assert fake_gpu[4:] == ["cuda:1"] * 6


def test_a_recipe_runs_every_step_on_the_chosen_device(
        session: Session, fake_gpu: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[str] = []
    _recording(monkeypatch, "prune.magnitude", passes)
    path = tmp_path / "r.yaml"
    path.write_text("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n"
                    "  - pass: prune.magnitude\n    params: {sparsity: 0.5}\n"
                    "  - train: {dataset: digits, epochs: 1}\n"
                    "  - evaluate: {dataset: digits}\n"
                    "  - benchmark: {runtime: torch, iters: 2, warmup: 0}\n", encoding="utf-8")
    run = run_recipe(session, Recipe.load_file(path))
    assert passes == ["cuda:1"]
    assert fake_gpu == ["cuda:1"] * 3  # train, evaluate, benchmark
    assert "cuda" not in Recipe.of(run.variant).dumps()  # never in a recipe


def test_cli_device_reaches_the_jobs(fake_gpu: list[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    passes: list[str] = []
    _recording(monkeypatch, "prune.magnitude", passes)
    assert main(["apply", "zoo:mlp", "prune.magnitude", "--param", "sparsity=0.5", "-o",
                 str(tmp_path / "p.safetensors"), "--device", "cuda:1", "--json"]) == 0
    assert passes == ["cuda:1"]
    assert main(["eval", "zoo:mlp", "--data", "digits", "--device", "mps", "--json"]) == 0
    assert main(["bench", "zoo:mlp", "--runtime", "torch", "--iters", "2", "--warmup", "0",
                 "--device", "cuda:0", "--json"]) == 0
    assert fake_gpu == ["mps", "cuda:0"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n"
                      "  - evaluate: {dataset: digits}\n", encoding="utf-8")
    assert main(["run", str(recipe), "--device", "cuda:1", "--json"]) == 0
    assert fake_gpu[2:] == ["cuda:1"]
    capsys.readouterr()


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "Unknown device 'gpu'"), ("cuda:7", "No CUDA device 'cuda:7' is available")])
def test_cli_refuses_a_bad_device_in_one_line(device: str, message: str, fake_gpu: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["bench", "zoo:mlp"], ["eval", "zoo:mlp", "--data", "digits"],
                    ["apply", "zoo:mlp", "prune.magnitude", "-o", "x.onnx"]):
        assert main([*command, "--device", device]) == 2
        err = capsys.readouterr().err
        assert message in err
        assert len(err.strip().splitlines()) == 1
    assert fake_gpu == []  # refused before any job


def test_every_device_option_is_the_same() -> None:
    from workbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    helps = {name: next((a.help for a in p._actions if a.dest == "device"), None)
             for name, p in sub.choices.items()}  # type: ignore[attr-defined]
    for name in ("apply", "train", "distill", "eval", "bench", "compare", "run", "project"):
        assert helps[name] == "cpu, cuda, cuda:N or mps (default cpu)", name


def test_the_settings_refuse_a_missing_device_and_keep_a_good_one(
        tmp_path: Path, fake_gpu: list[str]) -> None:
    settings = Settings(tmp_path / "s.json")
    with pytest.raises(InvalidParameterError, match="No CUDA device 'cuda:2'"):
        settings.set_device("cuda:2")
    settings.set_device("mps")
    assert Settings(tmp_path / "s.json").device == "mps"


def test_a_saved_device_that_is_gone_is_refused_by_the_next_job(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"schema": 1, "device": "cuda:5"}', encoding="utf-8")
    settings = Settings(path)
    assert settings.device == "cuda:5"  # the file moved from a GPU machine: kept, not lost
    session = Session(settings, remember_recent=False)
    mlp = session.run(session.open("zoo:mlp"))
    with pytest.raises(InvalidParameterError, match="No CUDA device 'cuda:5'"):
        session.evaluate("digits", mlp.id)
    with pytest.raises(InvalidParameterError, match="No CUDA device 'cuda:5'"):
        session.apply("prune.magnitude", {"sparsity": 0.5}, mlp.id)


def test_onnx_runtime_takes_gpu_n_or_says_it_ran_on_the_cpu() -> None:
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    providers, note = devices.ort_providers("cuda:1", cuda)
    assert providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert note is None
    assert devices.ort_providers("cuda", cuda)[0][0] == ("CUDAExecutionProvider",
                                                         {"device_id": 0})
    providers, note = devices.ort_providers("cuda:1", ["CPUExecutionProvider"])
    assert providers == ["CPUExecutionProvider"]
    assert "no CUDA execution provider" in note
    providers, note = devices.ort_providers("mps", ["CPUExecutionProvider"])
    assert providers == ["CPUExecutionProvider"]
    assert "no MPS" in note
    assert devices.ort_providers("cpu", []) == (["CPUExecutionProvider"], None)


def test_an_onnx_benchmark_on_a_gpu_this_runtime_lacks_says_cpu(
        monkeypatch: pytest.MonkeyPatch, onnx_mlp: Path) -> None:
    import onnxruntime as ort

    from workbench.core.jobs import run_job

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    monkeypatch.setattr(devices, "device_available", lambda d: d in FAKE)
    session = Session(remember_recent=False)
    variant = session.run(session.open(str(onnx_mlp))).analysis.variant
    result = run_job(benchmark(variant, BenchConfig(runtime="ort", iters=2, warmup=0,
                                                    device="cuda:1")))
    assert [r.device for r in result.records] == ["cpu"]
    assert any("ran on the CPU" in n for n in result.notes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_jobs_on_a_real_gpu() -> None:
    session = Session(remember_recent=False)
    mlp = session.run(session.open("zoo:mlp"))
    device = f"cuda:{torch.cuda.device_count() - 1}"
    result = session.run(session.benchmark(BenchConfig(runtime="torch", iters=3, warmup=1,
                                                       device=device), mlp.id))
    assert result.records[0].device == device
    assert session.run(session.evaluate("digits", mlp.id, device=device)).samples > 0
    assert session.run(session.profile(variant_id=mlp.id, device=device)).rows


def test_available_devices_lists_the_cpu_first() -> None:
    found = devices.available_devices()
    assert found[0] == ("cpu", "CPU")
    gpus = [n for n, _ in found if n.startswith("cuda:")]
    assert len(gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert ("mps" in dict(found)) == bool(sys.platform == "darwin"
                                         and torch.backends.mps.is_available())
