"""Channels tied across a concatenation: prune them in lockstep, as channel groups.

A Ghost module (GhostNet) concatenates a convolution's output `x1` with a depthwise
convolution of it, `cheap(x1)`: channel `k` of both halves comes from the same filter, so
removing output channel `k` of the concatenation removes `k + C/2` too. Torch-Pruning
follows that tie when it builds a group, but ranks the group's channels one by one; the
channels it picks then drag their partners along, more than the ratio asks, and the group is
dropped or over-pruned. Declaring the tie as channel groups (as for grouped convolutions and
attention heads) makes Torch-Pruning rank whole tuples `{k, k + C/g, …}` and keep the halves
equal.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def tie_channel_groups(pruner: Any) -> dict[str, int]:
    """Declare, on `pruner`, every group root whose channels are tied in equal segments.

    For each group root, pruning its channel 0 is traced through the dependency graph; when
    that comes back to the root as channels `{0, C/g, 2C/g, …}`, the root gets `g` channel
    groups. Returns root name -> g for the roots that got one.
    """
    graph = pruner.DG
    tied: dict[str, int] = {}
    for group in graph.get_all_groups(ignored_layers=pruner.ignored_layers,
                                      root_module_types=pruner.root_module_types):
        dep = group[0].dep
        root, handler = dep.target.module, dep.handler
        if root in pruner.out_channel_groups or not graph.is_out_channel_pruning_fn(handler):
            continue
        channels = graph.get_out_channels(root)
        if not channels or channels < 2:
            continue
        probe = graph.get_pruning_group(root, handler, idxs=[0])
        back = sorted({int(i) for d, idxs in probe if d.target.module is root
                       and d.handler == handler for i in idxs})
        g = len(back)
        if g > 1 and channels % g == 0 and back == [k * (channels // g) for k in range(g)]:
            pruner.out_channel_groups[root] = g
            tied[graph._module2name.get(root, str(root))] = g
    if tied:
        log.debug("channels tied in lockstep: %s", tied)
    return tied
