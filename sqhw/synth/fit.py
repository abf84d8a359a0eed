"""``--fit BOARD``: the largest array of a configuration that fits a board's LUT, DSP and
block-RAM budget, with a stated margin.

The cost of an array is linear in its rows: every row brings its own datapath, weight
memory and slice of the result FIFO, and the tile logic, unpacker and FIFO control are
paid once. So two syntheses of the core at 1 and 2 rows (``synth_ecp5`` with DSPs, LUTs
mapped by classic ABC: Yosys 0.70's default ABC pass asserts on some of these designs)
give the per-row cost and the fixed overhead, and the plan is the largest row count whose
predicted use stays within the margin of every resource.

Synthesis counts fewer LUT positions than placement uses (nextpnr adds route-through
LUTs, and a ``CCU2C`` or LUT RAM takes a whole slice half): :data:`PLACED_PER_SYNTH` is
that ratio as measured on a placed whole array, and the LUT prediction is scaled by it.
``python -m sqhw.fpga build`` places the array and reports what it really uses
(``docs/fpga.md`` compares the two).
"""

from dataclasses import dataclass, replace

from ..format import HWConfig
from ..toolchain.yosys import yosys_stats

__all__ = ["Resources", "BUDGETS", "MARGIN", "PLACED_PER_SYNTH", "Plan", "array_resources",
           "fit", "fitted"]


@dataclass(frozen=True)
class Resources:
    """LUT4 positions (a ``CCU2C`` adder slice or a LUT RAM counts two), DSP blocks and
    block RAMs."""

    lut: int
    dsp: int
    bram: int


#: Device budgets (the ECP5-85F's LUT4, MULT18X18D and DP16KD counts; nextpnr reports the
#: same totals).
BUDGETS = {"ulx3s-85f": Resources(lut=83640, dsp=156, bram=208)}
#: Fraction of each resource a plan may use: LUTs keep room for the board top (PLL, UART
#: link: about 1,600 LUT4) and for routing; DSPs and block RAMs are placed whole. At 0.80
#: (a 32-row SQ array at 78 % of the LUTs) and even at 64 % (26 rows), nextpnr's router had
#: not finished after about an hour at 100 MHz on this machine (``docs/fpga.md``), so a
#: plan keeps a third of the LUTs free.
MARGIN = Resources(lut=0.65, dsp=1.0, bram=1.0)
#: LUT positions placed per LUT position synthesised. Measured: the 16-row B16-(8/4)-0.875
#: ``mults="dsp"`` array placed 2,041 TRELLIS_COMB per row (33,921 at 16 rows against
#: 5,347 at 2, nextpnr) where this synthesis counts 1,696: 1.20.
PLACED_PER_SYNTH = 1.20


def array_resources(cfg: HWConfig) -> Resources:
    """Synthesised resources of the core ``cfg`` (:func:`~sqhw.toolchain.yosys.yosys_stats`:
    ``synth_ecp5`` with DSPs, LUTs mapped by classic ABC): LUT positions (LUT4 + 2 per
    CCU2C and per LUT RAM), DSPs, block RAMs."""
    from ..gateware.emit import TOP_NAME, verilog_text
    s = yosys_stats(verilog_text(cfg), TOP_NAME, target="ecp5")
    return Resources(lut=s["lut4"] + 2 * s["carry"] + 2 * s["lutram"], dsp=s["dsp"],
                     bram=s["bram"])


@dataclass(frozen=True)
class Plan:
    """What :func:`fit` chose, and why. With ``mults="auto"``, ``dsp_rows`` of the rows
    cost ``per_dsp_row`` (every product on a DSP) and the others ``per_row``."""

    board: str
    rows: int
    per_row: Resources
    overhead: Resources
    budget: Resources
    limit: str                        # the resource that bounds the row count
    dsp_rows: int = 0
    per_dsp_row: Resources = Resources(0, 0, 0)

    def predicted(self, rows: int | None = None) -> Resources:
        r = (self.rows if rows is None else rows) - self.dsp_rows
        return Resources(*(o + r * p + self.dsp_rows * d for o, p, d in zip(
            (self.overhead.lut, self.overhead.dsp, self.overhead.bram),
            (self.per_row.lut, self.per_row.dsp, self.per_row.bram),
            (self.per_dsp_row.lut, self.per_dsp_row.dsp, self.per_dsp_row.bram),
            strict=True)))

    def describe(self) -> str:
        use = self.predicted()
        parts = [f"{name} {getattr(use, name):,} of {getattr(self.budget, name):,} "
                 f"({getattr(use, name) / getattr(self.budget, name):.0%}, margin "
                 f"{getattr(MARGIN, name):.0%})" for name in ("lut", "dsp", "bram")]
        rows = f"{self.rows} rows"
        if self.dsp_rows:
            d = self.per_dsp_row
            rows += (f" ({self.dsp_rows} on DSPs, {d.lut:,} LUT4 / {d.dsp} DSP / {d.bram} "
                     f"BRAM each; {self.rows - self.dsp_rows} in LUTs)")
        return (f"fit {self.board}: {rows} (limited by {self.limit}); per row "
                f"{self.per_row.lut:,} LUT4 / {self.per_row.dsp} DSP / {self.per_row.bram} "
                f"BRAM, fixed {self.overhead.lut:,} LUT4 / {self.overhead.bram} BRAM; "
                f"predicted " + ", ".join(parts))


