"""WORKBENCH_DEBUG picks the log level; swallowed fallbacks leave a debug record."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

from workbench.core import logs
from workbench.core.logs import NOISY_LOGGERS, configure_logging, debug_level
from workbench.core.passes.registry import load_entry_point


@pytest.mark.parametrize(("value", "level"), [
    ("", None), ("0", None), ("false", None), ("1", logging.DEBUG), ("true", logging.DEBUG),
    ("TRUE", logging.DEBUG), ("INFO", logging.INFO), ("warning", logging.WARNING),
    ("error", logging.ERROR), ("nonsense", logging.DEBUG),
])
def test_workbench_debug_maps_to_a_level(value: str, level: int | None) -> None:
    assert debug_level(value) == level


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure_logging changes the root logger: put everything back afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers),
             {n: logging.getLogger(n).level for n in NOISY_LOGGERS}, logs._handler)
    monkeypatch.setenv("TORCH_LOGS", "")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "")
    monkeypatch.setattr(logs, "_handler", None)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("value", "root_level", "torch_level"), [
    (None, logging.WARNING, logging.CRITICAL),
    ("1", logging.DEBUG, logging.NOTSET),
    ("INFO", logging.INFO, logging.NOTSET),
])
def test_configure_logging_sets_the_levels(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                           root_level: int, torch_level: int) -> None:
    if value is None:
        monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    else:
        monkeypatch.setenv("WORKBENCH_DEBUG", value)
    assert configure_logging() == root_level
    configure_logging()  # idempotent: still one handler of ours
    root = logging.getLogger()
    assert root.level == root_level
    assert sum(h is logs._handler for h in root.handlers) == 1
    assert logging.getLogger("torch").level == torch_level


@pytest.mark.usefixtures("restore_logging")
def test_the_default_level_prints_one_line_and_no_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    configure_logging()
    log = logging.getLogger("workbench.test")
    try:
        raise ValueError("inner\nproblem")
    except ValueError:
        log.warning("it failed:\n%s", "twice", exc_info=True)
        log.debug("not shown", exc_info=True)
    logging.getLogger("torch.onnx").warning("library chatter")
    err = capsys.readouterr().err
    assert err == "WARNING workbench.test: it failed: twice\n"


@pytest.mark.usefixtures("restore_logging")
def test_debugging_shows_tracebacks(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKBENCH_DEBUG", "1")
    configure_logging()
    try:
        raise ValueError("inner")
    except ValueError:
        logging.getLogger("workbench.test").debug("swallowed", exc_info=True)
    err = capsys.readouterr().err
    assert "DEBUG workbench.test: swallowed" in err
    assert "Traceback" in err
    assert "ValueError: inner" in err


def test_a_broken_plugin_is_logged_at_debug_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    ep = EntryPoint("broken", "workbench_no_such_module_xyz:Pass", "workbench.passes")
    with caplog.at_level(logging.DEBUG, logger="workbench.core.passes.registry"):
        info = load_entry_point(ep)
    assert info.error.startswith("ModuleNotFoundError")  # the fallback still happens
    (record,) = [r for r in caplog.records if r.name == "workbench.core.passes.registry"]
    assert record.levelno == logging.DEBUG
    assert record.exc_info is not None
    assert record.exc_info[0] is ModuleNotFoundError
