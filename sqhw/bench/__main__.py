"""Run every benchmark section and print its ratios."""

import argparse
import importlib
import sys
import time

from ..toolchain import ToolError
from .core import print_rows

#: name: (title, module, what it runs). Each section prints its heading and what it runs
#: before it starts, and its measured duration when it ends.
SECTIONS = {
    "golden": ("Golden model speed (2 cores)", "sqhw.bench.golden",
               "quantize+pack of a 4096x4096 weight and hw_matmul 64x4096x4096 against "
               "torch, best of several runs: the shortest section"),
    "area": ("Row area per MAC/cycle (Yosys: ECP5 LUT4 without and with DSPs)",
             "sqhw.bench.area",
             "14 Yosys syntheses (rows and the gather unit), two at a time, each without "
             "and with DSPs (with SQHW_AREA_CMOS=1 also a CMOS transistor count: over "
             "10 min per row): the longest section"),
    "sim": ("Simulation throughput (bulk Verilator path vs cocotb per-cycle Python)",
            "sqhw.bench.sim",
            "a Verilator build of the 16-row core for each path, then the same 34k-cycle "
            "job through both, best of several runs"),
    "asic": ("Row ASIC area and critical path (Yosys + OpenSTA, OSU 0.18 um cells)",
             "sqhw.bench.asic",
             "12 standard-cell syntheses and timing runs, two at a time, under a minute "
             "each; needs Debian's qflow-tech-osu018 and opensta (make asic-deps)"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sqhw.bench", description=__doc__)
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help="sections to run (default: all): " + ", ".join(SECTIONS))
    args = p.parse_args(argv)
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        p.exit(2, f"{p.prog}: error: unknown section {bad[0]!r}; choose from "
               f"{', '.join(SECTIONS)}\n")
    for name in args.sections or SECTIONS:
        title, module, what = SECTIONS[name]
        print(f"\n## {title}\n  ({what}; started {time.strftime('%H:%M:%S')})", flush=True)
        t0 = time.monotonic()
        try:
            print_rows(importlib.import_module(module).run())
        except ToolError as e:      # a missing tool: one line that says what to install
            p.exit(2, f"{p.prog}: error: {str(e).splitlines()[0]}\n")
        print(f"  ({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    return 0


sys.exit(main())
