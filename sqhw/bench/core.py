"""Shared pieces of the benchmark: a result row, a timer, the table printer."""

import time
from dataclasses import dataclass

__all__ = ["Row", "best_of", "print_rows"]


@dataclass
class Row:
    """One figure: ``value`` against ``baseline`` (same unit, same run).

    ``target`` is the ratio goal; ``higher`` says whether a larger ratio is better.
    """

    name: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    target: float | None = None
    higher: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        ok = self.ratio >= self.target if self.higher else self.ratio <= self.target
        sign = ">=" if self.higher else "<="
        return f"{'met' if ok else 'MISSED'} ({sign} {self.target:g}x)"


def best_of(fn, repeat: int = 3, setup=None) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs; ``setup()`` runs untimed before each
    and its result is passed to ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn(arg) if setup else fn()
        best = min(best, time.perf_counter() - t0)
    return best


def print_rows(rows: list[Row]) -> None:
    """Print ``rows`` as ratio lines (under the section heading the caller printed)."""
    w = max(len(r.name) for r in rows)
    for r in rows:
        print(f"  {r.name:<{w}}  {r.value:10.4g} {r.unit:<6} vs {r.baseline_name} "
              f"{r.baseline:.4g} {r.unit}: ratio {r.ratio:6.3f}x  {r.verdict}")
