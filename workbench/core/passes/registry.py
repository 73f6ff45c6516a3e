"""Pass discovery through the `workbench.passes` entry-point group.

Built-in passes register there too. A plugin that fails to import is listed as failed with
its error and never takes the app down (compare npe2's `PluginManifest.discover`).

Discovery reads the entry-point metadata only (names, origin): a pass's module, and torch
with it, is imported when the pass is asked for (`Registry.get`), or when everything is
(`Registry.plugins`, `passes`, `failed`, `load_all`, which the window runs in a worker after
its first paint).
"""

from __future__ import annotations

import inspect
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from workbench.core.errors import WorkbenchError
from workbench.core.passes.base import Pass
from workbench.core.passes.plugin_path import add_plugin_dirs

log = logging.getLogger(__name__)

GROUP = "workbench.passes"


@dataclass(frozen=True)
class PluginInfo:
    """One entry point: the pass it provides, or the error it failed with."""

    entry_point: str
    origin: str  # distribution name and version
    pass_cls: type[Pass] | None = None
    error: str | None = None
    source: EntryPoint | None = field(default=None, compare=False)  # set while not imported

    @property
    def ok(self) -> bool:
        return self.pass_cls is not None

    @property
    def pending(self) -> bool:
        """Known from its metadata only: its module is not imported yet."""
        return self.source is not None

    @property
    def builtin(self) -> bool:
        return self.origin.startswith("workbench ")


class Registry:
    """Every discovered pass by name, plus the entry points that failed.

    Entries start as metadata (`PluginInfo.pending`); they are imported on demand, at most
    once, under a lock (a worker may load everything while the GUI thread asks for one).
    """

    def __init__(self, plugins: list[PluginInfo] | None = None) -> None:
        self._plugins = list(plugins or [])
        self._lock = threading.RLock()

    @property
    def entries(self) -> list[PluginInfo]:
        """Every entry point as known now, without importing anything."""
        return list(self._plugins)

    @property
    def loaded(self) -> bool:
        """Whether every entry point has been imported (or has failed)."""
        return not any(p.pending for p in self._plugins)

    def load_all(self) -> Registry:
        """Import every pending entry point (once); a later duplicate name is refused."""
        with self._lock:
            if not self.loaded:
                infos = [load_entry_point(p.source) if p.source is not None else p
                         for p in self._plugins]
                self._plugins = refuse_duplicates(infos)
        return self

    @property
    def plugins(self) -> list[PluginInfo]:
        return list(self.load_all()._plugins)

    @property
    def passes(self) -> dict[str, type[Pass]]:
        return {p.pass_cls.name: p.pass_cls for p in self.plugins if p.pass_cls is not None}

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.ok]

    def _load_one(self, name: str) -> type[Pass] | None:
        """A built-in pass by its name, importing only its own module: built-ins sort first
        and never share a name, so no other entry point can take it."""
        with self._lock:
            key = name.replace(".", "_")
            for i, info in enumerate(self._plugins):
                if info.entry_point == key and info.source is not None and info.builtin:
                    loaded = load_entry_point(info.source)
                    self._plugins[i] = loaded
                    if loaded.pass_cls is not None and loaded.pass_cls.name == name:
                        return loaded.pass_cls
                    return None
                if info.entry_point == key and info.pass_cls is not None \
                        and info.pass_cls.name == name:
                    return info.pass_cls
        return None

    def get(self, name: str) -> Pass:
        cls = self._load_one(name) or self.passes.get(name)
        if cls is None:
            failed = next((p for p in self.failed if p.entry_point == name.replace(".", "_")),
                          None)
            if failed is not None:
                raise WorkbenchError(f"Pass '{name}' failed to load: {failed.error}")
            raise WorkbenchError(
                f"Unknown pass '{name}'. Available: {', '.join(sorted(self.passes))}.")
        return cls()

    def by_category(self) -> dict[str, list[type[Pass]]]:
        out: dict[str, list[type[Pass]]] = {}
        for cls in sorted(self.passes.values(), key=lambda c: c.name):
            out.setdefault(cls.category, []).append(cls)
        return out


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown"


def load_entry_point(ep: EntryPoint) -> PluginInfo:
    """Load one entry point into a PluginInfo; never raises."""
    origin = _origin(ep)
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not break the app
        log.debug("plugin %s failed to load", ep.name, exc_info=True)
        return PluginInfo(ep.name, origin, error=f"{type(exc).__name__}: {exc}")
    if not (inspect.isclass(obj) and issubclass(obj, Pass)):
        return PluginInfo(ep.name, origin, error=f"{ep.value} is not a workbench Pass class")
    if not obj.name:
        return PluginInfo(ep.name, origin, error=f"{ep.value} has no pass name")
    return PluginInfo(ep.name, origin, pass_cls=obj)


_cache: Registry | None = None


def discover(refresh: bool = False) -> Registry:
    """All passes registered in the `workbench.passes` group (cached), as metadata: each
    is imported when first needed."""
    global _cache
    if _cache is None or refresh:
        add_plugin_dirs()  # a bundled app's plugin folders (plugin_path.py)
        eps = entry_points(group=GROUP)
        # one origin per distribution: each reads and parses its METADATA file
        origins = {id(getattr(ep, "dist", None)): _origin(ep) for ep in eps}
        infos = [PluginInfo(ep.name, origins[id(getattr(ep, "dist", None))], source=ep)
                 for ep in eps]
        _cache = Registry(sorted(infos, key=lambda p: (not p.builtin, p.entry_point)))
    return _cache


def refuse_duplicates(infos: list[PluginInfo]) -> list[PluginInfo]:
    """The first pass of each name wins (built-ins sort first); a later one with the same
    name is listed as failed, so a plugin can never shadow another pass."""
    seen: dict[str, PluginInfo] = {}
    out = []
    for info in infos:
        cls = info.pass_cls
        if cls is not None and cls.name in seen:
            first = seen[cls.name]
            info = PluginInfo(info.entry_point, info.origin,
                              error=f"pass name '{cls.name}' is already taken by "
                                    f"{first.entry_point} ({first.origin}); refused")
        elif cls is not None:
            seen[cls.name] = info
        out.append(info)
    return out
