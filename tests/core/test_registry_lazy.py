"""Pass discovery reads entry-point metadata; a pass's module is imported when asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PICK = """
import sys
from workbench.core.passes.registry import discover

def passes_imported():
    return sorted(m for m in sys.modules if m.startswith('workbench.core.passes.')
                  and m.rsplit('.', 1)[1] not in ('base', 'registry', 'plugin_path'))

registry = discover()
entries = registry.entries
print('ENTRIES', len(entries), all(p.pending for p in entries), registry.loaded)
print('BEFORE', passes_imported() or '-', 'torch' in sys.modules)
magnitude = registry.get('prune.magnitude')
print('PICKED', type(magnitude).__name__, passes_imported())
names = {p.entry_point for p in registry.entries if not p.pending}
print('LOADED', sorted(names))
everything = registry.passes  # the CLI listing and the plugins dialog load every entry
print('ALL', registry.loaded, 'quantize.kmeans' in everything, len(registry.plugins))
"""


def test_discovery_imports_no_pass_and_get_imports_only_the_picked_one() -> None:
    done = subprocess.run([sys.executable, "-c", PICK], capture_output=True, text=True,
                          cwd=REPO, check=True, timeout=300)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    count, all_pending, loaded = lines["ENTRIES"].split()
    assert int(count) >= 12
    assert all_pending == "True"
    assert loaded == "False"
    assert lines["BEFORE"] == "- False"  # neither a pass module nor torch yet
    assert lines["PICKED"] == ("MagnitudePrune "
                               "['workbench.core.passes.prune_unstructured']")
    assert lines["LOADED"] == "['prune_magnitude']"  # its module's sibling stays metadata
    assert lines["ALL"] == f"True True {count}"


def test_a_picked_builtin_is_the_same_class_as_after_loading_everything() -> None:
    from workbench.core.passes.registry import discover

    registry = discover(refresh=True)
    picked = type(registry.get("prune.structured"))
    assert registry.passes["prune.structured"] is picked
    assert not registry.failed or all(p.error for p in registry.failed)
