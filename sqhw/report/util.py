"""The utilization stage: the array's cycle schedule (datasheet §9), evaluated for a job.

The array accepts one activation bank per cycle (``R·b`` MACs) while a weight tile is
loaded; weight records stream in at one per cycle into two tile buffers, so tile ``t+1``
loads while tile ``t`` computes. Counting as ``verif/bulk``'s testbench does (from the cycle
of the first weight beat to the cycle of the last result, both included; no stalls on any
stream), for tile ``j`` with ``L = R·nb`` records and ``C = M·nb`` activation beats:

- load: starts after the previous load ends, and (from the third tile on) not before the
  cycle after tile ``j-2``'s last token frees its buffer;
- compute: starts 2 cycles after its last record (decode and write), and not before the
  cycle after tile ``j-1``'s last beat; it takes ``C`` cycles;
- the last result appears 4 cycles after the last activation beat.

``utilization = T·C / cycles``. This is a model of the documented schedule, not a
simulation; ``verif/report`` holds it cycle-exact against the bulk Verilator simulation
(``python -m sqhw.bench sim``'s measurement, 0.970 for the default configuration, is one of
those cases).
"""

from dataclasses import dataclass

__all__ = ["Workload", "schedule_cycles", "schedule_utilization", "DEFAULT_WORKLOAD",
           "MODEL_NAME"]

#: Names the model in the report (and versions it).
MODEL_NAME = "datasheet §9 schedule, no stalls (sqhw.report.util, v1)"

#: Result latency after the last activation beat of a token (datasheet §9).
LATENCY = 4
#: Cycles from a tile's last weight record to its first accepted activation beat.
LOAD_TO_FIRST = 2


@dataclass(frozen=True)
class Workload:
    """The job ``Y[M, N] = X[M, K] · W[K, N]`` the utilization is computed for."""

    m: int = 64
    k: int = 1024
    n: int = 128

    def __post_init__(self):
        for name in ("m", "k", "n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"workload {name} must be a positive integer, not {v!r}")


#: The job of ``python -m sqhw.bench sim`` (M = 64, K = 1024, N = 128).
DEFAULT_WORKLOAD = Workload()


def schedule_cycles(rows: int, bank_size: int, job: Workload) -> tuple[int, int]:
    """``(activation beats, cycles)`` of ``job`` on an array of ``rows`` rows.

    Raises
    ------
    ValueError
        If K is not a multiple of the bank size, or ``rows`` is not positive.
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, not {rows}")
    if job.k % bank_size:
        raise ValueError(f"workload K = {job.k} is not a multiple of the bank size "
                         f"{bank_size}")
    nb = job.k // bank_size
    tiles = -(-job.n // rows)
    load, beats = rows * nb, job.m * nb
    load_end: list[int] = []
    comp_end: list[int] = []
    for j in range(tiles):
        start = load_end[j - 1] + 1 if j else 1
        if j >= 2:
            start = max(start, comp_end[j - 2] + 1)
        load_end.append(start + load - 1)
        first = load_end[j] + LOAD_TO_FIRST
        if j:
            first = max(first, comp_end[j - 1] + 1)
        comp_end.append(first + beats - 1)
    return tiles * beats, comp_end[-1] + LATENCY


def schedule_utilization(rows: int, bank_size: int, job: Workload = DEFAULT_WORKLOAD) -> float:
    """Cycles with an activation beat accepted / all cycles of ``job`` (see the module
    docstring)."""
    beats, cycles = schedule_cycles(rows, bank_size, job)
    return beats / cycles
