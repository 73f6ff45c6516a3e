"""Projects: the Session on disk, saved as it changes.

A project is a folder::

    project.db    SQLite (WAL): the variants, their results and the selection
    models/       each variant's model, named by the SHA-256 of its bytes (shared when equal)
    runs/         training checkpoints, one folder per run (recorded in the `runs` table)

ONNX variants are stored as their serialized ModelProto (`.onnx`), torch variants as a
`torch.export` program (`.pt2`, dynamic batch) or, when that fails, TorchScript (`.ts`);
never as a pickle, so a project handed to a colleague opens without trust, and every model
file is read back through `load_model` (a tampered `.pt2` is checked like any other).

`Project.attach(session)` writes the session and then commits every change of its
workspace at once, each in its own transaction. A model file is written atomically before
the row that names it, so a process killed at any point leaves a project that opens with
every variant whose addition had finished. `Project.load_into(session)` rebuilds the
variants with their ids, lineage, names, recipes, metadata and results. Each training run
is recorded when it starts and ended when it is committed (`begin_run`, `end_run`), so a run
still `running` at the next open was cut short (`interrupted_runs`, see `runs.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import numbers
import os
import re
import shutil
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from psygnal import Signal

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.session.runs import RUN_KINDS, RUN_STATUSES, RunRecord, record_of

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DB_NAME = "project.db"
MODELS_DIR = "models"
# Schema migrations: MIGRATIONS[n] turns a version-n database into a version n+1 one. Each
# runs in its own transaction with the version bump; `Project.open` applies them in order.
_RUNS = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    variant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    dataset TEXT NOT NULL,
    config TEXT NOT NULL,
    options TEXT NOT NULL,
    checkpoint_dir TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL
);
"""


def _add_runs(db: sqlite3.Connection) -> None:
    """Format 1 -> 2: the `runs` table (training runs and their checkpoint folders)."""
    db.execute(_RUNS)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _add_runs}

