"""Datasets, training, evaluation and distillation on real data (scikit-learn's digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workbench.core.errors import InvalidParameterError
from workbench.core.events import EpochDone
from workbench.core.jobs import CancelToken, run_job
from workbench.core.model.zoo import build_zoo
from workbench.core.train.data import load_dataset
from workbench.core.train.distill import distill, transfer_parameters
from workbench.core.train.training import TrainConfig, TrainError, evaluate, train

SMALL = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits", SMALL)


@pytest.fixture(scope="module")
def teacher(digits: Any) -> Any:
    """resnet-mini trained from scratch on digits (8x8 inputs keep it quick).

    12 epochs, not 8: at 8 it ends at 97.0-97.4 %, too close to the 97 % the tests ask for;
    at 12 it reaches 97.8-98.5 % across seeds.
    """
    return run_job(train(build_zoo("resnet-mini", input_shape=SMALL), digits,
                         TrainConfig(epochs=12, lr=3e-3)))


def test_digits_adapt_to_every_input_shape() -> None:
    for shape in [(1, 1, 32, 32), (1, 3, 28, 28), (1, 8, 8), (1, 64)]:
        d = load_dataset("digits", shape)
        assert tuple(d.x.shape[1:]) == shape[1:]
        assert len(d) == 1797
        assert d.num_classes == 10
    a, b = load_dataset("digits", SMALL, seed=3), load_dataset("digits", SMALL, seed=3)
    assert torch.equal(a.splits["train"], b.splits["train"])
    c = load_dataset("digits", SMALL, seed=4)
    assert not torch.equal(a.splits["train"], c.splits["train"])
    sizes = {k: len(v) for k, v in a.splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] > 250


def test_npz_csv_and_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 64), dtype=np.float32),
             y=np.arange(40) % 4)
    d = load_dataset(str(tmp_path / "d.npz"), SMALL)
    assert d.x.shape == (40, 1, 8, 8)
    assert d.num_classes == 4
    lines = ["a,b,c,label"] + [f"{i},{i * 2},{i % 3},{'cat' if i % 2 else 'dog'}"
                               for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(lines))
    d = load_dataset(str(tmp_path / "t.csv"), (1, 3))
    assert d.class_names == ["cat", "dog"]
    assert d.x.shape == (30, 3)
    for cls in ("circle", "square"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((12, 12)) * 255).astype(np.uint8)).save(
                tmp_path / "img" / cls / f"{i}.png")
    d = load_dataset(str(tmp_path / "img"), (1, 1, 16, 16))
    assert d.x.shape == (6, 1, 16, 16)
    assert d.class_names == ["circle", "square"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("/no/such/data", "No such dataset"), ("synthetic:weird", "Unknown synthetic task")],
)
def test_bad_datasets(spec: str, message: str) -> None:
    with pytest.raises(Exception, match=message):
        load_dataset(spec, SMALL)


def test_bad_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", a=np.zeros(3))
    with pytest.raises(InvalidParameterError, match="x and y"):
        load_dataset(str(tmp_path / "bad.npz"), SMALL)


def test_token_models_refuse_image_data() -> None:
    with pytest.raises(InvalidParameterError, match="token ids"):
        load_dataset("digits", (1, 128), input_dtype="int64")


def test_trained_from_scratch_reaches_97_percent(teacher: Any, digits: Any) -> None:
    assert teacher.test.accuracy >= 0.97
    assert len(teacher.history) == 12
    assert teacher.history[-1]["train_loss"] < teacher.history[0]["train_loss"]
    again = evaluate(teacher.variant, digits)
    assert again.accuracy == pytest.approx(teacher.test.accuracy)
    assert np.asarray(again.confusion).sum() == again.samples
    assert again.top5 >= again.accuracy


def _kl_to(teacher: Any, student: Any, x: Any, temperature: float = 4.0) -> float:
    """KL divergence of the student's softened outputs from the teacher's."""
    import torch.nn.functional as F

    with torch.no_grad():
        t = F.log_softmax(teacher.eval()(x) / temperature, 1)
        s = F.log_softmax(student.eval()(x) / temperature, 1)
    return float(F.kl_div(s, t, log_target=True, reduction="batchmean"))


def test_distilled_student_learns_the_teacher(teacher: Any, digits: Any) -> None:
    """The student (1/40 of the teacher) keeps 95 % of its accuracy and matches its soft
    outputs far better than the same student trained on labels alone.

    Accuracy against that baseline is not asserted: on digits both land at 94.8-95.5 %
    across seeds, within 2 of 269 test images, so the order is noise. The KL to the teacher
    is what distillation optimizes: about 0.04 against 0.19-0.24 for the baseline.
    """
    student = build_zoo("mlp", input_shape=SMALL)
    t_params = sum(p.numel() for p in teacher.variant.model.parameters())
    s_params = sum(p.numel() for p in student.model.parameters())
    assert s_params * 10 <= t_params
    cfg = TrainConfig(epochs=30, lr=3e-3)
    baseline = run_job(train(student, digits, cfg))
    distilled = run_job(distill(teacher.variant, student, digits, cfg, temperature=4.0,
                                alpha=0.7))
    assert distilled.test.accuracy >= 0.95 * teacher.test.accuracy
    x, _ = digits.part("test")
    kl_distilled = _kl_to(teacher.variant.model, distilled.variant.model, x)
    kl_baseline = _kl_to(teacher.variant.model, baseline.variant.model, x)
    assert kl_distilled < 0.5 * kl_baseline


def test_training_is_seeded_and_leaves_the_input_alone(digits: Any) -> None:
    v = build_zoo("mlp", input_shape=SMALL)
    before = [p.clone() for p in v.model.parameters()]
    a = run_job(train(v, digits, TrainConfig(epochs=2, seed=7)))
    b = run_job(train(v, digits, TrainConfig(epochs=2, seed=7)))
    for p, q, r in zip(a.variant.model.parameters(), b.variant.model.parameters(), before,
                       strict=True):
        assert torch.equal(p, q)
        assert not torch.equal(p, r)
    for p, r in zip(v.model.parameters(), before, strict=True):
        assert torch.equal(p, r)
    assert a.variant.parent == v.id


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine", "plateau", "none"])
def test_every_optimizer_and_schedule_learns(digits: Any, optimizer: str,
                                             schedule: str) -> None:
    lr = 0.05 if optimizer == "sgd" else 3e-3
    r = run_job(train(build_zoo("mlp", input_shape=SMALL), digits, TrainConfig(
        epochs=3, optimizer=optimizer, schedule=schedule, lr=lr, warmup_epochs=1,
        grad_clip=1.0, weight_decay=1e-4, nesterov=True)))
    assert r.test.accuracy > 0.6


def test_checkpoints_and_resume_match_a_straight_run(digits: Any, tmp_path: Path) -> None:
    v = build_zoo("mlp", input_shape=SMALL)
    straight = run_job(train(v, digits, TrainConfig(epochs=4, schedule="step", step_size=2)))
    ckpt = tmp_path / "run"
    run_job(train(v, digits, TrainConfig(epochs=2, schedule="step", step_size=2,
                                         checkpoint_dir=str(ckpt))))
    assert (ckpt / "last.pt").exists()
    assert (ckpt / "best.pt").exists()
    resumed = run_job(train(v, digits, TrainConfig(epochs=4, schedule="step", step_size=2,
                                                   checkpoint_dir=str(ckpt), resume=True)))
    assert len(resumed.history) == 4
    assert resumed.history[-1]["val_loss"] == pytest.approx(straight.history[-1]["val_loss"],
                                                            rel=1e-4)


def test_stopping_mid_run_keeps_the_best_so_far(digits: Any) -> None:
    token = CancelToken()
    job = train(build_zoo("mlp", input_shape=SMALL), digits, TrainConfig(epochs=50), token)
    epochs = 0

    def count(step: Any) -> None:
        nonlocal epochs
        if isinstance(step.payload, EpochDone):
            epochs += 1
            if epochs == 2:
                token.cancel()

    result = run_job(job, count)
    assert result.stopped
    assert len(result.history) <= 3
    with torch.no_grad():
        assert result.variant.model(digits.x[:4]).shape == (4, 10)
    assert result.test.accuracy > 0.5


def test_early_stopping(digits: Any) -> None:
    r = run_job(train(build_zoo("mlp", input_shape=SMALL), digits,
                      TrainConfig(epochs=60, patience=3, lr=1e-2)))
    assert r.early_stopped
    assert len(r.history) < 60
    assert r.best_epoch == len(r.history) - 3


@pytest.mark.parametrize(
    ("cfg", "message"),
    [(TrainConfig(epochs=0), "epochs"), (TrainConfig(lr=-1), "lr must be at least"),
     (TrainConfig(optimizer="lbfgs"), "optimizer"), (TrainConfig(schedule="x"), "schedule")],
)
def test_bad_training_config(digits: Any, cfg: TrainConfig, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        run_job(train(build_zoo("mlp", input_shape=SMALL), digits, cfg))


def test_wrong_class_count_is_caught(digits: Any) -> None:
    with pytest.raises(TrainError, match="10 classes"):
        run_job(train(build_zoo("mlp", input_shape=SMALL, num_classes=3), digits,
                      TrainConfig(epochs=1)))


def test_parameter_transfer() -> None:
    a, b = build_zoo("resnet-mini", seed=1), build_zoo("resnet-mini", seed=2)
    copied = transfer_parameters(a.model, b.model)
    assert "layer1.0.conv1.weight" in copied
    assert torch.equal(a.model.layer1[0].conv1.weight, b.model.layer1[0].conv1.weight)


def test_pruned_half_and_fine_tuned_stays_within_one_point(teacher: Any, digits: Any) -> None:
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover

    original = teacher.test.accuracy
    pruned = apply_pass(discover().get("prune.magnitude"), teacher.variant,
                        {"sparsity": 0.5, "scope": "global"})
    assert pruned.report.after["sparsity"] > 0.45
    tuned = run_job(train(pruned.variant, digits, TrainConfig(epochs=3, lr=1e-3)))
    assert tuned.test.accuracy >= original - 0.01
    weights = [p for p in tuned.variant.model.parameters() if p.ndim >= 2]
    zeros = sum(int((p == 0).sum()) for p in weights) / sum(p.numel() for p in weights)
    assert zeros > 0.45  # fine-tuning kept the pruned weights at zero


def test_iterative_prune_schedule(teacher: Any, digits: Any) -> None:
    from workbench.core.train.distill import prune_finetune

    schedule = run_job(prune_finetune(teacher.variant, digits, rounds=3, step=0.3,
                                      cfg=TrainConfig(epochs=1, lr=1e-3), budget=0.02))
    curve = schedule.curve()
    assert curve[0] == (0.0, schedule.baseline_accuracy)
    assert [round(s, 2) for s, _ in curve[1:]] == [0.3, 0.6, 0.9][:len(curve) - 1]
    assert all(r.variant.parent is not None for r in schedule.rounds)
    last = schedule.rounds[-1]
    assert last.within_budget or len(schedule.rounds) <= 3


def test_an_onnx_teacher_runs_with_onnx_runtime(teacher: Any, digits: Any) -> None:
    from workbench.core.passes import apply_pass
    from workbench.core.passes.registry import discover
    from workbench.core.train.distill import teacher_logits

    onnx_teacher = apply_pass(discover().get("convert.onnx"), teacher.variant).variant
    assert onnx_teacher.backend == "onnx"
    a = teacher_logits(teacher.variant, digits)
    b = teacher_logits(onnx_teacher, digits)
    assert torch.allclose(a, b, atol=1e-3)
    assert evaluate(onnx_teacher, digits).accuracy == pytest.approx(teacher.test.accuracy)


def test_transfer_leaves_the_student_variant_untouched(teacher: Any, digits: Any) -> None:
    from workbench.core.passes.base import fingerprint

    student = build_zoo("resnet-mini", input_shape=SMALL, seed=5)
    stamp = fingerprint(student)
    result = run_job(distill(teacher.variant, student, digits, TrainConfig(epochs=1),
                             transfer=True))
    assert fingerprint(student) == stamp
    assert result.variant.parent == student.id
