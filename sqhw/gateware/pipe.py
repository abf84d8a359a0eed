"""Pipeline helpers: delay lines and pipelined adder trees (plain functions that add logic
to the caller's :class:`~amaranth.hdl.Module`, as :mod:`.tiles` does)."""

from amaranth.hdl import Const, Signal, signed

from ..format.pipeline import FANOUT_ROWS, fanout_groups, tree_stages

__all__ = ["delay", "fanout", "pipelined_sum"]


def delay(m, value, n: int, name: str, *, reset_less: bool = True):
    """``value`` delayed by ``n`` free-running register stages (``value`` itself when
    ``n = 0``). Datapath registers have no reset (``reset_less``): only the valid bits
    that travel beside them do, which keeps the reset net off the datapath."""
    if n < 0:
        raise ValueError(f"{name}: a delay cannot be negative, not {n}")
    for i in range(n):
        reg = Signal(value.shape(), name=f"{name}{i}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def fanout(m, value, rows: int, n: int, name: str, *, reset_less: bool = True) -> list:
    """``value`` delayed by ``n`` ≥ 1 stages (:func:`delay`) once per group of
    :data:`~sqhw.format.pipeline.FANOUT_ROWS` rows: a list with the copy each of the
    ``rows`` rows reads. With one group it is :func:`delay` itself (registers ``{name}{i}``);
    otherwise the copies are named ``{name}_fo{g}_{i}``, the names the FPGA build keeps
    from being merged back into one register."""
    if n < 1:
        raise ValueError(f"{name}: a fan-out needs at least one register stage, not {n}")
    groups = fanout_groups(rows)
    if groups == 1:
        return [delay(m, value, n, name, reset_less=reset_less)] * rows
    copies = [delay(m, value, n, f"{name}_fo{g}_", reset_less=reset_less)
              for g in range(groups)]
    return [copies[r // FANOUT_ROWS] for r in range(rows)]


def pipelined_sum(m, terms, width: int, levels: int, stages: int, name: str):
    """The sum of ``terms`` modulo ``2^width`` (an unsigned Signal of ``width`` bits) as a
    balanced tree of two-input adders with a register after every ``levels`` levels and
    after the last, padded with delay registers to exactly ``stages`` stages.

    Raises
    ------
    ValueError
        If the tree needs more than ``stages`` stages (the plan that counted them is
        wrong).
    """
    need = tree_stages(len(terms), levels)
    if need > stages:
        raise ValueError(f"{name}: {len(terms)} terms need {need} stages at {levels} adder "
                         f"levels per stage, the plan has {stages}")
    vals = [_to_width(t, width) for t in terms]
    level = regs = 0
    while len(vals) > 1:
        nxt = [(vals[i] + vals[i + 1])[:width] for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
        level += 1
        if level % levels == 0:
            vals = [_reg(m, v, width, f"{name}_l{level}_{i}") for i, v in enumerate(vals)]
            regs += 1
    out = vals[0]
    if regs == 0 or level % levels:
        out = _reg(m, out, width, f"{name}_l{level}_out")
        regs += 1
    return delay(m, out, stages - regs, f"{name}_pad")


def _to_width(value, width):
    """``value`` modulo ``2^width`` as ``width`` unsigned bits: a signed term is sign-extended
    first (slicing alone would zero-extend it in the next addition)."""
    if value.shape().signed and len(value) < width:
        value = value + Const(0, signed(width))
    return value[:width]


def _reg(m, value, width, name):
    reg = Signal(width, name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg
