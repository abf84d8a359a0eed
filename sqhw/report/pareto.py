"""Pareto frontier of a set of points."""

from collections.abc import Sequence

__all__ = ["pareto_front"]


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the points no other point dominates, in input order.

    Point ``j`` dominates point ``i`` when it is at least as good in every objective and
    strictly better in one. Equal points do not dominate each other (both stay).

    Parameters
    ----------
    points : sequence of sequences of float
        One tuple of objective values per point, all of the same length.
    maximize : sequence of bool
        Per objective: True if larger is better, False if smaller is better.

    Raises
    ------
    ValueError
        On a point of the wrong length or a value that is not a finite number.
    """
    sign = [1.0 if m else -1.0 for m in maximize]
    scored = []
    for i, p in enumerate(points):
        if len(p) != len(sign):
            raise ValueError(f"point {i} has {len(p)} values, expected {len(sign)}")
        for v in p:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v \
                    or v in (float("inf"), float("-inf")):
                raise ValueError(f"point {i} has a value that is not a finite number: {v!r}")
        scored.append([s * v for s, v in zip(sign, p, strict=True)])
    front = []
    for i, a in enumerate(scored):
        dominated = any(all(b_ >= a_ for a_, b_ in zip(a, b, strict=True)) and b != a
                        for j, b in enumerate(scored) if j != i)
        if not dominated:
            front.append(i)
    return front