def _row_cost(cfg: HWConfig) -> tuple[Resources, Resources]:
    """(per row, fixed overhead) of ``cfg``'s structure, from two syntheses: at 1 and 2
    rows, or at 2 and 4 with ``mults="dsp_packed"`` (whose rows come in pairs)."""
    n = 2 if cfg.mults == "dsp_packed" else 1
    one = array_resources(replace(cfg, rows=n))
    two = array_resources(replace(cfg, rows=2 * n))
    per_row = Resources(round((two.lut - one.lut) * PLACED_PER_SYNTH / n),
                        (two.dsp - one.dsp) // n, (two.bram - one.bram) // n)
    overhead = Resources(max(0, round(one.lut * PLACED_PER_SYNTH) - n * per_row.lut),
                         one.dsp - n * per_row.dsp, one.bram - n * per_row.bram)
    return per_row, overhead


def _most_rows(per_row, overhead, budget, used=Resources(0, 0, 0)):
    """(rows, limiting resource): the most rows of cost ``per_row`` beside ``used``."""
    best, limit = 256, "rows <= 256"
    for name in ("lut", "dsp", "bram"):
        cost = getattr(per_row, name)
        if cost <= 0:
            continue
        room = (int(getattr(budget, name) * getattr(MARGIN, name)) - getattr(overhead, name)
                - getattr(used, name))
        n = max(0, room // cost)
        if n < best:
            best, limit = n, name
    return best, limit


def fit(cfg: HWConfig, board: str, progress=print) -> Plan:
    """The largest ``rows`` for ``cfg`` on ``board`` (``cfg.rows`` is ignored). With
    ``mults="auto"``, first as many rows on DSP blocks as the DSPs allow (``dsp_rows``,
    ``cfg.dsp_rows`` ignored), then LUT rows in the LUTs left.

    Raises
    ------
    ValueError
        If the board has no budget here, or not even one row fits.
    """
    if board not in BUDGETS:
        raise ValueError(f"--fit knows the boards {', '.join(BUDGETS)}, not {board!r}")
    budget = BUDGETS[board]
    if cfg.mults != "auto":
        n = 2 if cfg.mults == "dsp_packed" else 1
        progress(f"fit {board}: synthesising the core at {n} and {2 * n} rows to cost a row")
        per_row, overhead = _row_cost(cfg)
        rows, limit = _most_rows(per_row, overhead, budget)
        if n == 2 and rows > 1:
            rows -= rows % 2              # an unpaired row would use b DSPs on its own
        dsp_rows, per_dsp_row = 0, Resources(0, 0, 0)
    else:
        progress(f"fit {board}: synthesising DSP and LUT rows at 1 and 2 rows to cost each")
        per_dsp_row, overhead = _row_cost(replace(cfg, mults=cfg.dsp_row_mults, dsp_rows=0))
        per_row, _ = _row_cost(replace(cfg, mults="lut", dsp_rows=0))
        dsp_rows, _ = _most_rows(per_dsp_row, overhead, budget)
        if cfg.dsp_row_mults == "dsp_packed":
            dsp_rows -= dsp_rows % 2      # an unpaired row would use b DSPs on its own
        used = Resources(*(dsp_rows * x for x in
                           (per_dsp_row.lut, per_dsp_row.dsp, per_dsp_row.bram)))
        lut_rows, limit = _most_rows(per_row, overhead, budget, used)
        rows = min(256, dsp_rows + lut_rows)
        dsp_rows = min(dsp_rows, rows)
    if rows < 1:
        raise ValueError(f"not even one row of {cfg.fmt.name} fits {board} (limited by "
                         f"{limit}); use a smaller --k-max or another format")
    return Plan(board=board, rows=rows, per_row=per_row, overhead=overhead, budget=budget,
                limit=limit, dsp_rows=dsp_rows, per_dsp_row=per_dsp_row)


def fitted(cfg: HWConfig, board: str, say) -> HWConfig:
    """``cfg`` with the rows (and DSP rows) of :func:`fit`'s plan, which ``say`` prints
    first: what ``--fit BOARD`` does in ``python -m sqhw.gen`` and ``sqhw.fpga build``."""
    plan = fit(cfg, board, progress=say)
    say(plan.describe())
    return replace(cfg, rows=plan.rows, dsp_rows=plan.dsp_rows)
