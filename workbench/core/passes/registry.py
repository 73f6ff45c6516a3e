"""Pass discovery through the `workbench.passes` entry-point group.

Built-in passes register there too. A plugin that fails to import is listed as failed with
its error and never takes the app down (compare npe2's `PluginManifest.discover`).
"""

from __future__ import annotations

import inspect
import logging
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

    @property
    def ok(self) -> bool:
        return self.pass_cls is not None

    @property
    def builtin(self) -> bool:
        return self.origin.startswith("workbench ")


@dataclass
class Registry:
    """Every discovered pass by name, plus the entry points that failed."""

    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def passes(self) -> dict[str, type[Pass]]:
        return {p.pass_cls.name: p.pass_cls for p in self.plugins if p.pass_cls is not None}

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.ok]

    def get(self, name: str) -> Pass:
        cls = self.passes.get(name)
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
    """All passes registered in the `workbench.passes` group (cached)."""
    global _cache
    if _cache is None or refresh:
        add_plugin_dirs()  # a bundled app's plugin folders (plugin_path.py)
        infos = [load_entry_point(ep) for ep in entry_points(group=GROUP)]
        _cache = Registry(refuse_duplicates(
            sorted(infos, key=lambda p: (not p.builtin, p.entry_point))))
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
