"""``--fit BOARD``: the row count is the largest whose predicted use stays within every
resource's margin, from a per-row cost and a fixed overhead (two syntheses)."""

import pytest

from sqhw.format import HWConfig
from sqhw.gen.cli import main as gen_main
from sqhw.synth import fit as fit_mod


def _fake(per_row, overhead):
    def cost(cfg):
        return fit_mod.Resources(*(o + cfg.rows * p for o, p in zip(overhead, per_row,
                                                                      strict=True)))
    return cost


@pytest.mark.parametrize("per_row,overhead,rows,limit", [
    ((2000, 4, 3), (300, 0, 0), 22, "lut"),     # (54366 − 360) / (1.2 · 2000)
    ((600, 17, 3), (250, 0, 0), 9, "dsp"),      # 156 // 17
    ((100, 0, 9), (0, 0, 1), 23, "bram"),       # (208 − 1) // 9
])
def test_fit_arithmetic(monkeypatch, per_row, overhead, rows, limit):
    monkeypatch.setattr(fit_mod, "array_resources", _fake(per_row, overhead))
    plan = fit_mod.fit(HWConfig(), "ulx3s-85f", progress=lambda msg: None)
    assert (plan.rows, plan.limit) == (rows, limit)
    use = plan.predicted()
    budget, margin = fit_mod.BUDGETS["ulx3s-85f"], fit_mod.MARGIN
    for name in ("lut", "dsp", "bram"):
        assert getattr(use, name) <= getattr(budget, name) * getattr(margin, name)
    over = plan.predicted(plan.rows + 1)
    assert any(getattr(over, n) > getattr(budget, n) * getattr(margin, n)
               for n in ("lut", "dsp", "bram")), "one more row would still fit"


def test_fit_packed_rows_come_in_pairs(monkeypatch):
    """dsp_packed: costed from 2 and 4 rows (a pair shares its DSP blocks), and the plan
    is even: 156 // 12 = 13 rows would leave the last one unpaired (b DSPs of its own)."""
    calls = []

    def cost(cfg):
        calls.append(cfg.rows)
        return fit_mod.Resources(300 + cfg.rows * 800, cfg.rows * 12, cfg.rows * 3)

    monkeypatch.setattr(fit_mod, "array_resources", cost)
    plan = fit_mod.fit(HWConfig(mults="dsp_packed"), "ulx3s-85f", progress=lambda msg: None)
    assert calls == [2, 4]
    assert (plan.rows, plan.limit, plan.per_row.dsp) == (12, "dsp", 12)


def test_fit_refuses_when_nothing_fits(monkeypatch):
    monkeypatch.setattr(fit_mod, "array_resources", _fake((10, 200, 1), (0, 0, 0)))
    with pytest.raises(ValueError, match="not even one row"):
        fit_mod.fit(HWConfig(), "ulx3s-85f", progress=lambda msg: None)


def test_fit_and_rows_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        gen_main(["--fit", "ulx3s-85f", "--rows", "4", "--print-config"])
    assert e.value.code == 2
    assert "--fit chooses the rows" in capsys.readouterr().err


def test_fit_real_synthesis_small(capsys):
    """Two real syntheses of a tiny core: a plan whose per-row cost is positive."""
    cfg = HWConfig(rows=1, k_max=32, mults="dsp")
    plan = fit_mod.fit(cfg, "ulx3s-85f", progress=lambda msg: None)
    assert plan.per_row.lut > 0 and plan.per_row.dsp == cfg.row_plan.dsps
    assert plan.rows >= 1 and "fit ulx3s-85f" in plan.describe()
