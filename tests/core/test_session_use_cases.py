"""The Session's training and measuring use cases, headless: distill, prune-and-fine-tune,
evaluate, profile, sensitivity and compare, with typed progress events."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.errors import InvalidParameterError
from workbench.core.events import EpochDone, RoundDone, SamplesShown
from workbench.core.jobs import Progress
from workbench.core.measure.benchmark import BenchConfig
from workbench.core.session.session import Session
from workbench.core.train.training import TrainConfig

QUICK = TrainConfig(epochs=1, lr=3e-3, batch_size=128)


@pytest.fixture
def session() -> Session:
    s = Session(remember_recent=False)
    s.run(s.open("zoo:mlp", input_shape=(1, 1, 8, 8)))
    return s


def test_training_reports_typed_events_and_checkpoints_to_its_run(session: Session) -> None:
    steps: list[Progress] = []
    trained = session.run(session.train("digits", QUICK), steps.append)
    events = [s.payload for s in steps]
    samples = next(e for e in events if isinstance(e, SamplesShown))
    assert len(samples.images) == len(samples.labels) == 16
    assert [e.epoch for e in events if isinstance(e, EpochDone)] == [1]
    folder = Path(session._run_dirs[trained.analysis.variant.parent])
    assert (folder / "last.pt").exists()
    assert (folder / "best.pt").exists()


def test_distill_adds_a_student_and_checks_its_teacher(session: Session) -> None:
    teacher = session.run(session.train("digits", TrainConfig(epochs=2, lr=3e-3)))
    student_id = session.run(session.open("zoo:mlp", input_shape=(1, 1, 8, 8))).id
    with pytest.raises(InvalidParameterError, match="teacher"):
        session.distill("digits", QUICK, teacher_id="ghost")
    with pytest.raises(InvalidParameterError, match="own teacher"):
        session.distill("digits", QUICK, teacher_id=student_id)
    with pytest.raises(InvalidParameterError, match="temperature"):
        session.distill("digits", QUICK, teacher_id=teacher.id, temperature=0)
    student = session.run(session.distill("digits", QUICK, teacher_id=teacher.id))
    assert student.analysis.variant.parent == student_id
    assert student.results["accuracy"] > 0.3
    assert student.analysis.variant.recipe[-1]["params"]["alpha"] == 0.7


def test_prune_finetune_adds_one_variant_per_round(session: Session) -> None:
    steps: list[Progress] = []
    with pytest.raises(InvalidParameterError, match="rounds"):
        session.prune_finetune("digits", QUICK, rounds=0)
    entries = session.run(session.prune_finetune("digits", QUICK, rounds=2, step=0.3,
                                                 budget=1.0), steps.append)
    assert len(entries) == 2
    rounds = [s.payload for s in steps if isinstance(s.payload, RoundDone)]
    assert [r.sparsity for r in rounds] == pytest.approx([0.3, 0.6])
    assert [e.results["accuracy"] for e in entries] == [r.accuracy for r in rounds]


def test_evaluate_records_accuracy_and_embeddings_need_a_parent(session: Session) -> None:
    result = session.run(session.evaluate("digits"))
    assert session.workspace.selected.results["accuracy"] == result.accuracy
    variant = session.workspace.selected.analysis.variant
    variant.metadata["task"] = "embedding"
    with pytest.raises(InvalidParameterError, match="embedding"):
        session.evaluate("digits")


def test_evaluate_an_embedding_child_measures_fidelity(session: Session) -> None:
    root = session.workspace.selected
    root.analysis.variant.metadata["task"] = "embedding"
    child = session.run(session.apply("quantize.fp16"))
    result = session.run(session.evaluate("digits", variant_id=child.variant.id))
    assert 0.99 < result.cosine <= 1.0
    assert session.workspace.get(child.variant.id).results["fidelity"] == result.cosine


def test_profile_sensitivity_and_compare(session: Session) -> None:
    profile = session.run(session.profile("torch"))
    assert profile.times
    assert session.workspace.selected.results["profile"] is profile
    rows = session.run(session.sensitivity("prune", 0.5))
    assert {r.layer for r in rows} == {"1", "3", "5"}
    with pytest.raises(InvalidParameterError):
        session.profile("tensorrt")
    child = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    session.run(session.benchmark(BenchConfig(runtime="torch", iters=3, warmup=1),
                                  child.variant.id))
    table = session.compare()
    assert [r.name for r in table][1] == session.workspace.get(child.variant.id).name
    assert table[1].p50_ms is not None
    with pytest.raises(InvalidParameterError):
        session.compare("ghost")


def test_a_stopped_training_still_adds_its_variant(session: Session) -> None:
    from workbench.core.jobs import CancelToken

    token = CancelToken()

    def stop_after_first_epoch(step: Progress) -> None:
        if isinstance(step.payload, EpochDone):
            token.cancel()

    entry = session.run(session.train("digits", TrainConfig(epochs=50, lr=3e-3)),
                        stop_after_first_epoch, token)
    assert len(entry.results["history"]) == 1
    assert entry.analysis.variant.parent is not None


def test_configs_are_declared_once() -> None:
    """The form, the CLI flags and the validation all read the same declaration."""
    import argparse

    from workbench.cli_params import add_param_flags, given
    from workbench.core.params import param_specs

    specs = param_specs(TrainConfig)
    assert {s.name for s in specs} >= {"epochs", "lr", "optimizer", "seed"}
    assert not {"device", "checkpoint_dir", "resume"} & {s.name for s in specs}
    assert next(s for s in specs if s.name == "lr").default == TrainConfig().lr
    parser = argparse.ArgumentParser()
    add_param_flags(parser, specs)
    args = parser.parse_args(["--lr", "0.01", "--no-keep-sparsity"])
    config = TrainConfig.parse(given(args, specs))
    assert (config.lr, config.keep_sparsity, config.epochs) == (0.01, False, 10)
    with pytest.raises(InvalidParameterError, match="optimizer"):
        TrainConfig.parse({"optimizer": "lion"})
    bench = BenchConfig.parse({"batch_sizes": "1, 8", "threads": "none"})
    assert (bench.batch_sizes, bench.threads) == ([1, 8], None)
    with pytest.raises(InvalidParameterError, match="threads"):
        BenchConfig.parse({"threads": 0})