_MODEL_FILE = re.compile(r"[0-9a-f]{64}\.(?:onnx|pt2|ts)")
_TABLES = ("meta", "variants", "results", "settings", "runs")
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE variants (
    id TEXT PRIMARY KEY,
    parent TEXT,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    backend TEXT NOT NULL,
    format TEXT NOT NULL,
    source TEXT NOT NULL,
    inputs TEXT NOT NULL,
    recipe TEXT NOT NULL,
    metadata TEXT NOT NULL,
    model_file TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE results (
    variant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (variant_id, key)
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
""" + _RUNS
_DROP = object()  # a value with no JSON form
_MAX_DEPTH = 64


class ProjectError(WorkbenchError):
    """A project folder cannot be created, opened, read or written."""


# JSON --------------------------------------------------------------------------------------
def _plain(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON data (objects through `to_json()`), or `_DROP`."""
    if depth > _MAX_DEPTH:
        return _DROP
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in value]
        return _DROP if any(v is _DROP for v in items) else items
    if isinstance(value, dict):
        if not all(isinstance(k, (str, int, float, bool)) for k in value):
            return _DROP
        out = {k: _plain(v, depth + 1) for k, v in value.items()}
        return _DROP if any(v is _DROP for v in out.values()) else out
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        try:
            return _plain(to_json(), depth + 1)
        except Exception as exc:
            log.debug("%s.to_json failed: %s", type(value).__name__, exc)
    return _DROP


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _metadata_json(metadata: dict[str, Any]) -> str:
    kept = {}
    for key, value in metadata.items():
        plain = _plain(value)
        if plain is _DROP or not isinstance(key, str):
            log.debug("metadata %r is not JSON: not saved", key)
            continue
        kept[key] = plain
    return _dumps(kept)


def _result_row(value: Any) -> tuple[str, str] | None:
    """(kind, JSON) of a result: kind names the class of an object stored by `to_json`."""
    plain = _plain(value)
    if plain is _DROP:
        return None
    kind = type(value).__name__ if callable(getattr(value, "to_json", None)) else ""
    return kind, _dumps(plain)


def _pass_report(data: dict[str, Any]) -> Any:
    from workbench.core.passes.base import PassReport

    return PassReport(data["pass"], data["params"], data["before"], data["after"],
                      data["seconds"], data.get("warnings", []), data.get("details", {}))


def _bench_result(data: dict[str, Any]) -> Any:
    from workbench.core.measure.benchmark import BenchRecord, BenchResult

    names = {f.name for f in dataclasses.fields(BenchRecord)}
    records = [BenchRecord(**{k: v for k, v in r.items() if k in names})
               for r in data["records"]]
    return BenchResult(data["variant"], records, data["config"], data["machine"],
                       data["versions"], data.get("stopped", False), data.get("notes", []))


# Results stored through `to_json` that are rebuilt on load (others come back as dicts).
_REBUILD: dict[str, Callable[[dict[str, Any]], Any]] = {
    "PassReport": _pass_report, "BenchResult": _bench_result}


def _result_value(kind: str, text: str) -> Any:
    value = json.loads(text)
    rebuild = _REBUILD.get(kind)
    if rebuild is not None and isinstance(value, dict):
        try:
            return rebuild(value)
        except Exception as exc:  # an older or hand-edited layout: keep the data as it is
            log.debug("cannot rebuild a %s result: %s", kind, exc)
    return value


def _inputs_json(inputs: tuple[InputSpec, ...]) -> str:
    return _dumps([dataclasses.asdict(spec) for spec in inputs])


def _inputs(text: str) -> tuple[InputSpec, ...]:
    from workbench.core.model.variant import check_input_shape

    return tuple(InputSpec(str(d["name"]), check_input_shape(list(d["shape"])),
                           str(d.get("dtype", "float32")), int(d.get("low", 0)),
                           int(d.get("high", 2)))
                 for d in json.loads(text))


# files -------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not possible on every platform
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reserve_ids(ids: list[str]) -> None:
    """Make new variant ids start after the loaded `vN` ones (they must never collide)."""
    from workbench.core.model.variant import reserve_variant_ids

    top = max((int(m[1]) for i in ids if (m := re.fullmatch(r"v(\d{1,18})", i))), default=0)
    reserve_variant_ids(top)


def _db_uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _connect(uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                         timeout=10.0)
    db.row_factory = sqlite3.Row
    return db


def _set_pragmas(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")


# the project -------------------------------------------------------------------------------
class Project:
    """A project folder; `attach` keeps it equal to a session's workspace."""

    # (variant id or "", message): an autosave that failed; the change stays in the session
    save_failed = Signal(str, str)

    def __init__(self, folder: Path, db: sqlite3.Connection) -> None:
        """Use `Project.create` or `Project.open`."""
        self.folder = folder
        self.models = folder / MODELS_DIR
        self._db = db
        self._lock = threading.RLock()
        self._files: dict[str, tuple[weakref.ref[Variant], str]] = {}  # id -> model file
        self._session: Any = None  # the attached session
        self._disconnect: list[Callable[[], None]] = []
        self._synced: weakref.ref[Any] | None = None  # the session loaded from this project
        self._running: set[str] = set()  # runs this process began and has not ended

    # opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | os.PathLike[str]) -> Project:
        """A new, empty project in `folder` (created, or an existing empty folder)."""
        from workbench.core.fileio import atomic_path

        folder = Path(folder).expanduser()
        if folder.exists():
            if not folder.is_dir():
                raise ProjectError(f"{folder} is a file; a project needs a folder.")
            if (folder / DB_NAME).exists():
                raise ProjectError(f"{folder} already holds a project; open it instead.")
            models = folder / MODELS_DIR
            if any(p != models or any(p.iterdir()) for p in folder.iterdir()):
                raise ProjectError(f"{folder} is not empty; choose a new or empty folder "
                                   "for the project.")
        try:
            (folder / MODELS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"Cannot create the project folder {folder}: "
                               f"{exc.strerror or first_line(exc)}.") from exc
        # the database is built under a temporary name: a crash never leaves half a project
        with atomic_path(folder / DB_NAME) as tmp:
            db = _connect(_db_uri(tmp, "rw"))
            try:
                _set_pragmas(db)
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('created', ?)", (str(time.time()),))
            finally:
                db.close()
            _fsync_file(tmp)
        _fsync_dir(folder)
        log.info("created project %s", folder)
        return cls.open(folder)

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open the project in `folder`, migrating an older schema to the current one."""
        folder = Path(folder).expanduser()
        path = folder / DB_NAME
        if not folder.is_dir() or not path.is_file():
            raise ProjectError(f"{folder} is not a Workbench project (it has no {DB_NAME}).")
        try:
            db = _connect(_db_uri(path, "rw"))
        except sqlite3.Error as exc:
            raise ProjectError(f"Cannot open the project {folder}: {first_line(exc)}.") from exc
        try:
            version = cls._check(db, folder)
            cls._migrate(db, folder, version)
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in _TABLES if t not in tables]
            if missing:
                raise ProjectError(f"The project database in {folder} is incomplete (no "
                                   f"{', '.join(missing)} table).")
            _set_pragmas(db)
        except BaseException:
            db.close()
            raise
        return cls(folder, db)

    @staticmethod
    def _check(db: sqlite3.Connection, folder: Path) -> int:
        """The schema version of a readable project database, or a ProjectError."""
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise ProjectError(f"The project database in {folder} is corrupt ({ok}).")
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" not in tables:
                raise ProjectError(f"{folder} is not a Workbench project ({DB_NAME} holds "
                                   "no project data).")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ProjectError(f"The project database in {folder} is corrupt or not a "
                               f"database: {first_line(exc)}.") from exc
        try:
            version = int(row[0])
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"The project database in {folder} has no valid schema "
                               "version.") from exc
        if version > SCHEMA_VERSION:
            raise ProjectError(f"{folder} was saved by a newer Workbench (project format "
                               f"{version}; this one reads up to {SCHEMA_VERSION}): update "
                               "Workbench to open it.")
        return version

    @staticmethod
    def _migrate(db: sqlite3.Connection, folder: Path, version: int) -> None:
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise ProjectError(f"{folder} uses project format {version}, which this "
                                   "Workbench cannot upgrade.")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    step(db)
                    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                               (str(version + 1),))
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise ProjectError(f"Cannot upgrade {folder} from project format {version}: "
                                   f"{first_line(exc)}.") from exc
            log.info("migrated project %s to format %d", folder, version + 1)
            version += 1

    def close(self) -> None:
        """Detach and close the database (its WAL is folded back into project.db)."""
        self.detach()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                   ).fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise ProjectError(f"Cannot write the project {self.folder}: "
                                   f"{first_line(exc)}.") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise ProjectError(f"Cannot write the project {self.folder}: "
                                   f"{first_line(exc)}.") from exc

    # saving ------------------------------------------------------------------------------
    def attach(self, session: Any) -> None:
        """Write every variant of `session`, then save each change of its workspace at once.

        The project must be empty or have been loaded into this session (`load_into`): it
        then becomes a copy of the session (variants no longer in it are dropped).
        """
        if self._session is not None:
            raise ProjectError(f"The project {self.folder} is already attached to a session.")
        workspace = session.workspace
        synced = self._synced() if self._synced is not None else None
        with self._lock:
            count = self._db.execute("SELECT COUNT(*) FROM variants").fetchone()[0]
        if count and synced is not session:
            raise ProjectError(f"The project {self.folder} already holds variants; open it "
                               "into this session first, or save to a new folder.")
        entries = workspace.entries()
        files = {e.id: self._model_file(e.analysis.variant) for e in entries}  # may raise
        with self._transaction() as db:
            keep = {e.id for e in entries}
            for row in db.execute("SELECT id FROM variants").fetchall():
                if row["id"] not in keep:
                    db.execute("DELETE FROM variants WHERE id = ?", (row["id"],))
                    db.execute("DELETE FROM results WHERE variant_id = ?", (row["id"],))
            for position, entry in enumerate(entries):
                self._write_row(db, entry, files[entry.id], position)
                self._write_results(db, entry)
            self._write_selection(db, workspace.selected.id if workspace.selected else None)
        self._session = session
        self._synced = weakref.ref(session)
        self._listen(workspace)
        self.collect_garbage()

    def detach(self) -> None:
        """Stop saving the attached session's changes."""
        for disconnect in self._disconnect:
            disconnect()
        self._disconnect.clear()
        self._session = None

    def _listen(self, workspace: Any) -> None:
        # plain closures: psygnal holds them strongly, so autosave lives as long as the
        # workspace even if the caller drops its reference to the project
        project = self

        def on_added(variant_id: str) -> None:
            project._autosave(variant_id, project._save_added, workspace, variant_id)

        def on_removed(variant_id: str) -> None:
            project._autosave(variant_id, project._save_removed, variant_id)

        def on_renamed(variant_id: str, name: str) -> None:
            project._autosave(variant_id, project._save_renamed, variant_id, name)

        def on_results(variant_id: str) -> None:
            project._autosave(variant_id, project._save_results, workspace, variant_id)

        def on_selection(variant_id: Any) -> None:
            project._autosave("", project._save_selection, variant_id)

        for signal, slot in ((workspace.added, on_added), (workspace.removed, on_removed),
                             (workspace.renamed, on_renamed),
                             (workspace.results_changed, on_results),
                             (workspace.selection_changed, on_selection)):
            signal.connect(slot)
            self._disconnect.append(functools.partial(signal.disconnect, slot))

    def _autosave(self, variant_id: str, save: Callable[..., None], *args: Any) -> None:
        """Run one save; a failure is logged and reported by `save_failed`, never raised
        into the workspace's signal (that would leave its edit half done)."""
        try:
            save(*args)
        except Exception as exc:
            message = str(exc) if isinstance(exc, WorkbenchError) else (
                f"Cannot save to the project {self.folder}: {first_line(exc)}.")
            log.warning("autosave failed: %s", message)
            self.save_failed.emit(variant_id, message)

    def _save_added(self, workspace: Any, variant_id: str) -> None:
        entry = workspace.get(variant_id)
        name = self._model_file(entry.analysis.variant)
        with self._transaction() as db:
            position = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM variants"
                                  ).fetchone()[0]
            self._write_row(db, entry, name, position)
            self._write_results(db, entry)

    def _save_removed(self, variant_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM variants WHERE id = ?", (variant_id,))
            db.execute("DELETE FROM results WHERE variant_id = ?", (variant_id,))

    def _save_renamed(self, variant_id: str, name: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE variants SET name = ? WHERE id = ?", (name, variant_id))

    def _save_results(self, workspace: Any, variant_id: str) -> None:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM variants WHERE id = ?", (variant_id,)).fetchone():
                self._write_results(db, workspace.get(variant_id))

    def _save_selection(self, variant_id: str | None) -> None:
        with self._transaction() as db:
            self._write_selection(db, variant_id)

    @staticmethod
    def _write_row(db: sqlite3.Connection, entry: Any, model_file: str, position: int) -> None:
        v: Variant = entry.analysis.variant
        db.execute(
            "INSERT INTO variants (id, parent, name, position, backend, format, source, "
            "inputs, recipe, metadata, model_file, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "parent = excluded.parent, name = excluded.name, position = excluded.position, "
            "backend = excluded.backend, format = excluded.format, source = excluded.source, "
            "inputs = excluded.inputs, recipe = excluded.recipe, "
            "metadata = excluded.metadata, model_file = excluded.model_file",
            (v.id, v.parent, entry.name, position, v.backend, v.format, v.source,
             _inputs_json(v.inputs), json.dumps(list(v.recipe), default=str),
             _metadata_json(v.metadata), model_file, time.time()))

    @staticmethod
    def _write_results(db: sqlite3.Connection, entry: Any) -> None:
        db.execute("DELETE FROM results WHERE variant_id = ?", (entry.id,))
        for key, value in entry.results.items():
            row = _result_row(value)
            if row is None:
                log.debug("result %r of %s is not JSON: not saved", key, entry.id)
                continue
            db.execute("INSERT INTO results VALUES (?, ?, ?, ?)", (entry.id, str(key), *row))

    @staticmethod
    def _write_selection(db: sqlite3.Connection, variant_id: str | None) -> None:
        db.execute("INSERT OR REPLACE INTO settings VALUES ('selected', ?)",
                   (_dumps(variant_id),))

    # model files -------------------------------------------------------------------------
    def _model_file(self, variant: Variant) -> str:
        """Write `variant`'s model to models/ (unless there already); return its file name."""
        cached = self._files.get(variant.id)
        if cached and cached[0]() is variant and (self.models / cached[1]).is_file():
            return cached[1]
        if variant.backend == "onnx":
            name = self._store_onnx(variant)
        elif variant.backend == "torch":
            name = self._store_torch(variant)
        else:
            raise ProjectError(f"{variant.name} has an unknown backend ({variant.backend}); "
                               "it cannot be saved.")
        self._files[variant.id] = (weakref.ref(variant), name)
        return name

    def _store_onnx(self, variant: Variant) -> str:
        from workbench.core.fileio import atomic_path

        try:
            data = variant.model.SerializeToString()
        except Exception as exc:  # over 2 GB, or not a ModelProto
            raise ProjectError(f"{variant.name} cannot be serialized as ONNX: "
                               f"{first_line(exc)}") from exc
        name = f"{hashlib.sha256(data).hexdigest()}.onnx"
        target = self.models / name
        if not target.is_file():
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
                _fsync_file(tmp)
            _fsync_dir(self.models)
        return name

    def _store_torch(self, variant: Variant) -> str:
        from workbench.core.fileio import atomic_path, temp_dir
        from workbench.core.model.export import export_variant

        with temp_dir("project") as folder:
            written: Path | None = None
            reasons = []
            for fmt, ext in (("pt2", ".pt2"), ("torchscript", ".ts")):
                path = Path(folder) / f"model{ext}"
                try:
                    export_variant(variant, path, fmt)
                except Exception as exc:
                    reasons.append(first_line(exc))
                    log.debug("%s cannot be saved as %s: %s", variant.name, fmt, exc)
                    continue
                written = path
                break
            if written is None:
                raise ProjectError(
                    f"{variant.name} cannot be saved in the project: neither torch.export nor "
                    f"TorchScript can capture it ({reasons[-1]}).")
            name = f"{_sha256(written)}{written.suffix}"
            target = self.models / name
            if not target.is_file():
                with atomic_path(target) as tmp:
                    shutil.copyfile(written, tmp)
                    _fsync_file(tmp)
                _fsync_dir(self.models)
        return name

    def collect_garbage(self) -> list[str]:
        """Remove the model files no variant names any more; return their names."""
        with self._lock:
            used = {r[0] for r in self._db.execute("SELECT model_file FROM variants")}
        removed = []
        for path in self.models.iterdir() if self.models.is_dir() else ():
            if _MODEL_FILE.fullmatch(path.name) and path.name not in used:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path.name)
        if removed:
            log.debug("removed %d unused model file(s) from %s", len(removed), self.folder)
        return removed

    # training runs -----------------------------------------------------------------------
    def begin_run(self, variant_id: str, kind: str, dataset: str, config: dict[str, Any],
                  checkpoint_dir: str | os.PathLike[str], options: dict[str, Any] | None = None,
                  run_id: str | None = None) -> str:
        """Record a training run as `running` (a new one, or `run_id` again); its id."""
        import uuid

        if kind not in RUN_KINDS:
            raise ProjectError(f"Unknown kind of training run {kind!r}.")
        folder = Path(checkpoint_dir)
        with contextlib.suppress(ValueError):  # inside the project: stored relative
            folder = folder.resolve().relative_to(self.folder.resolve())
        config = {**config, "checkpoint_dir": None, "resume": False}
        run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL) "
                "ON CONFLICT(id) DO UPDATE SET status = 'running', ended = NULL",
                (run_id, variant_id, kind, dataset, _dumps(_plain(config)),
                 _dumps(_plain(options or {})), str(folder), time.time()))
        self._running.add(run_id)
        return run_id

    def end_run(self, run_id: str, status: str) -> None:
        """Mark a run `finished`, `stopped` or `failed`."""
        if status not in RUN_STATUSES[1:]:
            raise ProjectError(f"A run ends finished, stopped or failed, not {status!r}.")
        with self._transaction() as db:
            db.execute("UPDATE runs SET status = ?, ended = ? WHERE id = ?",
                       (status, time.time(), run_id))
        self._running.discard(run_id)

    def runs(self) -> list[RunRecord]:
        """Every recorded training run, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs ORDER BY started, rowid").fetchall()
        records = []
        for row in rows:
            try:
                records.append(record_of(dict(row), self.folder))
            except (ValueError, TypeError) as exc:  # a hand-edited row: skipped
                log.debug("run %s is damaged: %s", row["id"], exc)
        return records

    def run(self, run_id: str) -> RunRecord:
        """The RunRecord `run_id`, or a ProjectError."""
        for record in self.runs():
            if record.id == run_id:
                return record
        raise ProjectError(f"The project {self.folder} has no training run {run_id!r}.")

    def run_in(self, checkpoint_dir: str | os.PathLike[str]) -> RunRecord | None:
        """The latest run whose checkpoints are in `checkpoint_dir`, or None."""
        target = Path(checkpoint_dir).resolve()
        found = [r for r in self.runs() if r.checkpoint_dir.resolve() == target]
        return found[-1] if found else None

    def interrupted_runs(self) -> list[RunRecord]:
        """Runs still `running` that no job of this process runs: their process died."""
        return [r for r in self.runs() if r.status == "running" and r.id not in self._running]

    # loading -----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The saved variants, in order, as column dicts."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT * FROM variants ORDER BY position, rowid"
                                        ).fetchall()
            except sqlite3.Error as exc:
                raise ProjectError(f"Cannot read the project {self.folder}: "
                                   f"{first_line(exc)}.") from exc
        return [dict(r) for r in rows]

    def results(self, variant_id: str) -> dict[str, Any]:
        """The saved results of a variant."""
        with self._lock:
            rows = self._db.execute("SELECT key, kind, value FROM results WHERE variant_id = ?"
                                    " ORDER BY rowid", (variant_id,)).fetchall()
        return {r["key"]: _result_value(r["kind"], r["value"]) for r in rows}

    def result_keys(self, variant_id: str) -> list[str]:
        """The names of a variant's saved results."""
        with self._lock:
            rows = self._db.execute("SELECT key FROM results WHERE variant_id = ? ORDER BY key",
                                    (variant_id,)).fetchall()
        return [r[0] for r in rows]

    def selected(self) -> str | None:
        """The id selected when the project was last saved."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = 'selected'"
                                   ).fetchone()
        value = json.loads(row[0]) if row else None
        return value if isinstance(value, str) else None

    def load_into(self, session: Any) -> list[Any]:
        """Add every saved variant to `session` (parents first, no undo entries).

        Nothing is added unless every variant loads. Returns the new entries.
        """
        from workbench.core.graph.analysis import analyse
        from workbench.core.jobs import run_job

        workspace = session.workspace
        rows = _parents_first(self.rows())
        clash = [r["id"] for r in rows if r["id"] in workspace]
        if clash:
            raise ProjectError(f"This session already holds variant {clash[0]}; open the "
                               f"project {self.folder} in a new session.")
        loaded = []
        for row in rows:
            variant = self._load_variant(row)
            loaded.append((row, variant, run_job(analyse(variant))))
        entries = []
        for row, variant, analysis in loaded:
            entries.append(workspace.add(analysis, select=False, name=row["name"],
                                         results=self.results(row["id"])))
            self._files[variant.id] = (weakref.ref(variant), row["model_file"])
        _reserve_ids([row["id"] for row in rows])
        selected = self.selected()
        if selected in workspace:
            workspace.select(selected)
        self._synced = weakref.ref(session)
        log.info("loaded %d variant(s) from %s", len(entries), self.folder)
        return entries

    def _load_variant(self, row: dict[str, Any]) -> Variant:
        from workbench.core.model.loaders import load_model

        label = f"{row['name']} ({row['id']})"
        name = row["model_file"]
        if not isinstance(name, str) or not _MODEL_FILE.fullmatch(name):
            raise ProjectError(f"The project names an invalid model file for {label}.")
        path = self.models / name
        if not path.is_file():
            raise ProjectError(f"The model file of {label} is missing from {self.models}.")
        if _sha256(path) != name.split(".")[0]:
            raise ProjectError(f"The model file of {label} has been changed or damaged (its "
                               "content no longer matches its name).")
        try:
            variant = load_model(str(path))
        except WorkbenchError as exc:
            raise ProjectError(f"{label} cannot be loaded: {exc}") from exc
        if variant.backend != row["backend"]:
            raise ProjectError(f"The model file of {label} holds a {variant.backend} model, "
                               f"not {row['backend']}.")
        try:
            inputs = _inputs(row["inputs"])
            recipe = tuple(json.loads(row["recipe"]))
            metadata = json.loads(row["metadata"])
        except (ValueError, TypeError, KeyError, WorkbenchError) as exc:
            raise ProjectError(f"The saved description of {label} is damaged: "
                               f"{first_line(exc)}") from exc
        if not isinstance(metadata, dict) or not all(isinstance(s, dict) for s in recipe):
            raise ProjectError(f"The saved description of {label} is damaged.")
        inputs = _keep_fixed_batch(inputs, variant.inputs) if variant.format == "pt2" else inputs
        return dataclasses.replace(
            variant, id=row["id"], parent=row["parent"], name=row["name"],
            format=row["format"], source=row["source"], inputs=inputs, recipe=recipe,
            metadata=metadata)


def _keep_fixed_batch(saved: tuple[InputSpec, ...], program: tuple[InputSpec, ...]
                      ) -> tuple[InputSpec, ...]:
    """The saved specs, with the shape a `.pt2` program insists on: the loader declares a
    dynamic batch as 1, so any other batch is one torch.export fixed."""
    if len(saved) != len(program):
        return saved
    pairs = zip(saved, program, strict=True)
    return tuple(dataclasses.replace(s, shape=p.shape)
                 if len(s.shape) == len(p.shape) and p.shape and p.shape[0] != 1
                 and s.shape != p.shape else s for s, p in pairs)


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` in saved order, each after its parent (when its parent is saved too)."""
    ids = {r["id"] for r in rows}
    placed: set[str] = set()
    out: list[dict[str, Any]] = []
    pending = rows
    while pending:
        later = []
        for row in pending:
            if row["parent"] is None or row["parent"] not in ids or row["parent"] in placed:
                out.append(row)
                placed.add(row["id"])
            else:
                later.append(row)
        if len(later) == len(pending):  # a cycle (a hand-edited database): keep the order
            out.extend(later)
            break
        pending = later
    return out


def project_summary(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """What `workbench project ls PROJECT --json` prints: the format, every variant and the
    training runs a crash interrupted."""
    with Project.open(folder) as project:
        variants = []
        for row in project.rows():
            path = project.models / row["model_file"]
            valid = isinstance(row["model_file"], str) and _MODEL_FILE.fullmatch(
                row["model_file"])
            variants.append({
                "id": row["id"], "parent": row["parent"], "name": row["name"],
                "backend": row["backend"], "format": row["format"],
                "model_file": row["model_file"],
                "bytes": path.stat().st_size if valid and path.is_file() else None,
                "results": project.result_keys(row["id"]),
            })
        return {"project": str(project.folder), "schema_version": project.schema_version,
                "selected": project.selected(), "variants": variants,
                "interrupted_runs": [r.to_json() for r in project.interrupted_runs()]}


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Project", "ProjectError", "RunRecord",
           "project_summary"]
