"""The bulk-stimulus throughput path: ``sqhw_top`` under ``verilator --binary``, no Python
in the per-cycle loop.

- :func:`make_job` draws a multi-tile job ``Y[M, N] = X[M, K] · W[K, N]``: N is padded up to a
  multiple of R with zero weight columns (quantized zeros are well-formed); each tile's
  tokens are all M rows of X, ``tuser`` on the last token of the tile.
- :func:`write_stimulus` writes the weight records (``{tlast, tdata}``, column order, tiles
  in order) and one tile's activation beats (``{tuser, tlast, tdata}``: all M tokens,
  ``tuser`` on the last) as ``$readmemh`` files. The wrapper ``sqhw_bulk_tb.sv`` presents
  them back to back: all weight beats on ``s_axis_w`` as fast as the core takes them (two
  buffers: tile t+1 loads while tile t computes), and the activation file once per tile on
  ``s_axis_a``.
- :func:`build_bulk` verilates ``sqhw_bulk_tb.sv`` + the core's Verilog once per
  configuration (``build/bulk/<digest>/``, cached by a stamp, file-locked).
- :func:`run_bulk` runs one job (random source stalls / sink backpressure from seeded
  xorshift LFSRs inside the wrapper) and reads back the result lines and the cycle
  counters; :func:`check_results` compares them bit-exactly, in order, with
  :func:`sqhw.golden.hw_matmul`, count and error flags included.

Replay a failure: the seed is part of the :class:`BulkRun` and of every failure message;
``SEED=<n>`` fixes it in ``verif/bulk/test_bulk.py``. Builds and runs go under
``build/bulk/`` of the checkout (or of the current folder, when installed from a wheel: see
:data:`sqhw.sim.harness.ROOT`).
"""

import functools
import hashlib
import json
import re
import resource
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..format import HWConfig
from ..gateware.emit import TOP_NAME
from ..toolchain.verilator import (
    LINT_WAIVERS,
    VERILATED_MK_FIXES,
    verilator_env,
    write_waiver_file,
)
from .harness import ROOT, build, locked, run_cocotb, sim_build_dir

__all__ = ["ROOT", "BULK_DIR", "TB_SOURCE", "BulkJob", "BulkRun", "make_job",
           "stimulus_words", "write_stimulus", "read_beats", "build_bulk", "run_bulk",
           "run_pokes", "check_results", "verilog_for"]

BULK_DIR = ROOT / "build" / "bulk"
TB_SOURCE = Path(__file__).resolve().parent / "sqhw_bulk_tb.sv"
TB_TOP = "sqhw_bulk_tb"
DEPTH_W = 1 << 15       # stimulus memory depths (weight records, one tile's activations)
DEPTH_A = 1 << 15
#: C++ optimisation of the model (Verilator's default OPT_FAST is -Os).
OPT_FAST = "-O2"


# -- the job ------------------------------------------------------------------------------

@dataclass
class BulkJob:
    """A multi-tile job and its expected results.

    ``expected`` is ``[M, n_pad]`` (int64): the golden result with the zero pad columns.
    Result beat ``t·M + m`` carries ``expected[m, t·R:(t+1)·R]``.
    """

    cfg: HWConfig
    x: torch.Tensor              # [M, K] activations (integers)
    image: bytes                 # pack() of the padded weight, n_pad columns
    n: int                       # real output columns
    n_pad: int                   # multiple of R
    expected: torch.Tensor       # [M, n_pad] int64

    @property
    def m(self) -> int:
        return self.x.shape[0]

    @property
    def k(self) -> int:
        return self.x.shape[1]

    @property
    def nb(self) -> int:
        return self.k // self.cfg.fmt.bank_size

    @property
    def tiles(self) -> int:
        return self.n_pad // self.cfg.rows

    @property
    def act_beats(self) -> int:
        return self.tiles * self.m * self.nb

    @property
    def weight_beats(self) -> int:
        return self.n_pad * self.nb

    def expected_beats(self) -> list[list[int]]:
        """Expected result rows, one list of R ints per result beat, in order."""
        R = self.cfg.rows
        e = self.expected
        return [[int(v) for v in e[m, t * R:(t + 1) * R]]
                for t in range(self.tiles) for m in range(self.m)]


