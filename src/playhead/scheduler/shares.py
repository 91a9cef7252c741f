"""Fair shares of the workers between playing sessions, when they cannot all keep up."""

from __future__ import annotations

from collections.abc import Sequence


def fair_shares(loads: Sequence[float], capacity: float) -> list[float | None]:
    """Max-min fair split of ``capacity`` between ``loads`` (water-filling).

    None for a load that gets all it asks for; otherwise the share it is held to. Everyone is
    None when the loads fit, or when capacity is unknown (0 or less).
    """
    shares: list[float | None] = [None] * len(loads)
    if capacity <= 0 or sum(loads) <= capacity:
        return shares
    left = float(capacity)
    order = sorted(range(len(loads)), key=loads.__getitem__)
    for rank, i in enumerate(order):
        fair = left / (len(loads) - rank)
        if loads[i] <= fair:
            left -= loads[i]
        else:
            shares[i] = fair
            left -= fair
    return shares
