"""Typed progress events: what a job reports besides its fraction and message.

A `Progress` carries at most one event as its `payload`. Clients dispatch on the event's
type (`isinstance`, `match`), never on a string key, so a typo is a type error, not a
silently dropped update.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplesShown:
    """A grid of dataset samples, (N, H, W) images with their labels, before training."""

    images: Any
    labels: list[str]


@dataclass(frozen=True)
class BatchDone:
    """One optimizer step. `epoch` and `step` count from 0."""

    epoch: int
    step: int
    steps: int
    loss: float
    eta_s: float
    lr: float


@dataclass(frozen=True)
class EpochDone:
    """One epoch, validated. `epoch` counts from 1, as the history does."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float
    val_accuracy: float | None
    lr: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, record: dict[str, Any]) -> EpochDone:
        return cls(**{k: record.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class RoundStarted:
    """Iterative prune-and-fine-tune: a round begins at this sparsity."""

    round: int
    sparsity: float


@dataclass(frozen=True)
class RoundDone:
    """Iterative prune-and-fine-tune: a round's accuracy after fine-tuning."""

    round: int
    sparsity: float
    accuracy: float
    within_budget: bool


@dataclass(frozen=True)
class WarmupStep:
    """A benchmark warm-up run at this batch size."""

    batch: int
    i: int


@dataclass(frozen=True)
class LatencySample:
    """Live latency (throttled): the last run in ms and the runs since the last event."""

    batch: int
    i: int
    ms: float
    recent_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class RecordDone:
    """A benchmark batch size is measured: its `BenchRecord`."""

    record: Any


@dataclass(frozen=True)
class SensitivityRowDone:
    """Sensitivity analysis: one layer measured, `index` of `total`."""

    row: Any
    index: int
    total: int


Event = (SamplesShown | BatchDone | EpochDone | RoundStarted | RoundDone | WarmupStep
         | LatencySample | RecordDone | SensitivityRowDone)