def make_job(cfg: HWConfig, m: int, k: int, n: int, seed: int) -> BulkJob:
    """A random job ``X[m, k] · W[k, n]`` for ``cfg`` (``k`` a multiple of the bank size,
    at most ``k_max``); N is padded to a multiple of ``cfg.rows`` with zero columns."""
    from ..golden import hw_matmul, pack, quantize_weight, random_sqtensor
    fmt = cfg.fmt
    if k % fmt.bank_size or not 0 < k <= cfg.k_max:
        raise ValueError(f"k must be a multiple of {fmt.bank_size} in 1..{cfg.k_max}, not {k}")
    if m < 1 or n < 1:
        raise ValueError(f"m and n must be positive, not {m}, {n}")
    g = torch.Generator().manual_seed(seed)
    sq = random_sqtensor(fmt, k, n, generator=g)
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    x = torch.randint(lo, hi + 1, (m, k), generator=g)
    # Extremes in the first token so the widest products are always exercised.
    x[0, : k // 2] = lo
    x[0, k // 2:] = hi
    expected = hw_matmul(x, sq, cfg.act_bits, cfg.acc_bits)
    image = pack(sq)
    pad = -n % cfg.rows
    if pad:
        zero = quantize_weight(torch.zeros(k, pad), fmt)
        image += pack(zero)
        expected = torch.cat([expected, hw_matmul(x, zero, cfg.act_bits, cfg.acc_bits)], 1)
    return BulkJob(cfg, x, bytes(image), n, n + pad, expected)


def _act_words(job: BulkJob) -> list[int]:
    """One int per (token, bank): element i at bits [i·a, (i+1)·a) (datasheet §5)."""
    cfg = job.cfg
    a, b = cfg.act_bits, cfg.fmt.bank_size
    codes = (job.x.numpy().astype(np.int64) & ((1 << a) - 1)).astype(np.uint8)
    bits = np.unpackbits(codes[..., None], axis=-1, bitorder="little")[..., :a]
    bits = bits.reshape(job.m, job.nb, b * a)
    packed = np.packbits(bits, axis=-1, bitorder="little")          # [M, nb, bytes]
    return [int.from_bytes(packed[i, j].tobytes(), "little")
            for i in range(job.m) for j in range(job.nb)]


def stimulus_words(job: BulkJob) -> tuple[list[int], list[int]]:
    """The beats of ``job`` as memory words: weights ``{tlast, tdata}`` (columns of all
    tiles in order), activations ``{tuser, tlast, tdata}`` of one tile (all M tokens, tuser
    on the last), which every tile streams again."""
    cfg = job.cfg
    rb, nb = cfg.fmt.record_bytes, job.nb
    ww, aw = cfg.weight_data_bits, cfg.act_data_bits
    img = job.image
    assert len(img) == job.n_pad * nb * rb
    weights = []
    for r in range(job.n_pad * nb):
        word = int.from_bytes(img[r * rb:(r + 1) * rb], "little")
        weights.append((int(r % nb == nb - 1) << ww) | word)
    last_token = (job.m - 1) * nb + nb - 1
    tile = []
    for i, word in enumerate(_act_words(job)):
        last = int(i % nb == nb - 1)
        user = int(i == last_token)
        tile.append((user << (aw + 1)) | (last << aw) | word)
    return weights, tile


def write_stimulus(job: BulkJob, run_dir: Path) -> dict:
    """Write ``weights.hex`` and ``acts.hex`` (one tile's tokens: the testbench replays
    them for every tile, which keeps ``$readmemh`` parsing short) into ``run_dir``;
    returns the plusargs."""
    cfg = job.cfg
    run_dir.mkdir(parents=True, exist_ok=True)
    wdig = (cfg.weight_data_bits + 1 + 3) // 4
    adig = (cfg.act_data_bits + 2 + 3) // 4
    weights, acts = stimulus_words(job)
    (run_dir / "weights.hex").write_text("".join(f"{w:0{wdig}x}\n" for w in weights))
    (run_dir / "acts.hex").write_text("".join(f"{a:0{adig}x}\n" for a in acts))
    (run_dir / "results.txt").unlink(missing_ok=True)
    return {"wfile": str(run_dir / "weights.hex"), "nw": len(weights),
            "afile": str(run_dir / "acts.hex"), "na": job.act_beats, "na_file": len(acts),
            "rfile": str(run_dir / "results.txt"), "nr": job.tiles * job.m}


def read_beats(path: Path) -> list[tuple[int, int, int, int]]:
    """Result lines ``<cycle> <tuser> <tlast> <tdata hex>`` as int tuples."""
    beats = []
    for line in Path(path).read_text().splitlines():
        cyc, user, last, word = line.split()
        beats.append((int(cyc), int(user), int(last), int(word, 16)))
    return beats


# -- build --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _verilog_text(cfg: HWConfig) -> str:
    from ..gateware.emit import verilog_text
    return verilog_text(cfg)


def verilog_for(cfg: HWConfig, text: str | None = None) -> Path:
    """``sqhw_top.v`` of ``cfg`` under ``build/bulk/<digest>/src/`` (rewritten on change)."""
    path = BULK_DIR / cfg.digest() / "src" / "sqhw_top.v"
    text = _verilog_text(cfg) if text is None else text
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def _verilator_args(cfg: HWConfig) -> list[str]:
    return ["--binary", "--top-module", TB_TOP, "--timescale", "1ns/1ps",
            f"-GWW={cfg.weight_data_bits}", f"-GAW={cfg.act_data_bits}",
            f"-GRW={cfg.result_data_bits}", f"-GDEPTH_W={DEPTH_W}", f"-GDEPTH_A={DEPTH_A}",
            "-MAKEFLAGS", f"OPT_FAST={OPT_FAST}", "-o", TB_TOP]


def build_bulk(cfg: HWConfig, *, force: bool = False) -> tuple[Path, float]:
    """Verilate and compile the bulk testbench for ``cfg`` unless an identical build exists.

    Returns
    -------
    (Path, float)
        The executable and the seconds its build took (measured when it was built; kept
        in ``build_seconds.txt``).
    """
    build_dir = BULK_DIR / cfg.digest()
    tb_text = TB_SOURCE.read_text()
    args = _verilator_args(cfg)
    exe = build_dir / "obj_dir" / TB_TOP
    stamp_path = build_dir / "bulk_build.json"
    secs_path = build_dir / "build_seconds.txt"
    text = _verilog_text(cfg)       # outside the lock: workers convert in parallel
    with locked(build_dir.parent / f".{build_dir.name}.lock"):
        src = verilog_for(cfg, text)    # under the lock: nobody rewrites it while we build
        stamp = {
            "verilog_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "tb_sha256": hashlib.sha256(tb_text.encode()).hexdigest(),
            "args": args, "waivers": [list(w) for w in LINT_WAIVERS],
            "make_fixes": VERILATED_MK_FIXES, "verilator": metadata.version("verilator"),
        }
        if (not force and exe.exists() and stamp_path.exists()
                and json.loads(stamp_path.read_text()) == stamp):
            return exe, float(secs_path.read_text()) if secs_path.exists() else 0.0
        stamp_path.unlink(missing_ok=True)
        (build_dir / "src" / "sqhw_bulk_tb.sv").write_text(tb_text)
        vlt = write_waiver_file(build_dir / "src" / "waivers.vlt")
        cmd = ["verilator", *args, "-j", "2", "--Mdir", "obj_dir", str(vlt), str(src),
               str(build_dir / "src" / "sqhw_bulk_tb.sv")]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=build_dir, env=verilator_env(), capture_output=True,
                              text=True)
        secs = time.monotonic() - t0
        log = proc.stdout + proc.stderr
        (build_dir / "build.log").write_text(" ".join(cmd) + "\n" + log)
        if proc.returncode != 0 or not exe.exists():
            raise RuntimeError(f"bulk Verilator build in {build_dir} failed "
                               f"(exit {proc.returncode}):\n{log[-6000:]}")
        stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
        secs_path.write_text(f"{secs:.2f}\n")
        return exe, secs


# -- run ----------------------------------------------------------------------------------

_SUMMARY = re.compile(r"SQHW_BULK (done=.*)")


@dataclass
class BulkRun:
    """What one run of the bulk testbench reported."""

    seed: int
    summary: dict                # the counters of the SQHW_BULK line
    beats: list = field(repr=False)   # (cycle, tuser, tlast, word) per result beat
    wall: float                  # seconds of the simulator process (load, run, write)
    run_dir: Path = None
    cpu: float | None = None     # CPU seconds of that process (None: not measured)

    @property
    def cycles(self) -> int:
        return self.summary["cycles"]

    @property
    def utilization(self) -> float:
        """Cycles with an activation beat accepted / cycles from the first weight beat to
        the last result."""
        return self.summary["act_beats"] / self.cycles if self.cycles else 0.0

    @property
    def sim_cycles_per_s(self) -> float:
        return self.summary["sim_cycles"] / self.wall


def _prob(p: float) -> int:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"stall probability must be in [0, 1), not {p}")
    return round(p * 65536)


