"""Distillation and iterative prune-and-fine-tune in 2 CPU processes (gloo), as users start
them: `workbench distill --nproc 2`, `workbench run RECIPE --nproc 2`, and `torchrun ...
workbench run RECIPE` with no flag at all.

Each rank records what it did under WORKBENCH_RANK_PROBE (`workbench.core.rank_probe`): the
files it wrote, its masks and weights after every epoch, the teacher's mode and BatchNorm
statistics. The tests compare the ranks' records with each other and the results with one
process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.core import rank_probe
from workbench.core.train.data import load_dataset

pytestmark = [pytest.mark.multiproc,
              pytest.mark.skipif(sys.platform != "linux", reason="torch's launcher, gloo")]

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (1, 1, 8, 8)
TEACHER = "zoo:resnet-mini?trained=false"  # with 15 BatchNorms, trained first on digits


def _env(probe: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}  # one thread, as each launched worker has
    env.pop("WORLD_SIZE", None)
    env.pop(rank_probe.PROBE_ENV, None)
    if probe is not None:
        env[rank_probe.PROBE_ENV] = str(probe)
    return env


def _workbench(argv: list[str], probe: Path | None = None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "workbench", *argv], capture_output=True,
                          text=True, env=_env(probe), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)  # one document: rank 0 alone printed
    return out


def _val_size() -> int:
    return len(load_dataset("digits", SHAPE, seed=0).part("val")[1])


def _ranks(probe: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rank 0's and rank 1's records, each without its file writes."""
    zero, one = rank_probe.read(probe, 0), rank_probe.read(probe, 1)
    assert zero
    assert one
    return ([r for r in zero if r["event"] != "write"],
            [r for r in one if r["event"] != "write"])


def _writes(probe: Path, rank: int) -> list[str]:
    return [r["path"] for r in rank_probe.read(probe, rank) if r["event"] == "write"]


def _distill_argv(output: Path, *extra: str) -> list[str]:
    return ["distill", "--teacher", TEACHER, "--train-teacher", "--student", "zoo:mlp",
            "--input-shape", ",".join(map(str, SHAPE)), "--data", "digits", "--epochs", "4",
            "--seed", "0", "-o", str(output), "--json", *extra]


def test_distill_in_two_processes_matches_one(tmp_path: Path,
                                              perf_figure: Callable[[str], None]) -> None:
    probe = tmp_path / "probe"
    two = _workbench(_distill_argv(tmp_path / "two.pt2", "--nproc", "2"), probe)
    one = _workbench(_distill_argv(tmp_path / "one.pt2"))
    perf_figure(f"distill, 2 processes / 1: student {two['student_accuracy']:.4f} / "
          f"{one['student_accuracy']:.4f}, teacher {two['teacher_accuracy']:.4f} / "
          f"{one['teacher_accuracy']:.4f}, baseline {two['baseline_student_accuracy']:.4f} "
          f"/ {one['baseline_student_accuracy']:.4f}")
    for key in ("student_accuracy", "teacher_accuracy", "baseline_student_accuracy"):
        assert abs(two[key] - one[key]) <= 0.02, key
    assert two["student_accuracy"] > 0.8  # a student that learnt, not two chance levels

    zero, one_rank = _ranks(probe)
    # the ranks did the same work on the same models: teacher, 3 trainings, every epoch
    assert zero == one_rank
    teacher = [r for r in zero if r["event"] == "teacher"]
    assert len(teacher) == 1
    assert teacher[0]["batchnorms"] == 15
    assert teacher[0]["training"] is False
    # eval mode: its BatchNorm statistics did not move while it labelled the data
    assert teacher[0]["buffers_before"] == teacher[0]["buffers_after"]
    epochs = [r for r in zero if r["event"] == "epoch"]
    assert len(epochs) == 3 * 4  # teacher, baseline student, distilled student
    # every rank scored the whole validation split (its share, all-reduced), not a shard
    assert {r["val_samples"] for r in epochs} == {_val_size()}

    # rank 0 alone wrote: the model and every checkpoint; rank 1 nothing
    written = _writes(probe, 0)
    assert str(tmp_path / "two.pt2") in written
    assert any(p.endswith("best.pt") for p in written)
    assert _writes(probe, 1) == []


