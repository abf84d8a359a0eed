"""The utilization stage: the array's cycle schedule (datasheet §9, §10.7), evaluated for a job.

The array accepts one activation bank per cycle (``R·b`` MACs) while a weight tile is
loaded; weight records stream in at one per cycle into two tile buffers, so tile ``t+1``
loads while tile ``t`` computes. Counting as ``sqhw.sim``'s bulk testbench does (from the
cycle of the first weight beat to the cycle of the last result, both included; no stalls on
any stream), for tile ``j`` with ``L = cols·nb`` records and ``C = M·nb`` activation beats:

- load: starts after the previous load ends, and (from the third tile on) not before
  ``F`` cycles after the cycle of tile ``j-2``'s last activation beat (its buffer is then
  free);
- compute: starts ``D`` cycles after its last record (the record is registered, decoded
  and written, and the buffer marked loaded), and not before the cycle after tile
  ``j-1``'s last beat; it takes ``C`` cycles;
- the last result appears ``λ`` cycles after the last activation beat.

Every parameter is a property of the :class:`~sqhw.format.HWConfig` (:func:`timing_of`):
``cols = cfg.tile_columns`` (``R``, or ``R + 1`` with the activation mode's mask column),
``F = cfg.free_after``, ``D = cfg.load_to_first`` and ``λ = cfg.latency``. The core issues
a beat only while its result has a place in the result FIFO, so with a sink that is always
ready nothing else stalls.

``utilization = T·C / cycles``. This is a model of the documented schedule, not a
simulation: ``verif/report`` holds it cycle-exact against the bulk Verilator simulation in
weight mode (``python -m sqhw.bench sim``'s measurement is one of those cases) and against
``ActArray`` in ``amaranth.sim`` in activation mode.
"""

from dataclasses import dataclass

from ..format import HWConfig

__all__ = ["Workload", "ArrayTiming", "timing_of", "schedule_cycles", "schedule_utilization",
           "schedule_cycles_for", "schedule_utilization_for", "DEFAULT_WORKLOAD",
           "MODEL_NAME"]

#: Names the model in the report (and versions it).
MODEL_NAME = "datasheet §9/§10.7 schedule, no stalls (sqhw.golden.schedule, v3)"


@dataclass(frozen=True)
class ArrayTiming:
    """The parameters of the schedule that depend on the configuration.

    ``extra_columns``: weight columns of a tile beyond the R rows' (1: the activation
    mode's mask column); ``free_after``: cycles from the cycle of a tile's last activation
    beat to the first cycle its buffer accepts a weight record; ``load_to_first``: cycles
    from a tile's last weight record to its first accepted activation beat; ``latency``:
    cycles from the last activation beat of a token to its result.
    """

    extra_columns: int
    free_after: int
    load_to_first: int
    latency: int


def timing_of(cfg: HWConfig) -> ArrayTiming:
    """The :class:`ArrayTiming` of the array ``cfg`` builds (``MacArray`` or ``ActArray``)."""
    return ArrayTiming(extra_columns=cfg.tile_columns - cfg.rows, free_after=cfg.free_after,
                       load_to_first=cfg.load_to_first, latency=cfg.latency)


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


def schedule_cycles(rows: int, bank_size: int, job: Workload, *,
                    timing: ArrayTiming) -> tuple[int, int]:
    """``(activation beats, cycles)`` of ``job`` on an array of ``rows`` rows with the
    schedule parameters ``timing`` (:func:`timing_of`).

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
    load, beats = (rows + timing.extra_columns) * nb, job.m * nb
    load_end: list[int] = []
    comp_end: list[int] = []
    for j in range(tiles):
        start = load_end[j - 1] + 1 if j else 1
        if j >= 2:
            start = max(start, comp_end[j - 2] + timing.free_after)
        load_end.append(start + load - 1)
        first = load_end[j] + timing.load_to_first
        if j:
            first = max(first, comp_end[j - 1] + 1)
        comp_end.append(first + beats - 1)
    return tiles * beats, comp_end[-1] + timing.latency


def schedule_utilization(rows: int, bank_size: int, job: Workload = DEFAULT_WORKLOAD, *,
                         timing: ArrayTiming) -> float:
    """Cycles with an activation beat accepted / all cycles of ``job`` (see the module
    docstring)."""
    beats, cycles = schedule_cycles(rows, bank_size, job, timing=timing)
    return beats / cycles


def schedule_cycles_for(cfg, job: Workload) -> tuple[int, int]:
    """:func:`schedule_cycles` of the array ``cfg`` (an :class:`~sqhw.format.HWConfig`)
    builds: ``MacArray``, or ``ActArray`` when ``cfg.is_act_mode``."""
    return schedule_cycles(cfg.rows, cfg.fmt.bank_size, job, timing=timing_of(cfg))


def schedule_utilization_for(cfg, job: Workload = DEFAULT_WORKLOAD) -> float:
    """:func:`schedule_utilization` of the array ``cfg`` builds (weight or activation
    mode)."""
    return schedule_utilization(cfg.rows, cfg.fmt.bank_size, job, timing=timing_of(cfg))