def run_bulk(cfg: HWConfig, job: BulkJob, run_dir: Path, *, seed: int = 1,
             p_w: float = 0.0, p_a: float = 0.0, p_r: float = 0.0,
             timeout: int | None = None, exe: Path | None = None) -> BulkRun:
    """Run ``job`` on the bulk testbench of ``cfg`` (built if needed).

    ``p_w``, ``p_a``: probability that a source presents no beat in a cycle; ``p_r``:
    probability that the result sink holds ``tready`` low. ``timeout`` (cycles after reset)
    defaults to a bound far above any legal run. Raises ``AssertionError`` on a timeout or
    a simulator failure, with the seed.
    """
    if job.weight_beats > DEPTH_W or job.m * job.nb > DEPTH_A:
        raise ValueError(f"job of {job.weight_beats} weight records / {job.m * job.nb} "
                         f"activation beats per tile exceeds the stimulus memories "
                         f"({DEPTH_W} / {DEPTH_A})")
    if exe is None:
        exe, _ = build_bulk(cfg)
    run_dir = Path(run_dir)
    plus = write_stimulus(job, run_dir)
    if timeout is None:
        slow = 1.0 / (1.0 - max(p_w, p_a, p_r))
        timeout = int(1000 + 4 * slow * (job.act_beats + job.weight_beats + job.tiles * job.m))
    plus.update(seed=seed, p_w=_prob(p_w), p_a=_prob(p_a), p_r=_prob(p_r), timeout=timeout)
    cmd = [str(exe)] + [f"+{k}={v}" for k, v in plus.items()]
    (run_dir / "cmd.txt").write_text(" ".join(cmd) + "\n")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=run_dir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out = proc.stdout + proc.stderr
    (run_dir / "sim.log").write_text(out)
    found = _SUMMARY.search(proc.stdout)
    if proc.returncode != 0 or found is None:
        raise AssertionError(f"bulk simulation failed (exit {proc.returncode}, seed {seed}) "
                             f"in {run_dir}:\n{out[-4000:]}")
    summary = {}
    for item in found.group(1).split():
        key, value = item.split("=")
        summary[key] = int(value, 16) if key == "status" else int(value)
    if summary["timeout"] or not summary["done"]:
        raise AssertionError(f"bulk simulation timed out after {summary['sim_cycles']} cycles "
                             f"with {summary['results']} of {plus['nr']} results (seed {seed}, "
                             f"{run_dir}): {summary}")
    return BulkRun(seed, summary, read_beats(run_dir / "results.txt"), wall, run_dir, cpu)


