"""The memory ceiling of a job: how much it may use, how much a process uses, and the error.

The ceiling defaults to `DEFAULT_SHARE` of the machine's memory; Settings ▸ Memory ceiling
and the CLI's `--max-memory` (``10G``, ``512M``, ``60%``) change it. A child process's use
is its *private* memory (what it allocated or copied since the fork, from Linux's
`/proc/PID/smaps_rollup`), so the models the window already holds, which the child shares
copy-on-write, do not count against the job.
"""

from __future__ import annotations

import logging
import os
import re

from workbench.core.errors import InvalidParameterError, WorkbenchError

log = logging.getLogger(__name__)

DEFAULT_SHARE = 0.6
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_MIN_LIMIT = 64 << 20


class MemoryLimitError(WorkbenchError):
    """A job went past its memory ceiling and was stopped; nothing was changed."""

    def __init__(self, job: str, peak: int, limit: int, hint: str = "") -> None:
        self.job, self.peak, self.limit = job, peak, limit
        super().__init__(
            f"{job} was stopped: it used {human(peak)}, past the memory ceiling of "
            f"{human(limit)}. Nothing was changed. "
            + (hint or "Try a smaller input, raise the ceiling (Settings ▸ Memory ceiling, "
                       "or --max-memory), or a machine with more memory."))


def machine_memory() -> int:
    """The machine's physical memory in bytes (0 when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 0


def default_limit() -> int:
    """`DEFAULT_SHARE` of the machine's memory (4 GiB when it cannot be read)."""
    total = machine_memory()
    return int(total * DEFAULT_SHARE) if total else 4 << 30


def effective_limit(setting: int | None) -> int:
    """The ceiling in bytes for a setting of `setting` bytes (0 or None: the default)."""
    return int(setting) if setting else default_limit()


def parse_memory(text: str) -> int:
    """Bytes from ``10G``, ``512M``, ``1.5GB``, ``2048`` (bytes) or ``60%`` (of the machine)."""
    share = _SHARE.match(text)
    if share:
        value = float(share.group(1))
        if not 0 < value <= 100:
            raise InvalidParameterError(f"A memory share must be in (0, 100] %, not {text}.")
        return int(machine_memory() * value / 100) or default_limit()
    size = _SIZE.match(text)
    if not size:
        raise InvalidParameterError(
            f"Cannot read the memory size {text!r}: write it as 10G, 512M or 60%.")
    n = int(float(size.group(1)) * _UNITS[size.group(2).upper()])
    if n < _MIN_LIMIT:
        raise InvalidParameterError(f"A memory ceiling of {human(n)} is too small to run a "
                                    f"job; give at least {human(_MIN_LIMIT)}.")
    return n


def human(n: float) -> str:
    """1.5 GB, 320 MB, 2.01 GB: three significant digits, binary units."""
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"
    return f"{int(n)} B"


def private_memory(pid: int) -> int | None:
    """Bytes of memory process `pid` holds for itself (private resident pages), or None
    when it cannot be read (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            text = f.read()
    except OSError:
        return _resident(pid)
    total = 0
    for line in text.splitlines():
        if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Swap:")):
            total += int(line.split()[1]) * 1024
    return total


def _resident(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
        return int(fields[1]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, IndexError, ValueError):
        return None


def virtual_size(pid: int) -> int | None:
    """Bytes of address space process `pid` maps, or None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[0]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, IndexError, ValueError):
        return None
