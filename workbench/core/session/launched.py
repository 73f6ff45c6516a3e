"""Training in several processes from the window: the variant's recipe plus a training step,
replayed by `workbench run` under torch's elastic launcher, with live curves from rank 0.

Rank 0 appends one JSON line per epoch to the file `WORKBENCH_METRICS` names; the job tails
it and yields the epochs as they come, so nothing blocks while the workers train. Cancelling
terminates the launcher's process group: the agent stops every rank.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.events import EpochDone
from workbench.core.jobs import CancelledError, CancelToken, Job, Progress
from workbench.core.train.distributed import METRICS_ENV, launch_command


class LaunchError(WorkbenchError):
    """The launched workers failed (their last words are in the message)."""


def train_recipe(variant: Any, dataset: str, config: Any) -> dict[str, Any]:
    """The recipe (as JSON) that rebuilds `variant` and trains it on `dataset`."""
    from workbench.core.session.recipe import Recipe

    body = Recipe.of(variant).to_json()
    params = {k: v for k, v in asdict(config).items()
              if k not in ("device", "checkpoint_dir", "resume", "strategy")}
    body["steps"].append({"train": {"dataset": dataset, **params}})
    return body


def launched_train(variant: Any, dataset: str, config: Any, nproc: int, folder: Path,
                   cancel: CancelToken, max_restarts: int = 0) -> Job[Path]:
    """Train `variant` in `nproc` processes; the trained model's file (in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    recipe, output, metrics = folder / "recipe.json", folder / "trained.pt2", \
        folder / "metrics.jsonl"
    recipe.write_text(json.dumps(train_recipe(variant, dataset, config)), encoding="utf-8")
    metrics.unlink(missing_ok=True)
    argv = ["run", str(recipe), "-o", str(output), "--json"]
    env = {**os.environ, METRICS_ENV: str(metrics)}
    yield Progress(0.0, f"Starting {nproc} processes…")
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(launch_command(argv, nproc, max_restarts), stdout=out,
                                stderr=err, env=env, start_new_session=True)
    seen = 0
    try:
        while True:
            done = proc.poll() is not None
            records = _read_records(metrics)
            for record in records[seen:]:
                yield Progress(record["epoch"] / max(config.epochs, 1),
                               f"epoch {record['epoch']}/{config.epochs} done",
                               EpochDone.of(record))
            seen = len(records)
            if done:
                break
            if cancel.cancelled:
                os.killpg(proc.pid, signal.SIGTERM)  # the agent, and through it every rank
                proc.wait(timeout=60)
                raise CancelledError("The run was stopped.")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0 or not output.exists():
        tail = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-3:]
        raise LaunchError(f"The {nproc} training processes failed (exit {proc.returncode}): "
                          + " ".join(tail))
    return output


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line still being written
            break
    return out


def launched_train_task(session: Any, dataset: str, config: Any, nproc: int,
                        variant_id: str | None = None) -> Any:
    """A Task that trains the selected variant in `nproc` processes; the commit adds the
    trained model (its curves came live from rank 0)."""
    from workbench.core.graph.analysis import open_model
    from workbench.core.session.session import Task
    from workbench.core.session.settings import runs_dir

    entry = session.entry(variant_id)
    variant = entry.analysis.variant
    config.validate()
    folder = runs_dir() / f"{variant.id}-{nproc}proc-{time.strftime('%Y%m%d-%H%M%S')}"
    history: list[dict[str, Any]] = []

    def job(token: CancelToken) -> Job[Any]:
        output = yield from _collect(launched_train(variant, dataset, config, nproc, folder,
                                                    token), history)
        return (yield from open_model(str(output), token))

    def commit(analysis: Any) -> Any:
        return session._add(analysis, {"history": history})

    return Task(f"Training {variant.name} in {nproc} processes", job, commit)


def _collect(job: Job[Path], history: list[dict[str, Any]]) -> Job[Path]:
    """`job`'s progress passed on, its epochs kept in `history`."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            result: Path = stop.value
            return result
        if isinstance(step.payload, EpochDone):
            history.append(step.payload.to_json())
        yield step