def check_results(job: BulkJob, run: BulkRun, expected: list[list[int]] | None = None) -> int:
    """Compare every result beat, in order, with the golden rows; returns the count.

    Raises ``AssertionError`` naming the first difference (beat, tile, token, row).
    """
    cfg = job.cfg
    acc, R = cfg.acc_bits, cfg.rows
    want = job.expected_beats() if expected is None else expected
    tag = f"(seed {run.seed}, {run.run_dir})"
    assert len(run.beats) == len(want), (
        f"{len(run.beats)} result beats, expected {len(want)} {tag}")
    assert run.summary["status"] == 0, f"status {run.summary['status']:#x} != 0 {tag}"
    assert run.summary["err_beats"] == 0, f"{run.summary['err_beats']} error beats {tag}"
    mask = (1 << acc) - 1
    for i, ((_cyc, user, last, word), rows) in enumerate(zip(run.beats, want, strict=True)):
        t, m = divmod(i, job.m)
        assert user == 0, f"result {i} (tile {t}, token {m}): tuser 1 {tag}"
        assert last == 1, f"result {i}: tlast 0 {tag}"
        assert word >> (R * acc) == 0, f"result {i}: padding bits not 0 {tag}"
        got = [(word >> (r * acc)) & mask for r in range(R)]
        got = [v - (1 << acc) if v >> (acc - 1) else v for v in got]
        if got != rows:
            r = next(r for r in range(R) if got[r] != rows[r])
            raise AssertionError(
                f"result {i} (tile {t}, token {m}), row {r} (column {t * R + r}): got "
                f"{got[r]}, expected {rows[r]} {tag}\n got {got}\nwant {rows}")
    return len(want)


def run_pokes(cfg: HWConfig, job: BulkJob, run_dir: Path, *, seed: int = 1) -> BulkRun:
    """The baseline: the same job driven from Python on every clock edge (cocotb,
    :mod:`sqhw.sim.cocotb_pokes`) on the harness build of the same Verilog.

    ``wall`` is the time of the per-cycle loop only (simulator start-up excluded);
    ``summary`` has ``sim_cycles`` and the harness build time ``build_seconds``.
    """
    run_dir = Path(run_dir)
    plus = write_stimulus(job, run_dir)
    plus["timeout"] = 1000 + 4 * (job.act_beats + job.weight_beats)
    src = verilog_for(cfg)
    build(cfg, src, top=TOP_NAME)
    run_cocotb(cfg, src, "sqhw.sim.cocotb_pokes", top=TOP_NAME, seed=seed,
               extra_env={"SQHW_BULK_PLUS": json.dumps(plus)},
               run_name=f"bulk-pokes-{run_dir.name}")
    info = json.loads((run_dir / "pokes.json").read_text())
    secs = sim_build_dir(cfg, TOP_NAME, False) / "build_seconds.txt"
    summary = {"sim_cycles": info["cycles"], "results": info["results"],
               "status": info["status"], "err_beats": 0,
               "build_seconds": float(secs.read_text()) if secs.exists() else 0.0}
    beats = read_beats(run_dir / "results.txt")
    summary["err_beats"] = sum(b[1] for b in beats)
    return BulkRun(seed, summary, beats, info["wall"], run_dir)
