"""``python -m sqhw.bench``: every speed, area and throughput figure, each printed as a ratio
against a baseline measured in the same run (never a timed unit test)."""

from .core import Row, best_of, print_rows

__all__ = ["Row", "best_of", "print_rows"]