def _prune_finetune_recipe(path: Path) -> float:
    """The recipe of iterative prune-and-fine-tune's last round (as the window saves it):
    2 rounds of 30 % more global magnitude pruning, each fine-tuned; its sparsity."""
    from workbench.core.session.recipe import Recipe
    from workbench.core.session.session import Session
    from workbench.core.train.training import TrainConfig

    session = Session(remember_recent=False)
    entry = session.run(session.open("zoo:mlp", input_shape=SHAPE))
    rounds = session.run(session.prune_finetune("digits", TrainConfig(epochs=2, seed=0),
                                                rounds=2, step=0.3, budget=1.0,
                                                variant_id=entry.id))
    variant = rounds[-1].analysis.variant
    Recipe.of(variant).save(path)
    return _sparsity(variant.model)


def _sparsity(model: Any) -> float:
    weights = [p for p in model.parameters() if p.ndim >= 2]
    return sum(int((p == 0).sum()) for p in weights) / sum(p.numel() for p in weights)


def _load(path: Path) -> Any:
    from workbench.core.model.loaders import load_model

    return load_model(str(path)).model


def test_prune_and_fine_tune_recipe_in_two_processes_keeps_masks_identical(
        tmp_path: Path, perf_figure: Callable[[str], None]) -> None:
    recipe, probe, output = tmp_path / "recipe.json", tmp_path / "probe", tmp_path / "out.pt2"
    alone = _prune_finetune_recipe(recipe)
    steps = [next(iter(s)) for s in json.loads(recipe.read_text())["steps"]]
    assert steps == ["pass", "train", "pass", "train"]
    run = _workbench(["run", str(recipe), "--nproc", "2", "--json", "-o", str(output)], probe)
    assert [s["kind"] for s in run["steps"]] == steps

    zero, one = _ranks(probe)
    assert len(zero) == len(one) == 2 * 2  # 2 rounds of 2 epochs
    for a, b in zip(zero, one, strict=True):
        assert a["mask_names"] == b["mask_names"] == ["1.weight", "3.weight", "5.weight"]
        assert a["masks"] == b["masks"]  # identical masks on both ranks after every epoch
        assert a["zeros"] == b["zeros"]  # and the same weights pruned
        assert a["weights"] == b["weights"]  # one model: replicas never drift apart
    assert zero[0]["masks"] != zero[2]["masks"]  # round 2 pruned further
    assert _writes(probe, 1) == []

    sparsity = _sparsity(_load(output))
    perf_figure(f"prune-and-fine-tune, 2 rounds to 60 %: 2 processes {sparsity:.4f}, "
          f"1 process {alone:.4f}; masks identical on both ranks after each of 4 epochs")
    assert sparsity >= 0.6 - 1e-3  # the fine-tuning kept every pruned weight at zero
    assert abs(sparsity - alone) <= 1e-3


def test_torchrun_replays_a_distillation_recipe(tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m workbench run RECIPE`: no --nproc, the world size
    comes from the launcher; the teacher, trained data-parallel first, is one on both."""
    train = {"dataset": "digits", "epochs": 2, "seed": 0}
    recipe = {"workbench_recipe": 1, "source": "zoo:mlp",
              "load": {"input_shape": list(SHAPE)},
              "steps": [{"distill": {**train, "alpha": 0.7, "temperature": 4.0, "teacher": {
                  "source": TEACHER, "load": {"input_shape": list(SHAPE)},
                  "steps": [{"train": train}]}}},
                        {"evaluate": {"dataset": "digits"}}]}
    path, probe, output = tmp_path / "recipe.json", tmp_path / "probe", tmp_path / "out.pt2"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "workbench", "run", str(path), "--json", "-o", str(output)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(probe), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)
    assert [s["kind"] for s in run["steps"]] == ["distill", "evaluate"]
    assert run["steps"][1]["accuracy"] > 0.7
    assert output.exists()
    zero, one = _ranks(probe)
    assert zero == one
    teacher = next(r for r in zero if r["event"] == "teacher")
    assert teacher["buffers_before"] == teacher["buffers_after"]
    assert _writes(probe, 1) == []
