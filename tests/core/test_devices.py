"""Devices and mixed precision: the chosen device reaches every training job; bf16 trains
on the CPU; fp16 (with a GradScaler) is a GPU option, tested where CUDA exists."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from workbench.cli_distributed import launch_command
from workbench.core import devices
from workbench.core.errors import InvalidParameterError
from workbench.core.jobs import run_job
from workbench.core.model.zoo import build_zoo
from workbench.core.session.session import Session
from workbench.core.train import distributed as dd
from workbench.core.train.data import load_dataset
from workbench.core.train.training import TrainConfig, train

SMALL = (1, 1, 8, 8)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A machine that says it has `cuda:1`; the devices jobs ask for are recorded and the
    work itself runs on the CPU (this torch has no GPU to run it on)."""
    seen: list[str] = []
    monkeypatch.setattr(devices, "device_available", lambda d: d in ("cpu", "cuda:1"))
    monkeypatch.setattr(devices, "autocast_dtype", lambda precision, device: None)

    def rank_device(device: str, ctx: Any) -> str:
        seen.append(device)
        return "cpu"

    monkeypatch.setattr(dd, "rank_device", rank_device)
    # the evaluations between rounds (and any other job) compute on the CPU too
    monkeypatch.setattr(devices, "job_device", lambda d: devices.check_device(d) and "cpu")
    return seen


def test_the_device_reaches_every_training_job(fake_gpu: list[str]) -> None:
    session = Session(remember_recent=False)
    student = session.run(session.open("zoo:mlp"))
    teacher = session.run(session.open("zoo:mlp"))
    cfg = TrainConfig(epochs=1, device="cuda:1")
    session.run(session.train("digits", cfg, student.id))
    assert fake_gpu == ["cuda:1"]
    session.run(session.distill("digits", cfg, teacher.id, variant_id=student.id))
    assert fake_gpu[1:] == ["cuda:1", "cuda:1"]  # the teacher's pass, then the student's
    session.run(session.prune_finetune("digits", cfg, rounds=1, budget=1.0,
                                       variant_id=student.id))
    assert fake_gpu[3:] == ["cuda:1"]


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "Unknown device"), ("cuda:x", "Unknown device"), ("cuda:7", "No CUDA device")])
def test_bad_devices_are_refused(device: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        TrainConfig(device=device).validate()


def test_fp16_needs_a_gpu_and_bf16_trains_on_the_cpu() -> None:
    with pytest.raises(InvalidParameterError, match="fp16 mixed precision needs a GPU"):
        TrainConfig(precision="fp16").validate()
    assert devices.autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert devices.autocast_dtype("auto", "cpu") is None
    assert not devices.needs_scaler("bf16", "cuda")
    data = load_dataset("digits", SMALL)
    result = run_job(train(build_zoo("resnet-mini", SMALL, trained=False), data,
                           TrainConfig(epochs=2, precision="bf16")))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test.accuracy > 0.5
    # the trained model is float32 again: autocast changed the arithmetic, not the weights
    assert all(p.dtype == torch.float32 for p in result.variant.model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_with_a_grad_scaler_on_cuda() -> None:
    assert devices.needs_scaler("fp16", "cuda:0")
    data = load_dataset("digits", SMALL)
    result = run_job(train(build_zoo("resnet-mini", SMALL, trained=False), data,
                           TrainConfig(epochs=2, precision="fp16", device="cuda:0")))
    assert result.test.accuracy > 0.5


def test_the_launch_command_is_torchs_elastic_launcher() -> None:
    cmd = launch_command(["train", "zoo:mlp", "--nproc", "2", "--data", "digits",
                          "--max-restarts=1", "-o", "m.pt2"], 2, max_restarts=1)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[cmd.index("--max-restarts") + 1] == "1"
    # the workers get the command without the launcher's own flags
    assert cmd[cmd.index("-m", 3) + 1:] == ["workbench", "train", "zoo:mlp", "--data",
                                            "digits", "-o", "m.pt2"]
    with pytest.raises(InvalidParameterError):
        launch_command([], 0)
