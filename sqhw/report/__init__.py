"""The design-space report (``python -m sqhw.report --help``, docs/report.md): is the
SQ-format worth building, and in which configuration?

For every configuration (the SQ sweep and the dense W8A8/W6A8/W4A8/W4A4 and 2:4 baselines,
all at equal MACs/cycle) it gathers accuracy on a real model through the golden model
(:mod:`sqhw.eval`), row area from Yosys (:mod:`sqhw.synth`), utilization from the
documented schedule (:mod:`sqhw.golden.schedule`), and optionally Fmax from nextpnr
(:mod:`sqhw.fpga.build`); caches every result by a key of everything it depends on; runs
the work on local processes or a Dask cluster; and writes ``report.json``, ``report.md``
and Pareto plots.

Importing this package is cheap: torch, Amaranth and the tools load only when a stage runs.
"""

from .pareto import pareto_front

__all__ = ["pareto_front", "Workload", "schedule_cycles", "schedule_utilization",
           "schedule_cycles_for", "schedule_utilization_for"]

#: The schedule model lives in :mod:`sqhw.golden.schedule`; these names stay importable
#: from here, loaded on first use (``sqhw.golden`` imports torch).
_SCHEDULE = {"Workload", "schedule_cycles", "schedule_utilization", "schedule_cycles_for",
             "schedule_utilization_for"}


def __getattr__(name):
    if name in _SCHEDULE:
        from ..golden import schedule
        return getattr(schedule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
