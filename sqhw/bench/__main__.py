"""Run every benchmark section and print its ratios."""

import argparse
import importlib
import sys

from .core import print_rows

SECTIONS = {
    "golden": ("Golden model speed (2 cores)", "sqhw.bench.golden"),
    "area": ("Row area per MAC/cycle (Yosys: ECP5 -nodsp LUT4, CMOS transistors)",
             "sqhw.bench.area"),
    "sim": ("Simulation throughput (bulk Verilator path vs cocotb per-cycle Python)",
            "sqhw.bench.sim"),
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
        title, module = SECTIONS[name]
        print_rows(title, importlib.import_module(module).run())
        sys.stdout.flush()
    return 0


sys.exit(main())
